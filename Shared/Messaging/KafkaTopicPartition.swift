/// One partition of one topic.
public struct KafkaTopicPartition: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32

    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    public var description: String { "\(topic)[\(partition)]" }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.topic, lhs.partition) < (rhs.topic, rhs.partition)
    }
}

/// A Kafka record header.
public struct KafkaHeader: Hashable, Sendable {
    public var key: String
    /// `nil` is a header without a value (distinct from an empty value).
    public var value: [UInt8]?

    public init(key: String, value: [UInt8]?) {
        self.key = key
        self.value = value
    }

    public init(key: String, value: String) {
        self.init(key: key, value: Array(value.utf8))
    }
}

/// Where the broker stored a produced message.
public struct KafkaDeliveryReport: Hashable, Sendable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64

    public var topicPartition: KafkaTopicPartition { KafkaTopicPartition(topic: topic, partition: partition) }
}

/// A message read by a ``KafkaConsumer``. Hand it back with ``KafkaConsumer/markFinished(_:)``
/// once its work is done; only then can its offset be committed.
public struct KafkaConsumerMessage: Sendable, Hashable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public var key: [UInt8]?
    public var value: [UInt8]
    public var headers: [KafkaHeader]
    /// The message timestamp in milliseconds since the epoch, if the broker reported one.
    public var timestampMilliseconds: Int64?
    /// The assignment this message belongs to; marks from an earlier assignment are ignored.
    let generation: OffsetCommitTracker.Generation

    public var topicPartition: KafkaTopicPartition { KafkaTopicPartition(topic: topic, partition: partition) }

    /// The key decoded as UTF-8 (keys in SwiftHES are line, meter and task ids).
    public var keyString: String? { key.map { String(decoding: $0, as: UTF8.self) } }

    /// The first header named `key`.
    public func header(_ key: String) -> KafkaHeader? { headers.first { $0.key == key } }

    public init(
        topic: String, partition: Int32, offset: Int64, key: [UInt8]?, value: [UInt8], headers: [KafkaHeader] = [],
        timestampMilliseconds: Int64? = nil
    ) {
        self.init(
            topic: topic, partition: partition, offset: offset, key: key, value: value, headers: headers,
            timestampMilliseconds: timestampMilliseconds, generation: 0)
    }

    init(
        topic: String, partition: Int32, offset: Int64, key: [UInt8]?, value: [UInt8], headers: [KafkaHeader],
        timestampMilliseconds: Int64?, generation: OffsetCommitTracker.Generation
    ) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.headers = headers
        self.timestampMilliseconds = timestampMilliseconds
        self.generation = generation
    }
}
