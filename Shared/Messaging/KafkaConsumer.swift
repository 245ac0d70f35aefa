import CRdKafka
import Logging
import Metrics
import Observability
import ServiceLifecycle
import Synchronization

/// A consumer-group member with manual, contiguous commits and per-partition backpressure.
///
/// Read ``messages`` and call ``markFinished(_:)`` when a message's work is done; messages may
/// finish in any order, and only offsets below which everything finished are committed (every
/// ``KafkaConsumerConfiguration/commitInterval``, on partition revocation, and on shutdown). A
/// crash therefore means redelivery, never loss.
///
/// A partition with ``KafkaConsumerConfiguration/maxUnfinishedMessagesPerPartition`` unfinished
/// messages is paused until half of them finished, which also bounds memory.
///
/// On revocation (rebalance) finished work of the revoked partitions is committed, then their
/// in-flight work is dropped: its marks are ignored and messages of them still unread in
/// ``messages`` are skipped; the new owner reads them again from the committed offset.
///
/// All librdkafka calls that block (poll, commit, close) run on the consumer's own thread,
/// started by ``run()``; ``run()`` returns after graceful shutdown or cancellation, once the
/// consumer committed finished work and left the group. In a `ServiceGroup`, list the consumer
/// *before* the service that processes its messages: services stop in reverse order, so the
/// worker finishes and marks its in-flight work first, then the consumer commits and leaves.
public final class KafkaConsumer: Service, Sendable {
    private let client: RDKafkaClient
    private let core: ConsumerCore
    private let configuration: KafkaConsumerConfiguration
    private let logger: Logger
    private let stream: AsyncThrowingStream<KafkaConsumerMessage, any Error>
    private let pollThread = Mutex<KafkaPollThread?>(nil)
    private let started = Atomic<Bool>(false)

