import ArgumentParser
import ServiceLifecycle
import Persistence
import ServiceRuntime

/// `config-service`: versioned configurations and the control-plane HTTP API for the IMS.
@main
struct App: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config-service",
        abstract: "Keeps versioned configurations in PostgreSQL and serves the IMS control-plane API.")

    @OptionGroup var common: CommonOptions
    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        let settings = try common.settings()
        let configuration = ConfigServiceConfiguration(
            runtime: try common.runtimeConfiguration(executable: "config-service", defaultAdminPort: 9101, settings: settings),
            database: try DatabaseConfiguration(url: database.databaseURL(settings)))
        try await App.serviceGroup(for: configuration).run()
    }
}
