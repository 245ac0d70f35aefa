/// Settings of a ``KafkaProducer``.
///
/// The producer is always idempotent (`enable.idempotence=true`, `acks=all`): a retried send
/// never duplicates or reorders a message within a partition. ``properties`` cannot change that.
public struct KafkaProducerConfiguration: Sendable {
    /// Brokers to bootstrap from, `host:port` each (`bootstrap.servers`).
    public var bootstrapServers: [String]
    /// Name in broker logs and metrics (`client.id`). Default: `"swifthes"`.
    public var clientID: String = "swifthes"
    /// How long librdkafka keeps retrying a message before its ``KafkaProducer/send(topic:key:value:headers:)``
    /// fails with ``KafkaError/Code/messageTimedOut`` (`message.timeout.ms`). Default: 30 s.
    public var messageTimeout: Duration = .seconds(30)
    /// How long to wait for more messages to batch (`linger.ms`). Default: 5 ms.
    public var linger: Duration = .milliseconds(5)
    /// Compression of message batches (`compression.codec`). Default: ``Compression/lz4``.
    public var compression: Compression = .lz4
    /// Backoff before reconnecting to a broker, doubling up to ``reconnectBackoffMax``
    /// (`reconnect.backoff.ms`). Default: 100 ms.
    public var reconnectBackoff: Duration = .milliseconds(100)
    /// Upper bound of the reconnect backoff (`reconnect.backoff.max.ms`). Default: 10 s.
    public var reconnectBackoffMax: Duration = .seconds(10)
    /// Local queue bound in messages (`queue.buffering.max.messages`); a full queue makes `send`
    /// wait. Default: 100,000.
    public var maxQueuedMessages: Int = 100_000
    /// How long ``KafkaProducer/run()`` waits for outstanding messages on shutdown. Default: 10 s.
    public var shutdownFlushTimeout: Duration = .seconds(10)
    /// Raw librdkafka properties applied after the settings above (escape hatch; see
    /// librdkafka's CONFIGURATION.md). `enable.idempotence` and `acks` are fixed.
    public var properties: [String: String] = [:]

    /// Compression codecs librdkafka supports.
    public struct Compression: Hashable, Sendable {
        let name: String
        public static let none = Compression(name: "none")
        public static let gzip = Compression(name: "gzip")
        public static let snappy = Compression(name: "snappy")
        public static let lz4 = Compression(name: "lz4")
        public static let zstd = Compression(name: "zstd")
    }

    public init(bootstrapServers: [String]) {
        self.bootstrapServers = bootstrapServers
    }

    /// - Parameter bootstrapServers: comma-separated `host:port` list, as in `HES_KAFKA_BROKERS`.
    public init(bootstrapServers: String) {
        self.init(bootstrapServers: KafkaProducerConfiguration.splitServers(bootstrapServers))
    }

    var librdkafkaProperties: [(String, String)] {
        var result: [(String, String)] = [
            ("bootstrap.servers", bootstrapServers.joined(separator: ",")),
            ("client.id", clientID),
            ("message.timeout.ms", String(messageTimeout.milliseconds)),
            ("linger.ms", String(linger.milliseconds)),
            ("compression.codec", compression.name),
            ("reconnect.backoff.ms", String(reconnectBackoff.milliseconds)),
            ("reconnect.backoff.max.ms", String(reconnectBackoffMax.milliseconds)),
            ("queue.buffering.max.messages", String(maxQueuedMessages)),
        ]
        result += properties.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        result += [("enable.idempotence", "true"), ("acks", "all")]
        return result
    }

    static func splitServers(_ list: String) -> [String] {
        list.split(separator: ",").map { String($0.filter { !$0.isWhitespace }) }.filter { !$0.isEmpty }
    }
}

extension Duration {
    /// Whole milliseconds, rounded down; what librdkafka's `*.ms` properties take.
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
