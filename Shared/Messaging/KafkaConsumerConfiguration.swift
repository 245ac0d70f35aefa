/// Settings of a ``KafkaConsumer``: a member of a consumer group with manual, contiguous commits.
///
/// `enable.auto.commit` is always off: offsets are committed only for finished messages (see
/// ``OffsetCommitTracker``). ``properties`` cannot change that.
public struct KafkaConsumerConfiguration: Sendable {
    /// Brokers to bootstrap from, `host:port` each (`bootstrap.servers`).
    public var bootstrapServers: [String]
    /// The consumer group (`group.id`), e.g. `hes-collector-<region>`.
    public var groupID: String
    /// Topics to subscribe to.
    public var topics: [String]
    /// Name in broker logs and metrics (`client.id`). Default: `"swifthes"`.
    public var clientID: String = "swifthes"
    /// Static membership id (`group.instance.id`): a restarted member with the same id gets its
    /// partitions back without a rebalance. Default: `nil` (dynamic membership).
    public var groupInstanceID: String?
    /// A member silent for this long is removed from the group and its partitions reassigned
    /// (`session.timeout.ms`). Default: 45 s.
    public var sessionTimeout: Duration = .seconds(45)
    /// Heartbeat period (`heartbeat.interval.ms`); at most a third of ``sessionTimeout``.
    /// Default: 3 s.
    public var heartbeatInterval: Duration = .seconds(3)
    /// Longest time between two polls before the member leaves the group
    /// (`max.poll.interval.ms`). Polling runs on the consumer's own thread, so only a stuck
    /// client trips it. Default: 5 min.
    public var maxPollInterval: Duration = .seconds(300)
    /// Where to start when the group has no committed offset (`auto.offset.reset`).
    /// Default: ``OffsetReset/earliest`` (never skip work).
    public var offsetReset: OffsetReset = .earliest
    /// How partitions are spread over members (`partition.assignment.strategy`).
    /// Default: ``AssignmentStrategy/range`` (co-partitioned topics land on the same member).
    public var assignmentStrategy: AssignmentStrategy = .range
    /// How often finished offsets are committed. Default: 1 s.
    public var commitInterval: Duration = .seconds(1)
    /// A partition is paused when this many of its messages are handed out and unfinished, and
    /// resumed when half of them finished. Default: 1,000.
    public var maxUnfinishedMessagesPerPartition: Int = 1000
    /// Backoff before reconnecting to a broker (`reconnect.backoff.ms`). Default: 100 ms.
    public var reconnectBackoff: Duration = .milliseconds(100)
    /// Upper bound of the reconnect backoff (`reconnect.backoff.max.ms`). Default: 10 s.
    public var reconnectBackoffMax: Duration = .seconds(10)
    /// Raw librdkafka properties applied after the settings above (escape hatch).
    /// `enable.auto.commit` is fixed.
    public var properties: [String: String] = [:]

    /// `auto.offset.reset` choices.
    public struct OffsetReset: Hashable, Sendable {
        let name: String
        public static let earliest = OffsetReset(name: "earliest")
        public static let latest = OffsetReset(name: "latest")
        /// Fail (logged as a consumer error) when there is no committed offset.
        public static let error = OffsetReset(name: "error")
    }

    /// `partition.assignment.strategy` choices.
    public struct AssignmentStrategy: Hashable, Sendable {
        let name: String
        public static let range = AssignmentStrategy(name: "range")
        public static let roundRobin = AssignmentStrategy(name: "roundrobin")
        /// Incremental (cooperative) rebalancing: members keep unaffected partitions.
        public static let cooperativeSticky = AssignmentStrategy(name: "cooperative-sticky")
    }

    public init(bootstrapServers: [String], groupID: String, topics: [String]) {
        self.bootstrapServers = bootstrapServers
        self.groupID = groupID
        self.topics = topics
    }

    /// - Parameter bootstrapServers: comma-separated `host:port` list, as in `HES_KAFKA_BROKERS`.
    public init(bootstrapServers: String, groupID: String, topics: [String]) {
        self.init(
            bootstrapServers: KafkaProducerConfiguration.splitServers(bootstrapServers), groupID: groupID, topics: topics)
    }

    var librdkafkaProperties: [(String, String)] {
        let heartbeat = min(heartbeatInterval, sessionTimeout / 3)
        var result: [(String, String)] = [
            ("bootstrap.servers", bootstrapServers.joined(separator: ",")),
            ("client.id", clientID),
            ("group.id", groupID),
            ("session.timeout.ms", String(sessionTimeout.milliseconds)),
            ("heartbeat.interval.ms", String(heartbeat.milliseconds)),
            ("max.poll.interval.ms", String(maxPollInterval.milliseconds)),
            ("auto.offset.reset", offsetReset.name),
            ("partition.assignment.strategy", assignmentStrategy.name),
            ("reconnect.backoff.ms", String(reconnectBackoff.milliseconds)),
            ("reconnect.backoff.max.ms", String(reconnectBackoffMax.milliseconds)),
            ("enable.partition.eof", "false"),
            ("enable.auto.offset.store", "false"),
        ]
        if let groupInstanceID { result.append(("group.instance.id", groupInstanceID)) }
        result += properties.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        result.append(("enable.auto.commit", "false"))
        return result
    }
}