    /// Creates the consumer; it joins the group and subscribes to
    /// ``KafkaConsumerConfiguration/topics`` in ``run()``.
    /// - Parameters:
    ///   - clock: times ``KafkaConsumerConfiguration/commitInterval``. Default: `ContinuousClock`.
    ///   - onCommit: called on the consumer thread after every successful commit with the
    ///     committed offsets (next offset to read) — for audit logs and tests.
    /// - Throws: ``KafkaError`` with code ``KafkaError/Code/configuration`` for rejected settings.
    public init(
        configuration: KafkaConsumerConfiguration, logger: Logger,
        clock: some Clock<Duration> = ContinuousClock(),
        onCommit: (@Sendable ([KafkaTopicPartition: Int64]) -> Void)? = nil
    ) throws {
        var logger = logger
        logger[metadataKey: LogMetadataKey.kafkaClientID] = "\(configuration.clientID)"
        logger[metadataKey: LogMetadataKey.kafkaGroup] = "\(configuration.groupID)"
        self.logger = logger
        self.configuration = configuration
        guard !configuration.topics.isEmpty else { throw KafkaError.configuration("a consumer needs at least one topic") }

        let (stream, continuation) = AsyncThrowingStream.makeStream(of: KafkaConsumerMessage.self, throwing: (any Error).self)
        self.stream = stream
        let core = ConsumerCore(configuration: configuration, logger: logger, clock: KafkaClock(clock), continuation: continuation, onCommit: onCommit)
        self.core = core
        let context = RDKafkaContext(logger: logger)
        context.rebalanceHandler = { handle, code, partitions in core.rebalance(handle: handle, code: code, partitions: partitions) }
        client = try RDKafkaClient(
            kind: .consumer, properties: configuration.librdkafkaProperties, context: context, callbacks: [.rebalance])

        // Serve the main queue (errors, logs, rebalances) from rd_kafka_consumer_poll.
        let redirect = rd_kafka_poll_set_consumer(client.handle)
        guard redirect == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError.rdKafka(redirect, "redirecting the main queue") }
    }

    deinit {
        pollThread.withLock { $0?.requestStop() }
    }

    // MARK: - Messages

    /// The messages of the assigned partitions, in offset order per partition. Iterate it once;
    /// it ends when the consumer shuts down and throws if the client failed fatally.
    public var messages: KafkaConsumerMessages { KafkaConsumerMessages(stream: stream, core: core) }

    /// Marks the work of `message` as done, so its offset can be committed once every earlier
    /// message of its partition is done too. Marks for partitions revoked since are ignored.
    public func markFinished(_ message: KafkaConsumerMessage) {
        core.markFinished(message)
    }

    /// Messages handed out (or waiting in ``messages``) and not finished, over all partitions.
    public var unfinishedCount: Int { core.unfinishedCount }

    /// The partitions currently assigned to this member.
    public var assignment: [KafkaTopicPartition] { core.assignment }

    /// Per assigned partition, the messages not done yet: from the first unfinished one to the
    /// end of the log as last fetched (librdkafka's cached high watermark, no broker round trip).
    /// Partitions whose watermark or position is not known yet are left out. The same figures
    /// are the gauge `hes_kafka_consumer_lag{group,topic,partition}`, refreshed every 5 s.
    public var lag: [KafkaTopicPartition: Int64] { core.lag(handle: client.handle) }

    /// Whether `message`'s partition is still this member's, in the assignment it was read in:
    /// work on a message that is no longer current is another member's now (a rebalance gave
    /// its partition away), and its mark would be ignored.
    public func isCurrent(_ message: KafkaConsumerMessage) -> Bool {
        core.isCurrent(message)
    }

    /// Commits finished work now (instead of at the next commit interval).
    /// - Throws: ``KafkaError`` if the broker refused (e.g. ``KafkaError/Code/rebalanceInProgress``)
    ///   or ``KafkaError/Code/shutdown`` when the consumer is not running.
    public func commitFinished() async throws {
        guard let thread = pollThread.withLock({ $0 }) else { throw KafkaError.shutdown("the consumer is not running") }
        let client = self.client
        let core = self.core
        if let error = try await thread.execute({ core.commitPending(handle: client.handle) }) { throw error }
    }

    /// The group's committed offsets (next offset to read) for `partitions`, from the broker.
    /// - Throws: ``KafkaError`` when the broker did not answer within `timeout`, or
    ///   ``KafkaError/Code/shutdown`` when the consumer is not running.
    public func committedOffsets(
        for partitions: [KafkaTopicPartition], timeout: Duration = .seconds(10)
    ) async throws -> [KafkaTopicPartition: Int64] {
        guard let thread = pollThread.withLock({ $0 }) else { throw KafkaError.shutdown("the consumer is not running") }
        let client = self.client
        let milliseconds = Int32(clamping: timeout.milliseconds)
        let result: Result<[KafkaTopicPartition: Int64], KafkaError> = try await thread.execute {
            RDKafkaClient.withPartitionList(partitions.map { ($0, Int64(RD_KAFKA_OFFSET_INVALID)) }) { list in
                let code = rd_kafka_committed(client.handle, list, milliseconds)
                guard code == RD_KAFKA_RESP_ERR_NO_ERROR else {
                    return .failure(KafkaError.rdKafka(code, "reading committed offsets"))
                }
                var offsets: [KafkaTopicPartition: Int64] = [:]
                for (partition, offset, _) in RDKafkaClient.topicPartitions(list) where offset >= 0 {
                    offsets[partition] = offset
                }
                return .success(offsets)
            }
        }
        return try result.get()
    }

    // MARK: - Service

    /// Polls on the consumer's thread until graceful shutdown or cancellation; then commits
    /// finished work, leaves the group and ends ``messages``.
    /// - Throws: the fatal ``KafkaError`` if the client failed fatally.
    public func run() async throws {
        guard !started.exchange(true, ordering: .relaxed) else {
            throw KafkaError.shutdown("KafkaConsumer.run() was called twice")
        }
        let client = self.client
        let core = self.core
        // Joining the group only now: a member that joined but does not poll would hold its
        // partitions without reading them.
        let topics = configuration.topics.map { (KafkaTopicPartition(topic: $0, partition: RD_KAFKA_PARTITION_UA), Int64(0)) }
        let subscribed = RDKafkaClient.withPartitionList(topics) { rd_kafka_subscribe(client.handle, $0) }
        guard subscribed == RD_KAFKA_RESP_ERR_NO_ERROR else {
            let error = KafkaError.rdKafka(subscribed, "subscribing to \(configuration.topics.joined(separator: ","))")
            core.finish(throwing: error)
            throw error
        }
        let thread = KafkaPollThread(
            name: "kafka-consumer-\(configuration.groupID)",
            pollOnce: { core.pollOnce(handle: client.handle, context: client.context) },
            onExit: { core.close(handle: client.handle) })
        pollThread.withLock { $0 = thread }
        logger.info("Kafka consumer started", metadata: [
            LogMetadataKey.kafkaBrokers: "\(configuration.bootstrapServers.joined(separator: ","))",
            LogMetadataKey.kafkaTopic: "\(configuration.topics.joined(separator: ","))",
        ])
        await withTaskCancellationOrGracefulShutdownHandler {
            await thread.waitForExit()
        } onCancelOrGracefulShutdown: {
            thread.requestStop()
        }
        if let error = core.terminalError { throw error }
    }
}

