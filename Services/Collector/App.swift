import ArgumentParser
import ServiceRuntime

/// `collector`: a worker of a region's collector pool. Reads the region's task topics, runs
/// DLMS sessions with the meters and publishes readings and results.
@main
struct App: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "collector",
        abstract: "Collects meter data for one region: consumes tasks, talks DLMS/IEC 62056-21, publishes readings.")

    @OptionGroup var common: CommonOptions
    @OptionGroup var kafka: KafkaOptions

    @Option(help: ArgumentHelp("Region whose tasks this worker serves (HES_REGION).", valueName: "name"))
    var region: String?

    @Option(help: ArgumentHelp("Lines served at the same time by this worker (HES_MAX_CONCURRENT_LINES). Default: 256", valueName: "count"))
    var maxConcurrentLines: Int?

    func run() async throws {
        let settings = try common.settings()
        let configuration = CollectorConfiguration(
            runtime: try common.runtimeConfiguration(executable: "collector", defaultAdminPort: 9103, settings: settings),
            region: try settings.requiredString(region, flagName: "region", env: "HES_REGION"),
            kafkaBrokers: kafka.kafkaBrokers(settings),
            maxConcurrentLines: try settings.int(maxConcurrentLines, flagName: "max-concurrent-lines", env: "HES_MAX_CONCURRENT_LINES", default: 256, range: 1...100_000))
        try await App.serviceGroup(for: configuration).run()
    }
}
