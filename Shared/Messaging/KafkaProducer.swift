import CRdKafka
import Logging
import Metrics
import Observability
import ServiceLifecycle
import Synchronization

/// An idempotent Kafka producer (`enable.idempotence=true`, `acks=all`).
///
/// ``send(topic:key:value:headers:)`` returns once the broker acknowledged the message. A
/// dedicated thread polls librdkafka for delivery reports from creation on; ``run()`` keeps the
/// producer alive until graceful shutdown and then flushes what is still outstanding, so place
/// the producer *before* the services that use it in a `ServiceGroup` (they shut down first).
///
/// An unreachable broker is not an error by itself: librdkafka reconnects with backoff and the
/// producer logs a warning; a message that cannot be delivered within
/// ``KafkaProducerConfiguration/messageTimeout`` fails with the retriable
/// ``KafkaError/Code/messageTimedOut``.
public final class KafkaProducer: Service, Sendable {
    private let client: RDKafkaClient
    private let pollThread: KafkaPollThread
    private let configuration: KafkaProducerConfiguration
    private let logger: Logger
    private let clock: KafkaClock
    private let closed = Atomic<Bool>(false)

    /// Creates the producer and starts its poll thread.
    /// - Parameter clock: times ``KafkaProducerConfiguration/messageTimeout`` while the local
    ///   queue is full. Default: `ContinuousClock`.
    /// - Throws: ``KafkaError`` with code ``KafkaError/Code/configuration`` for rejected settings.
    public init(configuration: KafkaProducerConfiguration, logger: Logger, clock: some Clock<Duration> = ContinuousClock()) throws {
        self.clock = KafkaClock(clock)
        var logger = logger
        logger[metadataKey: LogMetadataKey.kafkaClientID] = "\(configuration.clientID)"
        self.logger = logger
        self.configuration = configuration
        let client = try RDKafkaClient(
            kind: .producer, properties: configuration.librdkafkaProperties, context: RDKafkaContext(logger: logger),
            callbacks: [.delivery])
        self.client = client
        // The thread holds the client, not the producer: releasing the producer stops the thread,
        // and the handle is destroyed once neither needs it.
        pollThread = KafkaPollThread(
            name: "kafka-producer-\(configuration.clientID)",
            pollOnce: {
                rd_kafka_poll(client.handle, 100)
                return true
            },
            onExit: {
                // Whatever is still queued (a send racing with close, or a producer released
                // without close) fails now with a purge error instead of leaving its caller waiting.
                rd_kafka_purge(client.handle, Int32(RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT))
                rd_kafka_poll(client.handle, 0)
            })
    }

    deinit {
        pollThread.requestStop()
    }

    // MARK: - Sending

    /// Sends one message and waits until the broker acknowledged it (all in-sync replicas).
    ///
    /// A full local queue makes this wait (backpressure) rather than fail. Cancelling the calling
    /// task does not withdraw a message that was already enqueued.
    /// - Parameters:
    ///   - key: the partitioning key (line id, meter id, task id); `nil` spreads messages.
    /// - Returns: the partition and offset the broker stored the message at.
    /// - Throws: ``KafkaError`` — ``KafkaError/Code/messageTimedOut`` (retriable) when no broker
    ///   took it in time, ``KafkaError/Code/shutdown`` after ``close()``, a fatal error when the
    ///   idempotent producer state broke.
    public func send(
        topic: String, key: String?, value: some KafkaContiguousBytes, headers: [KafkaHeader] = []
    ) async throws -> KafkaDeliveryReport {
        let deadline = clock.elapsed() + configuration.messageTimeout
        while true {
            if closed.load(ordering: .relaxed) { throw KafkaError.shutdown("producer is closed") }
            if let fatal = client.context.fatalError { throw fatal }
            do {
                let report = try await withCheckedThrowingContinuation { continuation in
                    if let error = enqueue(topic: topic, key: key, value: value, headers: headers, continuation: continuation) {
                        continuation.resume(throwing: error)
                    }
                }
                KafkaMetrics.shared.produced(topic: topic).increment()
                return report
            } catch let error as KafkaError where error.code == .queueFull && clock.elapsed() < deadline {
                try await clock.sleep(.milliseconds(10))
            } catch {
                KafkaMetrics.shared.deliveryFailed(topic: topic).increment()
                logger.warning("Kafka delivery failed", metadata: [
                    LogMetadataKey.kafkaTopic: "\(topic)", LogMetadataKey.error: "\(error)",
                ])
                throw error
            }
        }
    }

