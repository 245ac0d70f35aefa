import Logging
import Messaging
import Observability
import ServiceRuntime

extension ServiceRuntime {
    /// The process's idempotent Kafka producer, watched as the dependency `kafka` (a metadata
    /// request every 2 s): `/readyz` is 503 naming it while no broker answers.
    ///
    /// On shutdown the producer flushes for at most half the process's graceful-shutdown budget
    /// (2 s by default: the consumer before it must leave its group in the same budget), so what
    /// was handed to it is delivered or reported before the group cancels it; messages still
    /// undelivered then are logged as such.
    ///
    /// - Parameters:
    ///   - clientID: `client.id` of the producer (`hes-collector-<region>`), seen in broker logs.
    ///   - brokers: bootstrap servers, `host:port[,…]`.
    ///   - configure: further settings (batching, compression, raw librdkafka properties).
    public func kafkaProducer(
        clientID: String, brokers: String, configure: (inout KafkaProducerConfiguration) -> Void = { _ in }
    ) throws -> KafkaProducer {
        logger.info("kafka producer configured", metadata: [LogMetadataKey.kafkaBrokers: "\(brokers)", LogMetadataKey.kafkaClientID: "\(clientID)"])
        var producerConfiguration = KafkaProducerConfiguration(bootstrapServers: brokers)
        producerConfiguration.clientID = clientID
        producerConfiguration.shutdownFlushTimeout = max(.milliseconds(500), configuration.gracefulShutdownTimeout / 2)
        configure(&producerConfiguration)
        let producer = try KafkaProducer(configuration: producerConfiguration, logger: logger)
        watch(DependencyCheck(name: "kafka", initialReason: "connecting to \(brokers)") {
            try await producer.checkConnectivity(timeout: .seconds(2))
        })
        return producer
    }
}
