import ArgumentParser
import ServiceLifecycle
import ServiceRuntime

/// `ims-sim`: a stand-in for the central IMS that stores and deduplicates what it receives.
@main
struct App: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ims-sim",
        abstract: "Simulates the central IMS: accepts readings and results, deduplicates, can be told to fail.")

    @OptionGroup var common: CommonOptions

    @Option(help: ArgumentHelp("Port of the simulated IMS API (HES_IMS_PORT). Default: 8090", valueName: "port"))
    var port: Int?

    func run() async throws {
        let settings = try common.settings()
        let configuration = IMSSimConfiguration(
            runtime: try common.runtimeConfiguration(executable: "ims-sim", defaultAdminPort: 9106, settings: settings),
            port: try settings.int(port, flagName: "port", env: "HES_IMS_PORT", default: 8090, range: 0...65535))
        try await App.serviceGroup(for: configuration).run()
    }
}