    /// Hands the message to librdkafka (non-blocking). Returns an error if it was not enqueued.
    private func enqueue(
        topic: String, key: String?, value: some KafkaContiguousBytes, headers: [KafkaHeader],
        continuation: CheckedContinuation<KafkaDeliveryReport, any Error>
    ) -> KafkaError? {
        let box = DeliveryBox()
        box.continuation = continuation
        let opaque = Unmanaged.passRetained(box).toOpaque()

        var headerList: OpaquePointer? = nil
        if !headers.isEmpty {
            let list = rd_kafka_headers_new(headers.count)!
            for header in headers {
                if let headerValue = header.value {
                    headerValue.withUnsafeBytes { _ = rd_kafka_header_add(list, header.key, -1, $0.baseAddress, $0.count) }
                } else {
                    _ = rd_kafka_header_add(list, header.key, -1, nil, 0)
                }
            }
            headerList = list
        }

        let error: OpaquePointer? = topic.withCString { topicPointer in
            value.withUnsafeBytes { valueBytes in
                withOptionalBytes(key) { keyBytes in
                    var values = [rd_kafka_vu_t](repeating: rd_kafka_vu_t(), count: 6)
                    values[0].vtype = RD_KAFKA_VTYPE_TOPIC
                    values[0].u.cstr = topicPointer
                    values[1].vtype = RD_KAFKA_VTYPE_VALUE
                    values[1].u.mem.ptr = UnsafeMutableRawPointer(mutating: valueBytes.baseAddress)
                    values[1].u.mem.size = valueBytes.count
                    values[2].vtype = RD_KAFKA_VTYPE_MSGFLAGS
                    values[2].u.i = RD_KAFKA_MSG_F_COPY
                    values[3].vtype = RD_KAFKA_VTYPE_OPAQUE
                    values[3].u.ptr = opaque
                    var count = 4
                    if let keyBytes {
                        values[count].vtype = RD_KAFKA_VTYPE_KEY
                        values[count].u.mem.ptr = UnsafeMutableRawPointer(mutating: keyBytes.baseAddress)
                        values[count].u.mem.size = keyBytes.count
                        count += 1
                    }
                    if let headerList {
                        values[count].vtype = RD_KAFKA_VTYPE_HEADERS
                        values[count].u.headers = headerList
                        count += 1
                    }
                    return rd_kafka_produceva(client.handle, values, count)
                }
            }
        }
        guard let error else { return nil }
        // Not enqueued: the opaque and the headers are still ours.
        Unmanaged<DeliveryBox>.fromOpaque(opaque).release()
        if let headerList { rd_kafka_headers_destroy(headerList) }
        return KafkaError.rdKafka(consuming: error, "enqueueing a message for \(topic)")
    }

    // MARK: - Lifecycle

    /// Waits until every enqueued message was delivered or failed.
    /// - Throws: ``KafkaError/Code/timedOut`` if messages are still outstanding after `timeout`.
    public func flush(timeout: Duration) async throws {
        let client = self.client
        let milliseconds = Int32(clamping: timeout.milliseconds)
        let result = try await pollThread.execute { rd_kafka_flush(client.handle, milliseconds).rawValue }
        let code = rd_kafka_resp_err_t(rawValue: result)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else {
            let outstanding = rd_kafka_outq_len(client.handle)
            throw KafkaError.rdKafka(code, "flush left \(outstanding) messages undelivered after \(timeout)")
        }
    }

    /// Asks the cluster for its metadata to check a broker is reachable.
    /// - Throws: a retriable ``KafkaError`` (``KafkaError/Code/transport``,
    ///   ``KafkaError/Code/timedOut``) when no broker answered within `timeout`.
    public func checkConnectivity(timeout: Duration) async throws {
        let client = self.client
        let milliseconds = Int32(clamping: timeout.milliseconds)
        let result = try await pollThread.execute {
            var metadata: UnsafePointer<rd_kafka_metadata>? = nil
            let code = rd_kafka_metadata(client.handle, 0, nil, &metadata, milliseconds)
            if let metadata { rd_kafka_metadata_destroy(metadata) }
            return code.rawValue
        }
        let code = rd_kafka_resp_err_t(rawValue: result)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError.rdKafka(code, "no Kafka broker answered a metadata request within \(timeout)")
        }
    }

    /// Flushes (bounded by ``KafkaProducerConfiguration/shutdownFlushTimeout``) and stops the
    /// poll thread. Later sends fail with ``KafkaError/Code/shutdown``.
    public func close() async {
        guard !closed.exchange(true, ordering: .relaxed) else { return }
        do {
            try await flush(timeout: configuration.shutdownFlushTimeout)
        } catch {
            logger.error("Kafka producer closed with undelivered messages", metadata: [LogMetadataKey.error: "\(error)"])
        }
        pollThread.requestStop()
        await pollThread.waitForExit()
    }

    /// Runs until graceful shutdown or cancellation, then flushes and closes.
    public func run() async throws {
        try? await gracefulShutdown()
        await close()
    }
}

private func withOptionalBytes<R>(_ string: String?, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
    guard let string else { return body(nil) }
    return string.withUnsafeBytes { body($0) }
}
