import ArgumentParser
import ServiceRuntime

/// `meter-sim`: simulated DLMS/IEC 62056-21 meters for development, tests and load.
@main
struct App: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meter-sim",
        abstract: "Serves simulated smart meters on loopback addresses, serial pseudo-terminals and UDP.")

    @OptionGroup var common: CommonOptions

    @Option(help: ArgumentHelp("Number of simulated meters (HES_SIM_METERS). Default: 1", valueName: "count"))
    var meters: Int?

    @Option(help: ArgumentHelp("First TCP port; meter n listens on port+n (HES_SIM_PORT). Default: 4061", valueName: "port"))
    var port: Int?

    func run() async throws {
        let settings = try common.settings()
        let configuration = MeterSimConfiguration(
            runtime: try common.runtimeConfiguration(executable: "meter-sim", defaultAdminPort: 9105, settings: settings),
            meterCount: try settings.int(meters, flagName: "meters", env: "HES_SIM_METERS", default: 1, range: 1...100_000),
            firstPort: try settings.int(port, flagName: "port", env: "HES_SIM_PORT", default: 4061, range: 1...65535))
        try await App.serviceGroup(for: configuration).run()
    }
}
