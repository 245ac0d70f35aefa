import Contracts
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
    var ims: IMSClient.Configuration
    var delivery = DeliveryWorker.Configuration()
    /// A member silent this long loses its partitions to the others. Default: 45 s.
    var kafkaSessionTimeout: Duration = .seconds(45)
}

extension App {
    /// Builds the uploader: the database (progress, outcomes, audit; watched), the producer of
    /// the dead-letter topic (watched as `kafka`), the consumer of `hes.readings` and
    /// `hes.results` (group `hes-uploader`) and the ``DeliveryWorker``.
    ///
    /// Shutdown runs in reverse: the worker settles what the IMS decided, the consumer commits
    /// and leaves, the producer flushes, the database closes.
    static func serviceGroup(for configuration: UploaderConfiguration) throws -> ServiceGroup {
        let runtime = ServiceRuntime(configuration.runtime)
        runtime.logger.info("uploader starting", metadata: [
            LogMetadataKey.imsURL: "\(configuration.ims.baseURL)", "ims.format": "\(configuration.delivery.format.rawValue)",
            "catch-up.order": "\(configuration.delivery.limits.catchUpOrder.rawValue)",
        ])
        let database = runtime.database(configuration.database)
        let producer = try runtime.kafkaProducer(clientID: "hes-uploader", brokers: configuration.kafkaBrokers)
        var consumerConfiguration = KafkaConsumerConfiguration(
            bootstrapServers: configuration.kafkaBrokers, groupID: "hes-uploader", topics: [KafkaTopics.readings, KafkaTopics.results])
        consumerConfiguration.clientID = "hes-uploader"
        consumerConfiguration.sessionTimeout = configuration.kafkaSessionTimeout
        // Memory stays bounded while the IMS is down: few handed-out messages per partition and a
        // small librdkafka fetch queue (its default is 64 MiB); the worker's queues bound the rest.
        consumerConfiguration.maxUnfinishedMessagesPerPartition = 256
        consumerConfiguration.properties["queued.max.messages.kbytes"] = "16384"
        let consumer = try KafkaConsumer(configuration: consumerConfiguration, logger: runtime.logger)
        let worker = DeliveryWorker(
            configuration: configuration.delivery, consumer: consumer, producer: producer, client: try IMSClient(configuration: configuration.ims),
            recorder: ProgressRecorder(database: database, logger: runtime.logger), logger: runtime.logger)
        return runtime.serviceGroup(running: [database, producer, consumer, worker])
    }
}