/// The messages of a ``KafkaConsumer``; see ``KafkaConsumer/messages``.
public struct KafkaConsumerMessages: AsyncSequence, Sendable {
    public typealias Element = KafkaConsumerMessage
    let stream: AsyncThrowingStream<KafkaConsumerMessage, any Error>
    let core: ConsumerCore

    public struct AsyncIterator: AsyncIteratorProtocol {
        var inner: AsyncThrowingStream<KafkaConsumerMessage, any Error>.AsyncIterator
        let core: ConsumerCore

        public mutating func next() async throws -> KafkaConsumerMessage? {
            while let message = try await inner.next() {
                // Skip messages of partitions revoked while they waited in the buffer.
                if core.isCurrent(message) { return message }
            }
            return nil
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(inner: stream.makeAsyncIterator(), core: core)
    }
}

// MARK: - Core

/// The consumer's state shared between its thread (poll, rebalance, commit) and the tasks that
/// read messages and mark them finished.
final class ConsumerCore: Sendable {
    private struct State {
        var tracker = OffsetCommitTracker()
        var paused: Set<KafkaTopicPartition> = []
        /// When the last interval's commit ran, on the consumer's clock.
        var lastCommit: Duration = .zero
        /// When the lag gauges were last refreshed, on the consumer's clock.
        var lastLag: Duration = .zero
        var terminalError: KafkaError?
    }

    private let state = Mutex(State())
    private let logger: Logger
    private let continuation: AsyncThrowingStream<KafkaConsumerMessage, any Error>.Continuation
    private let onCommit: (@Sendable ([KafkaTopicPartition: Int64]) -> Void)?
    private let maxUnfinished: Int
    private let commitInterval: Duration
    private let clock: KafkaClock
    private let groupID: String
    private static let batchSize = 500
    private static let lagInterval: Duration = .seconds(5)

    init(
        configuration: KafkaConsumerConfiguration, logger: Logger, clock: KafkaClock,
        continuation: AsyncThrowingStream<KafkaConsumerMessage, any Error>.Continuation,
        onCommit: (@Sendable ([KafkaTopicPartition: Int64]) -> Void)?
    ) {
        self.logger = logger
        self.clock = clock
        self.continuation = continuation
        self.onCommit = onCommit
        maxUnfinished = max(1, configuration.maxUnfinishedMessagesPerPartition)
        groupID = configuration.groupID
        commitInterval = configuration.commitInterval
    }

    var terminalError: KafkaError? { state.withLock { $0.terminalError } }
    var assignment: [KafkaTopicPartition] { state.withLock { $0.tracker.assignedPartitions } }
    var unfinishedCount: Int { state.withLock { $0.tracker.unfinishedCount } }

    func isCurrent(_ message: KafkaConsumerMessage) -> Bool {
        state.withLock { $0.tracker.generation(of: message.topicPartition) == message.generation }
    }

    func markFinished(_ message: KafkaConsumerMessage) {
        let accepted = state.withLock {
            $0.tracker.finished(offset: message.offset, in: message.topicPartition, generation: message.generation)
        }
        if !accepted {
            logger.debug("ignoring finish of a message no longer owned", metadata: Self.metadata(message))
        }
    }

    // MARK: Poll thread

    /// One poll step on the consumer thread. Returns `false` when the consumer must stop.
    func pollOnce(handle: OpaquePointer, context: RDKafkaContext) -> Bool {
        if let fatal = context.fatalError {
            state.withLock { $0.terminalError = fatal }
            logger.critical("Kafka consumer stopping after a fatal error", metadata: [LogMetadataKey.error: "\(fatal)"])
            return false
        }
        var count = 0
        while count < Self.batchSize, let message = rd_kafka_consumer_poll(handle, count == 0 ? 100 : 0) {
            count += 1
            receive(message, handle: handle)
            rd_kafka_message_destroy(message)
        }
        resumeDrainedPartitions(handle: handle)
        let now = clock.elapsed()
        let due = state.withLock { state in
            guard now - state.lastCommit >= commitInterval else { return false }
            state.lastCommit = now
            return true
        }
        if due, let error = commitPending(handle: handle) {
            logger.warning("Kafka offset commit failed, retrying at the next interval", metadata: [LogMetadataKey.error: "\(error)"])
        }
        let lagDue = state.withLock { state in
            guard now - state.lastLag >= Self.lagInterval else { return false }
            state.lastLag = now
            return true
        }
        if lagDue {
            for (partition, lag) in lag(handle: handle) { KafkaMetrics.shared.lag(group: groupID, partition: partition).record(lag) }
        }
        return true
    }

