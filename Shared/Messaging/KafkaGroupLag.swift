import CRdKafka
import Logging

/// Measures how far a consumer group is behind on some topics: the sum over their partitions of
/// the high watermark minus the group's committed offset (a partition the group never committed
/// counts from its low watermark). The scheduler uses it as a region's outstanding work.
///
/// It holds a consumer handle configured with the group's id that never subscribes, so it does
/// not join the group or disturb its members; blocking librdkafka calls run on its own thread.
public final class KafkaGroupLag: Sendable {
    private let client: RDKafkaClient
    private let thread: KafkaPollThread
    public let groupID: String

    /// - Throws: ``KafkaError`` with code ``KafkaError/Code/configuration`` for rejected settings.
    public init(bootstrapServers: String, groupID: String, logger: Logger) throws {
        self.groupID = groupID
        var logger = logger
        logger[metadataKey: "kafka.group"] = "\(groupID)"
        let client = try RDKafkaClient(kind: .consumer, properties: [
            ("bootstrap.servers", bootstrapServers), ("group.id", groupID), ("client.id", "hes-lag-probe"),
            ("enable.auto.commit", "false"), ("enable.partition.eof", "false"),
        ], context: RDKafkaContext(logger: logger))
        self.client = client
        thread = KafkaPollThread(name: "kafka-lag \(groupID)", pollOnce: {
            rd_kafka_poll(client.handle, 100)
            return true
        })
    }

    deinit {
        thread.requestStop()
    }

    /// The group's lag over all partitions of `topics`.
    /// - Throws: ``KafkaError`` when the cluster did not answer within `timeout` (each step).
    public func lag(topics: [String], timeout: Duration = .seconds(2)) async throws -> Int {
        let client = self.client
        let milliseconds = Int32(clamping: timeout.milliseconds)
        let result: Result<Int, KafkaError> = try await thread.execute {
            var partitions: [KafkaTopicPartition] = []
            for topic in topics {
                guard let topicHandle = rd_kafka_topic_new(client.handle, topic, nil) else { continue }
                defer { rd_kafka_topic_destroy(topicHandle) }
                var metadata: UnsafePointer<rd_kafka_metadata>? = nil
                let code = rd_kafka_metadata(client.handle, 0, topicHandle, &metadata, milliseconds)
                guard code == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
                    return .failure(KafkaError.rdKafka(code, "reading the partitions of \(topic)"))
                }
                defer { rd_kafka_metadata_destroy(metadata) }
                for index in 0..<Int(metadata.pointee.topic_cnt) {
                    let described = metadata.pointee.topics[index]
                    guard described.err == RD_KAFKA_RESP_ERR_NO_ERROR else { continue }
                    for partition in 0..<Int(described.partition_cnt) {
                        partitions.append(KafkaTopicPartition(topic: topic, partition: described.partitions[partition].id))
                    }
                }
            }
            guard !partitions.isEmpty else { return .success(0) }
            var committed: [KafkaTopicPartition: Int64] = [:]
            let code = RDKafkaClient.withPartitionList(partitions.map { ($0, Int64(RD_KAFKA_OFFSET_INVALID)) }) { list in
                let code = rd_kafka_committed(client.handle, list, milliseconds)
                if code == RD_KAFKA_RESP_ERR_NO_ERROR {
                    for (partition, offset, _) in RDKafkaClient.topicPartitions(list) where offset >= 0 { committed[partition] = offset }
                }
                return code
            }
            guard code == RD_KAFKA_RESP_ERR_NO_ERROR else {
                return .failure(KafkaError.rdKafka(code, "reading the committed offsets of the group"))
            }
            var lag = 0
            for partition in partitions {
                var low: Int64 = 0
                var high: Int64 = 0
                let code = rd_kafka_query_watermark_offsets(client.handle, partition.topic, partition.partition, &low, &high, milliseconds)
                guard code == RD_KAFKA_RESP_ERR_NO_ERROR else {
                    return .failure(KafkaError.rdKafka(code, "reading the watermarks of \(partition.topic)[\(partition.partition)]"))
                }
                lag += Int(max(0, high - max(low, committed[partition] ?? low)))
            }
            return .success(lag)
        }
        return try result.get()
    }
}
