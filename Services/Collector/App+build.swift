import Contracts
import DLMSSecurity
import Logging
import Messaging
import Observability
import ServiceDependencies
import ServiceLifecycle
import ServiceRuntime

/// Everything the collector needs to run, resolved from flags, environment and file.
struct CollectorConfiguration: Sendable {
    var runtime: RuntimeConfiguration
    /// The region whose `hes.tasks.<region>` topics this worker consumes.
    var region: String
    var kafkaBrokers: String
    /// Sessions at once over all lines. Default: 256.
    var maxConcurrentLines: Int
    /// Unwraps the meters' keys in tasks (earlier keys too, during a rotation); without it, tasks
    /// with keys fail with `keys.unavailable`.
    var masterKeys: MasterKeyRing? = nil
    /// How long the group waits for a silent member before its partitions move. Default: 45 s.
    var kafkaSessionTimeout: Duration = .seconds(45)
    /// New connections per second into one network segment (tasks name it); 0 = not paced.
    var segmentConnectionRate: Double = 0
    /// Retries of sessions that fail retriably.
    var retry = TaskExecutor.RetryPolicy()
    /// Deadlines for meters whose access does not give its own.
    var sessionDefaults = MeterSessionPlan.Defaults()
}

extension App {
    /// Builds the collector: the producer of readings and results (watched as `kafka`), the
    /// consumer of the region's task topics (group `hes-collector-<region>`, range assignor so
    /// a line's normal and priority partitions land on one member) and the ``TaskWorker``.
    ///
    /// Order matters on shutdown (reverse order): the worker stops first and marks what it
    /// finished, then the consumer commits and leaves the group, then the producer flushes.
    static func serviceGroup(for configuration: CollectorConfiguration) throws -> ServiceGroup {
        var runtimeConfiguration = configuration.runtime
        runtimeConfiguration.logMetadata[LogMetadataKey.region] = configuration.region
        let runtime = ServiceRuntime(runtimeConfiguration)
        runtime.logger.info("collector starting", metadata: [
            "sessions.max": "\(configuration.maxConcurrentLines)", "master_key": "\(configuration.masterKeys.map { $0.current.id } ?? "none")",
        ])
        let clientID = KafkaTopics.collectorGroup(region: configuration.region)
        let producer = try runtime.kafkaProducer(clientID: clientID, brokers: configuration.kafkaBrokers)
        var consumerConfiguration = KafkaConsumerConfiguration(
            bootstrapServers: configuration.kafkaBrokers, groupID: clientID,
            topics: KafkaTopics.taskTopics(region: configuration.region))
        consumerConfiguration.clientID = clientID
        consumerConfiguration.assignmentStrategy = .range
        consumerConfiguration.sessionTimeout = configuration.kafkaSessionTimeout
        let consumer = try KafkaConsumer(configuration: consumerConfiguration, logger: runtime.logger)
        let executor = TaskExecutor(defaults: configuration.sessionDefaults, retry: configuration.retry, masterKeys: configuration.masterKeys,
                                    lines: LineRegistry(), pacer: ConnectionPacer(rate: configuration.segmentConnectionRate), logger: runtime.logger)
        let worker = TaskWorker(
            configuration: .init(region: configuration.region, maxConcurrentSessions: configuration.maxConcurrentLines),
            consumer: consumer, producer: producer, executor: executor, logger: runtime.logger)
        return runtime.serviceGroup(running: [producer, consumer, worker])
    }
}
