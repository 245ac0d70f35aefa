import ArgumentParser
import Foundation
import Persistence
import ServiceLifecycle
import ServiceRuntime

/// `ims-sim`: a stand-in for the central IMS — it receives what the head-end delivers
/// (`serve`, the default) and sends the head-end its configuration and commands (`push`).
@main
struct App: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ims-sim",
        abstract: "Simulates the central IMS: receives readings and results (serve), sends configurations and commands (push).",
        subcommands: [Serve.self, Push.self],
        defaultSubcommand: Serve.self)
}

/// `ims-sim [serve]`: stores and deduplicates what the head-end delivers.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Accepts readings (native JSON or IEC 61968-9 CIM XML) and results, deduplicates, can be told to fail.",
        discussion: """
            Stores what it accepts in its own PostgreSQL database (--database-url / HES_IMS_DATABASE_URL, \
            not the head-end's). Faults can be switched at run time: PUT /v1/faults, POST /v1/faults/outage.
            """)

    @OptionGroup var common: CommonOptions

    @Option(help: ArgumentHelp("Port of the simulated IMS API (HES_IMS_PORT). Default: 8090", valueName: "port"))
    var port: Int?

    @Option(help: ArgumentHelp("Address the IMS API binds (HES_IMS_HOST). Default: 127.0.0.1", valueName: "host"))
    var host: String?

    @Option(help: ArgumentHelp("The IMS's own database (HES_IMS_DATABASE_URL), e.g. postgres://hes@127.0.0.1/ims_sim", valueName: "url"))
    var databaseURL: String?

    @Option(help: ArgumentHelp("Bearer token clients must send (HES_IMS_TOKEN). Default: none", valueName: "token"))
    var token: String?

    @Option(help: ArgumentHelp("Share of deliveries answered 503 (0…1). Default: 0", valueName: "rate"))
    var failureRate: Double = 0

    @Option(help: ArgumentHelp("Milliseconds added before each request is handled. Default: 0", valueName: "ms"))
    var latencyMs: Int = 0

    @Option(help: ArgumentHelp("Milliseconds between storing a delivery and replying. Default: 0", valueName: "ms"))
    var slowAcceptMs: Int = 0

    @Option(help: ArgumentHelp("An outage: seconds after start, and how long (`30,60`). Default: none", valueName: "after,seconds"))
    var outage: String?

    @Option(help: ArgumentHelp("A meter the IMS does not know: its items are rejected (repeatable)", valueName: "meter-id"))
    var rejectMeter: [String] = []

    func run() async throws {
        let settings = try common.settings()
        let runtime = try common.runtimeConfiguration(executable: "ims-sim", defaultAdminPort: 9106, settings: settings)
        var faults = IMSFaults(failureRate: failureRate, latencyMilliseconds: latencyMs, slowAcceptMilliseconds: slowAcceptMs, rejectMeters: rejectMeter)
        if let outage {
            let parts = outage.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard parts.count == 2, let after = parts[0], let seconds = parts[1], after >= 0, seconds >= 0 else {
                throw ValidationError("--outage takes `after,seconds` (two non-negative numbers), got \(outage)")
            }
            faults.outageFrom = Date().addingTimeInterval(after)
            faults.outageUntil = faults.outageFrom?.addingTimeInterval(seconds)
        }
        do {
            faults = try faults.validated()
        } catch let error as IMSSimError {
            throw ValidationError(error.reason)
        }
        let url = try settings.requiredString(databaseURL, flagName: "database-url", env: "HES_IMS_DATABASE_URL")
        let configuration = IMSSimConfiguration(
            runtime: runtime,
            database: try DatabaseConfiguration(url: url),
            host: settings.string(host, flagName: "host", env: "HES_IMS_HOST", default: "127.0.0.1"),
            port: try settings.int(port, flagName: "port", env: "HES_IMS_PORT", default: 8090, range: 0...65535),
            token: settings.optionalString(token, flagName: "token", env: "HES_IMS_TOKEN"),
            faults: faults)
        try await App.serviceGroup(for: configuration).run()
    }
}
