import Logging
import Messaging
import Persistence
import ServiceLifecycle
import ServiceRuntime

/// Everything the uploader needs to run.
struct UploaderConfiguration: Sendable {
    var runtime: RuntimeConfiguration
    var database: DatabaseConfiguration
    var kafkaBrokers: String
    var imsURL: String
}

extension App {
    /// Builds the uploader's services: the database (migrations, readiness) and the producer
    /// for the dead-letter topic. Delivery to the IMS arrives with the uploader issue.
    static func serviceGroup(for configuration: UploaderConfiguration) throws -> ServiceGroup {
        let runtime = ServiceRuntime(configuration.runtime)
        let logger = runtime.logger
        logger.info("uploader starting", metadata: [
            "db.endpoint": "\(configuration.database.endpoint)", "kafka.brokers": "\(configuration.kafkaBrokers)",
            "ims.url": "\(configuration.imsURL)",
        ])
        runtime.readiness.register("database")
        let database = DatabaseService(configuration: .init(database: configuration.database), logger: logger) {
            runtime.readiness.markReady("database")
        }
        var producerConfiguration = KafkaProducerConfiguration(bootstrapServers: configuration.kafkaBrokers)
        producerConfiguration.clientID = "hes-uploader"
        producerConfiguration.shutdownFlushTimeout = .seconds(3)
        let producer = try KafkaProducer(configuration: producerConfiguration, logger: logger)
        let kafkaProbe = DependencyProbe(.init(name: "kafka"), readiness: runtime.readiness, logger: logger) {
            try await producer.checkConnectivity(timeout: .seconds(3))
        }
        return runtime.serviceGroup(running: [database, producer, kafkaProbe])
    }
}
