import Logging
import Messaging
import Observability
import Persistence
import ServiceDependencies
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
    /// Builds the uploader's services: the database and the producer for the dead-letter topic,
    /// both watched. Delivery to the IMS arrives with the uploader issue.
    static func serviceGroup(for configuration: UploaderConfiguration) throws -> ServiceGroup {
        let runtime = ServiceRuntime(configuration.runtime)
        runtime.logger.info("uploader starting", metadata: [LogMetadataKey.imsURL: "\(configuration.imsURL)"])
        let database = runtime.database(configuration.database)
        let producer = try runtime.kafkaProducer(clientID: "hes-uploader", brokers: configuration.kafkaBrokers)
        return runtime.serviceGroup(running: [database, producer])
    }
}
