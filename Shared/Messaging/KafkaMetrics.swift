import Metrics
import Synchronization

/// The binding's metrics. Per-topic counters are created once and reused: creating a `Counter`
/// goes through the metrics factory, too costly per message.
final class KafkaMetrics: Sendable {
    static let shared = KafkaMetrics()

    private let counters = Mutex<[String: Counter]>([:])
    private let gauges = Mutex<[String: Gauge]>([:])

    /// Messages the broker acknowledged, by topic.
    func produced(topic: String) -> Counter { counter("hes_kafka_messages_produced_total", topic: topic) }
    /// Sends that failed (after librdkafka's retries), by topic.
    func deliveryFailed(topic: String) -> Counter { counter("hes_kafka_delivery_failures_total", topic: topic) }
    /// Messages handed to the application, by topic.
    func consumed(topic: String) -> Counter { counter("hes_kafka_messages_consumed_total", topic: topic) }

    /// Messages a consumer never saw because the log dropped them before it read them, by topic.
    func lost(topic: String) -> Counter { counter("hes_kafka_messages_lost_total", topic: topic) }

    /// Messages of a partition this member owns that are not done yet (``OffsetCommitTracker/lag(of:highWatermark:)``);
    /// 0 once the partition moved to another member, so a sum over members is the group's lag.
    func lag(group: String, partition: KafkaTopicPartition) -> Gauge {
        gauges.withLock { gauges in
            let key = "\(group)\u{0}\(partition.topic)\u{0}\(partition.partition)"
            if let gauge = gauges[key] { return gauge }
            let gauge = Gauge(label: "hes_kafka_consumer_lag", dimensions: [("group", group), ("topic", partition.topic), ("partition", "\(partition.partition)")])
            gauges[key] = gauge
            return gauge
        }
    }

    let commitFailures = Counter(label: "hes_kafka_commit_failures_total")
    let rebalances = Counter(label: "hes_kafka_rebalances_total")

    private func counter(_ label: String, topic: String) -> Counter {
        counters.withLock { counters in
            let key = "\(label)\u{0}\(topic)"
            if let counter = counters[key] { return counter }
            let counter = Counter(label: label, dimensions: [("topic", topic)])
            counters[key] = counter
            return counter
        }
    }
}
