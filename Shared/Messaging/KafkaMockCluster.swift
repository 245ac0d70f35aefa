import CRdKafka
import Logging

/// An in-process Kafka cluster from librdkafka's mock broker (`rd_kafka_mock_cluster_new`), for
/// tests and `kafka-dev`. Its brokers listen on 127.0.0.1 (ephemeral ports) and speak the Kafka
/// protocol, so clients in other processes can use it too.
///
/// Known behaviour of librdkafka 2.0.2's mock: produce, consumer groups, manual commits and
/// idempotent producers work; a member joining or leaving waits `session.timeout.ms` − 1 s before
/// partitions are reassigned (use a short session timeout in tests); offset commits are refused
/// while a rebalance is in progress (so redelivery after a rebalance is normal); transactions are
/// not honoured; storage is memory only, at most ~5 MiB or 100,000 message sets per partition.
public final class KafkaMockCluster: Sendable {
    // The cluster is destroyed before the handle that owns it (see deinit).
    private let client: RDKafkaClient
    private nonisolated(unsafe) let cluster: OpaquePointer
    /// Comma-separated `host:port` list of the mock brokers.
    public let bootstrapServers: String
    /// Number of brokers (ids 1 ... brokers).
    public let brokers: Int

    /// Starts `brokers` mock brokers.
    /// - Throws: ``KafkaError`` with code ``KafkaError/Code/mockCluster`` if the cluster could
    ///   not start.
    public init(brokers: Int = 1, logger: Logger) throws {
        guard brokers >= 1 else { throw KafkaError.mockCluster("a mock cluster needs at least one broker") }
        // A plain producer handle without brokers owns the cluster; it never connects anywhere.
        client = try RDKafkaClient(
            kind: .producer, properties: [("client.id", "kafka-mock-cluster"), ("log_level", "4")], context: RDKafkaContext(logger: logger))
        guard let cluster = rd_kafka_mock_cluster_new(client.handle, Int32(brokers)) else {
            throw KafkaError.mockCluster("rd_kafka_mock_cluster_new failed for \(brokers) brokers")
        }
        self.cluster = cluster
        self.brokers = brokers
        bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
    }

    deinit {
        rd_kafka_mock_cluster_destroy(cluster)
    }

    /// Creates `name` with `partitions` partitions.
    /// - Throws: ``KafkaError`` if the mock refused (e.g. the replication factor exceeds the
    ///   broker count).
    public func createTopic(name: String, partitions: Int, replicationFactor: Int = 1) throws {
        // A short round trip to the mock's own thread; it does not wait on the network.
        let result = rd_kafka_mock_topic_create(cluster, name, Int32(partitions), Int32(replicationFactor))
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError.rdKafka(result, "creating mock topic \(name) (\(partitions) partitions, replication \(replicationFactor))")
        }
    }

    /// Takes broker `id` (1 ... ``brokers``) down: its connections close and it refuses new ones.
    public func setBrokerDown(_ id: Int) throws {
        let result = rd_kafka_mock_broker_set_down(cluster, Int32(id))
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError.rdKafka(result, "taking mock broker \(id) down") }
    }

    /// Brings broker `id` back up after ``setBrokerDown(_:)``.
    public func setBrokerUp(_ id: Int) throws {
        let result = rd_kafka_mock_broker_set_up(cluster, Int32(id))
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError.rdKafka(result, "bringing mock broker \(id) up") }
    }
}
