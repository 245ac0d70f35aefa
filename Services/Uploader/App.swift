import ArgumentParser
import ServiceLifecycle
import Persistence
import ServiceRuntime

/// `uploader`: delivers readings and results to the IMS; commits offsets only after the IMS confirms.
@main
struct App: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "uploader",
        abstract: "Delivers readings and command results to the IMS, committing Kafka offsets after confirmation.")

    @OptionGroup var common: CommonOptions
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var kafka: KafkaOptions

    @Option(help: ArgumentHelp("Base URL of the IMS API (HES_IMS_URL). Default: http://127.0.0.1:8090", valueName: "url"))
    var imsURL: String?

    func run() async throws {
        let settings = try common.settings()
        let configuration = UploaderConfiguration(
            runtime: try common.runtimeConfiguration(executable: "uploader", defaultAdminPort: 9104, settings: settings),
            database: try DatabaseConfiguration(url: database.databaseURL(settings)),
            kafkaBrokers: kafka.kafkaBrokers(settings),
            imsURL: settings.string(imsURL, flagName: "ims-url", env: "HES_IMS_URL", default: "http://127.0.0.1:8090"))
        try await App.serviceGroup(for: configuration).run()
    }
}
