import Contracts
import Logging
import Messaging
import Observability
import ServiceLifecycle
import ServiceRuntime

/// Everything the collector needs to run, resolved from flags, environment and file.
struct CollectorConfiguration: Sendable {
    var runtime: RuntimeConfiguration
    /// The region whose `hes.tasks.<region>` topics this worker consumes.
    var region: String
    var kafkaBrokers: String
    /// Default: 256.
    var maxConcurrentLines: Int
}

extension App {
    /// Builds the collector's services: the producer that will publish readings and results,
    /// and a probe that reports the broker to `/readyz`. Task consumption and DLMS sessions
    /// arrive with the collector issue.
    static func serviceGroup(for configuration: CollectorConfiguration) throws -> ServiceGroup {
        let runtime = ServiceRuntime(configuration.runtime)
        var logger = runtime.logger
        logger[metadataKey: LogMetadataKey.region] = "\(configuration.region)"
        logger.info("collector starting", metadata: ["kafka.brokers": "\(configuration.kafkaBrokers)"])

        var producerConfiguration = KafkaProducerConfiguration(bootstrapServers: configuration.kafkaBrokers)
        producerConfiguration.clientID = "hes-collector-\(configuration.region)"
        producerConfiguration.shutdownFlushTimeout = .seconds(3)
        let producer = try KafkaProducer(configuration: producerConfiguration, logger: logger)
        let kafkaProbe = DependencyProbe(.init(name: "kafka"), readiness: runtime.readiness, logger: logger) {
            try await producer.checkConnectivity(timeout: .seconds(3))
        }
        return runtime.serviceGroup(running: [producer, kafkaProbe])
    }
}
