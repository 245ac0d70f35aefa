import ArgumentParser
import ServiceLifecycle
import ServiceRuntime

/// `kafka-dev`: a development Kafka broker on librdkafka's mock cluster, with the SwiftHES
/// topics created, for local runs and tests without a real Kafka (data lives in memory only).
@main
struct App: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kafka-dev",
        abstract: "Development Kafka broker (librdkafka mock cluster) with the SwiftHES topics; writes its bootstrap address to a file.")

    @OptionGroup var common: CommonOptions

    @Option(help: ArgumentHelp("Number of mock brokers (HES_KAFKA_DEV_BROKERS). Default: 1", valueName: "count"))
    var brokers: Int?

    @Option(help: ArgumentHelp("Comma-separated regions whose task topics to create (HES_REGION). Default: local", valueName: "names"))
    var regions: String?

    @Option(help: ArgumentHelp("Partitions per topic (HES_KAFKA_DEV_PARTITIONS). Default: 12", valueName: "count"))
    var partitions: Int?

    @Option(help: ArgumentHelp("File the bootstrap address is written to (HES_KAFKA_BOOTSTRAP_FILE). Default: ./.hes-run/kafka-bootstrap", valueName: "path"))
    var bootstrapFile: String?

    @Option(help: ArgumentHelp("A fixed bootstrap port on 127.0.0.1 forwarding to the mock cluster, whose own ports change on every start; services then survive a kafka-dev restart (HES_KAFKA_DEV_PORT). Default: none", valueName: "port"))
    var port: Int?

    func run() async throws {
        let settings = try common.settings()
        let regionList = settings.string(regions, flagName: "regions", env: "HES_REGION", default: "local")
            .split(separator: ",").map { String($0.filter { !$0.isWhitespace }) }.filter { !$0.isEmpty }
        guard !regionList.isEmpty else { throw ValidationError("--regions: at least one region is needed") }
        let configuration = KafkaDevConfiguration(
            runtime: try common.runtimeConfiguration(executable: "kafka-dev", defaultAdminPort: 9107, settings: settings),
            brokers: try settings.int(brokers, flagName: "brokers", env: "HES_KAFKA_DEV_BROKERS", default: 1, range: 1...16),
            regions: regionList,
            partitions: try settings.int(partitions, flagName: "partitions", env: "HES_KAFKA_DEV_PARTITIONS", default: 12, range: 1...1000),
            bootstrapPort: try settings.optionalString(port.map(String.init), flagName: "port", env: "HES_KAFKA_DEV_PORT").map { text in
                guard let number = Int(text), (1...65535).contains(number) else { throw ValidationError("--port: '\(text)' is not a port (1...65535)") }
                return number
            },
            bootstrapFile: settings.string(bootstrapFile, flagName: "bootstrap-file", env: "HES_KAFKA_BOOTSTRAP_FILE", default: "./.hes-run/kafka-bootstrap"))
        try await App.serviceGroup(for: configuration).run()
    }
}