    /// See ``KafkaConsumer/lag``.
    func lag(handle: OpaquePointer) -> [KafkaTopicPartition: Int64] {
        var lags: [KafkaTopicPartition: Int64] = [:]
        for partition in assignment {
            var low: Int64 = 0
            var high: Int64 = 0
            guard rd_kafka_get_watermark_offsets(handle, partition.topic, partition.partition, &low, &high) == RD_KAFKA_RESP_ERR_NO_ERROR,
                  high >= 0 else { continue }
            if let lag = state.withLock({ $0.tracker.lag(of: partition, highWatermark: high) }) { lags[partition] = lag }
        }
        return lags
    }

    private func receive(_ message: UnsafeMutablePointer<rd_kafka_message_t>, handle: OpaquePointer) {
        let raw = message.pointee
        guard raw.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            let error = KafkaError.rdKafka(raw.err, "consumer")
            if error.isRetriable {
                logger.warning("Kafka consumer error, retrying", metadata: [LogMetadataKey.error: "\(error)"])
            } else {
                logger.error("Kafka consumer error", metadata: [LogMetadataKey.error: "\(error)"])
            }
            return
        }
        let topic = raw.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
        let partition = KafkaTopicPartition(topic: topic, partition: raw.partition)
        let (generation, pause, missing) = state.withLock { state -> (OffsetCommitTracker.Generation?, Bool, Int64) in
            let missing = state.tracker.missing(before: raw.offset, in: partition)
            guard let generation = state.tracker.received(offset: raw.offset, in: partition) else { return (nil, false, 0) }
            let pause = state.tracker.unfinishedCount(for: partition) >= maxUnfinished && !state.paused.contains(partition)
            if pause { state.paused.insert(partition) }
            return (generation, pause, missing)
        }
        if missing > 0 {
            KafkaMetrics.shared.lost(topic: topic).increment(by: Int64(missing))
            logger.error("""
                Kafka lost \(missing) message(s) of \(partition) before this consumer read them (offsets \(raw.offset - missing)..<\(raw.offset)): \
                the log no longer holds them (retention or the broker's size limit); what they carried is recovered by re-reading the meters (gap recovery)
                """, metadata: [LogMetadataKey.kafkaTopic: "\(topic)", LogMetadataKey.kafkaPartition: "\(raw.partition)", LogMetadataKey.kafkaOffset: "\(raw.offset)"])
        }
        guard let generation else {
            logger.debug("dropping a message of an unowned partition or an already-read offset", metadata: [
                LogMetadataKey.kafkaTopic: "\(topic)", LogMetadataKey.kafkaPartition: "\(raw.partition)",
                LogMetadataKey.kafkaOffset: "\(raw.offset)",
            ])
            return
        }
        let key = raw.key.map { [UInt8](UnsafeRawBufferPointer(start: $0, count: raw.key_len)) }
        let value = raw.payload.map { [UInt8](UnsafeRawBufferPointer(start: $0, count: raw.len)) } ?? []
        var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let timestamp = rd_kafka_message_timestamp(message, &timestampType)
        let consumerMessage = KafkaConsumerMessage(
            topic: topic, partition: raw.partition, offset: raw.offset, key: key, value: value,
            headers: Self.headers(of: message), timestampMilliseconds: timestamp >= 0 ? timestamp : nil,
            generation: generation)
        KafkaMetrics.shared.consumed(topic: topic).increment()
        continuation.yield(consumerMessage)
        if pause { setPaused(true, [partition], handle: handle) }
    }

