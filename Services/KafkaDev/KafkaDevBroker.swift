import Foundation
import Logging
import Messaging
import Observability
import ServiceLifecycle
import ServiceRuntime

/// Runs the mock cluster until graceful shutdown: creates the topics, publishes the bootstrap
/// address (standard output and ``KafkaDevConfiguration/bootstrapFile``), reports ready.
struct KafkaDevBroker: Service {
    let configuration: KafkaDevConfiguration
    let readiness: Readiness
    let logger: Logger
    /// The admin port's broker outage switches (``BrokerOutageSwitch``).
    let outageSwitch: BrokerOutageSwitch

    func run() async throws {
        readiness.register("kafka-dev", reason: "starting the mock cluster")
        let cluster = try KafkaMockCluster(brokers: configuration.brokers, logger: logger)
        for topic in configuration.topics {
            try cluster.createTopic(name: topic, partitions: configuration.partitions, replicationFactor: min(3, configuration.brokers))
        }
        outageSwitch.attach(cluster)
        defer { outageSwitch.attach(nil) }
        var forwarder: BootstrapForwarder?
        var bootstrap = cluster.bootstrapServers
        if let port = configuration.bootstrapPort {
            let first = String(cluster.bootstrapServers.split(separator: ",")[0])
            forwarder = try await BootstrapForwarder(host: "127.0.0.1", port: port, target: first, logger: logger)
            bootstrap = forwarder?.address ?? bootstrap
        }
        try Self.publish(bootstrap, to: configuration.bootstrapFile)
        logger.info("kafka-dev ready", metadata: [
            LogMetadataKey.kafkaBrokers: "\(bootstrap)",
            LogMetadataKey.kafkaMockBrokers: "\(cluster.bootstrapServers)",
            LogMetadataKey.kafkaTopic: "\(configuration.topics.joined(separator: ","))",
            LogMetadataKey.kafkaPartitionsPerTopic: "\(configuration.partitions)",
            LogMetadataKey.kafkaBootstrapFile: "\(configuration.bootstrapFile)",
        ])
        FileHandle.standardOutput.write(Data("kafka-dev bootstrap: \(bootstrap)\n".utf8))
        readiness.markReady("kafka-dev")

        try? await gracefulShutdown()

        readiness.markNotReady("kafka-dev", reason: "shutting down")
        await forwarder?.close()
        // Leave no stale address behind for the next run (unless someone replaced it).
        if (try? String(contentsOfFile: configuration.bootstrapFile, encoding: .utf8)) == bootstrap {
            try? FileManager.default.removeItem(atPath: configuration.bootstrapFile)
        }
        logger.info("kafka-dev stopped; its messages are gone")
        withExtendedLifetime(cluster) {}
    }

    /// Writes `address` to `path` atomically (readers never see a partial address).
    static func publish(_ address: String, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(address.utf8).write(to: url, options: .atomic)
    }
}