    private static func headers(of message: UnsafeMutablePointer<rd_kafka_message_t>) -> [KafkaHeader] {
        var list: OpaquePointer? = nil
        guard rd_kafka_message_headers(message, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list else { return [] }
        var headers: [KafkaHeader] = []
        for index in 0..<rd_kafka_header_cnt(list) {
            var name: UnsafePointer<CChar>? = nil
            var value: UnsafeRawPointer? = nil
            var size = 0
            guard rd_kafka_header_get_all(list, index, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR, let name else { continue }
            headers.append(KafkaHeader(
                key: String(cString: name), value: value.map { [UInt8](UnsafeRawBufferPointer(start: $0, count: size)) }))
        }
        return headers
    }

    private func resumeDrainedPartitions(handle: OpaquePointer) {
        let resumable = state.withLock { state -> [KafkaTopicPartition] in
            let drained = state.paused.filter { state.tracker.unfinishedCount(for: $0) <= maxUnfinished / 2 }
            state.paused.subtract(drained)
            return Array(drained)
        }
        if !resumable.isEmpty { setPaused(false, resumable, handle: handle) }
    }

    private func setPaused(_ pause: Bool, _ partitions: [KafkaTopicPartition], handle: OpaquePointer) {
        let code = RDKafkaClient.withPartitionList(partitions.map { ($0, Int64(RD_KAFKA_OFFSET_INVALID)) }) { list in
            pause ? rd_kafka_pause_partitions(handle, list) : rd_kafka_resume_partitions(handle, list)
        }
        let metadata: Logger.Metadata = [LogMetadataKey.kafkaPartitions: "\(partitions.map(\.description).joined(separator: ","))"]
        if code != RD_KAFKA_RESP_ERR_NO_ERROR {
            logger.warning("pausing or resuming partitions failed", metadata: metadata.merging(
                [LogMetadataKey.error: "\(KafkaError.rdKafka(code, pause ? "pause" : "resume"))"]) { $1 })
        } else {
            logger.debug(pause ? "partitions paused (backpressure)" : "partitions resumed", metadata: metadata)
        }
    }

    /// Commits finished work synchronously; returns the error if the commit failed.
    func commitPending(handle: OpaquePointer, only partitions: Set<KafkaTopicPartition>? = nil) -> KafkaError? {
        let pending = state.withLock { state in
            state.tracker.pendingCommits.filter { partitions?.contains($0.key) ?? true }
        }
        guard !pending.isEmpty else { return nil }
        let offsets = pending.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        return RDKafkaClient.withPartitionList(offsets) { list -> KafkaError? in
            let code = rd_kafka_commit(handle, list, 0)
            var committed: [KafkaTopicPartition: Int64] = [:]
            var firstError: KafkaError?
            if code == RD_KAFKA_RESP_ERR_NO_ERROR {
                for (partition, offset, error) in RDKafkaClient.topicPartitions(list) {
                    if error == RD_KAFKA_RESP_ERR_NO_ERROR {
                        committed[partition] = offset
                    } else if firstError == nil {
                        firstError = KafkaError.rdKafka(error, "committing \(partition) at \(offset)")
                    }
                }
            } else {
                firstError = KafkaError.rdKafka(code, "committing \(offsets.count) partitions")
            }
            if !committed.isEmpty {
                state.withLock { state in
                    for (partition, offset) in committed { state.tracker.committed(offset: offset, in: partition) }
                }
                logger.debug("Kafka offsets committed", metadata: [
                    LogMetadataKey.kafkaPartitions: "\(committed.sorted { $0.key < $1.key }.map { "\($0.key)@\($0.value)" }.joined(separator: ","))",
                ])
                onCommit?(committed)
            }
            if firstError != nil { KafkaMetrics.shared.commitFailures.increment() }
            return firstError
        }
    }

    /// librdkafka's rebalance callback, on the consumer thread.
    func rebalance(handle: OpaquePointer, code: rd_kafka_resp_err_t, partitions list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) {
        let partitions = RDKafkaClient.topicPartitions(list).map(\.0)
        let cooperative = String(cString: rd_kafka_rebalance_protocol(handle)) == "COOPERATIVE"
        let described = partitions.map(\.description).joined(separator: ",")
        KafkaMetrics.shared.rebalances.increment()
        switch code {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            state.withLock { state in
                for partition in partitions {
                    state.tracker.assign(partition)
                    state.paused.remove(partition)
                }
            }
            // The group's committed offsets: a first message beyond one shows lost messages.
            let committed = RDKafkaClient.withPartitionList(partitions.map { ($0, Int64(RD_KAFKA_OFFSET_INVALID)) }) { copy in
                rd_kafka_committed(handle, copy, 5_000) == RD_KAFKA_RESP_ERR_NO_ERROR ? RDKafkaClient.topicPartitions(copy) : []
            }
            state.withLock { state in
                for (partition, offset, error) in committed where error == RD_KAFKA_RESP_ERR_NO_ERROR && offset >= 0 {
                    state.tracker.expect(offset, in: partition)
                }
            }
            if cooperative {
                if let error = rd_kafka_incremental_assign(handle, list) { logAssignError(KafkaError.rdKafka(consuming: error, "incremental assign")) }
            } else {
                let result = rd_kafka_assign(handle, list)
                if result != RD_KAFKA_RESP_ERR_NO_ERROR { logAssignError(KafkaError.rdKafka(result, "assign")) }
            }
            // librdkafka keeps a partition's pause flag across unassign and assign; a partition
            // paused under the previous assignment would otherwise never be fetched again.
            rd_kafka_resume_partitions(handle, list)
            logger.info("Kafka partitions assigned", metadata: [LogMetadataKey.kafkaPartitions: "\(described)"])

        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            revoke(partitions, handle: handle, lost: rd_kafka_assignment_lost(handle) != 0)
            if cooperative {
                if let error = rd_kafka_incremental_unassign(handle, list) { logAssignError(KafkaError.rdKafka(consuming: error, "incremental unassign")) }
            } else {
                rd_kafka_assign(handle, nil)
            }

        default:
            logger.error("Kafka rebalance failed", metadata: [LogMetadataKey.error: "\(KafkaError.rdKafka(code, "rebalance"))"])
            revoke(partitions, handle: handle, lost: true)
            rd_kafka_assign(handle, nil)
        }
    }

    private func revoke(_ partitions: [KafkaTopicPartition], handle: OpaquePointer, lost: Bool) {
        // Finished work is committed first (unless the assignment is already lost and the commit
        // would be refused); unfinished work is dropped and will be redelivered to the new owner.
        if !lost, let error = commitPending(handle: handle, only: Set(partitions)) {
            logger.warning("commit on revocation failed; the new owner will redo that work", metadata: [LogMetadataKey.error: "\(error)"])
        }
        let paused = state.withLock { $0.paused.intersection(partitions) }
        if !paused.isEmpty { setPaused(false, Array(paused), handle: handle) }
        let dropped = state.withLock { state in
            partitions.reduce(0) { total, partition in
                let unfinished = state.tracker.unfinishedCount(for: partition)
                state.tracker.revoke(partition)
                state.paused.remove(partition)
                KafkaMetrics.shared.lag(group: groupID, partition: partition).record(0)
                return total + unfinished
            }
        }
        logger.info("Kafka partitions revoked", metadata: [
            LogMetadataKey.kafkaPartitions: "\(partitions.map(\.description).joined(separator: ","))",
            LogMetadataKey.kafkaDroppedInFlight: "\(dropped)", LogMetadataKey.kafkaAssignmentLost: "\(lost)",
        ])
    }

    private func logAssignError(_ error: KafkaError) {
        logger.error("Kafka assignment change failed", metadata: [LogMetadataKey.error: "\(error)"])
    }

    /// Final steps on the consumer thread: commit finished work, leave the group (which revokes
    /// the assignment), end the message stream.
    func close(handle: OpaquePointer) {
        if let error = commitPending(handle: handle) {
            logger.warning("final Kafka commit failed", metadata: [LogMetadataKey.error: "\(error)"])
        }
        let result = rd_kafka_consumer_close(handle)
        if result != RD_KAFKA_RESP_ERR_NO_ERROR {
            logger.warning("closing the Kafka consumer", metadata: [LogMetadataKey.error: "\(KafkaError.rdKafka(result, "close"))"])
        }
        finish(throwing: terminalError)
        logger.info("Kafka consumer closed")
    }

    /// Ends ``KafkaConsumer/messages``.
    func finish(throwing error: KafkaError?) {
        if let error {
            continuation.finish(throwing: error)
        } else {
            continuation.finish()
        }
    }

    private static func metadata(_ message: KafkaConsumerMessage) -> Logger.Metadata {
        [
            LogMetadataKey.kafkaTopic: "\(message.topic)", LogMetadataKey.kafkaPartition: "\(message.partition)",
            LogMetadataKey.kafkaOffset: "\(message.offset)",
        ]
    }
}
