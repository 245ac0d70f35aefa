import Contracts
import Foundation
import Logging
import Messaging
import Metrics
import Observability
import ServiceLifecycle
import Synchronization

/// Delivers `hes.readings` and `hes.results` to the IMS and releases them only after it decided.
///
/// Intake reads the consumer's messages into one ``DeliveryQueue`` per kind (bounded: a full
/// queue stops the intake, and the consumer pauses its partitions). Senders take requests off the
/// queues by size and age, post them with one idempotency key per request, and on a decision:
/// rejected items go to `hes.readings.dlq` (and an audit row), progress and command outcomes go
/// to PostgreSQL, then every message of the request is marked finished, and the consumer commits
/// offsets below which everything is finished. Undecided requests are sent again (exponential
/// backoff with full jitter, behind a circuit breaker) until they are decided or the process
/// stops; what was not decided is read again by the next owner of the partition.
final class DeliveryWorker: Service, Sendable {
    struct Configuration: Sendable {
        var limits = DeliveryLimits()
        /// Requests in flight per kind. Default: 2.
        var sendersPerKind = 2
        var backoff = RetryBackoff()
        var breakerThreshold = 5
        var breakerCooldown: Duration = .seconds(2)
        var breakerMaximumCooldown: Duration = .seconds(30)
        /// What reading batches are sent as (task results are always native JSON). Default: native.
        var format: IMSFormat = .native
    }

    enum Kind: String, Sendable, CaseIterable {
        case readings, results

        func path(format: IMSFormat) -> String {
            switch (self, format) {
            case (.readings, .native): IMSAPI.readingsPath
            case (.readings, .cim): CIMMeterReadings.path
            case (.results, _): IMSAPI.resultsPath
            }
        }
    }

    private static let metrics = [Kind.readings: UploaderMetrics(kind: "readings"), Kind.results: UploaderMetrics(kind: "results")]

    private let configuration: Configuration
    private let consumer: KafkaConsumer
    private let producer: KafkaProducer
    private let client: IMSClient
    private let recorder: ProgressRecorder?
    private let logger: Logger
    private let breaker: Mutex<CircuitBreaker<ContinuousClock.Instant>>
    private let stopping = Atomic<Bool>(false)

    init(configuration: Configuration, consumer: KafkaConsumer, producer: KafkaProducer, client: IMSClient, recorder: ProgressRecorder?, logger: Logger) {
        self.configuration = configuration
        self.consumer = consumer
        self.producer = producer
        self.client = client
        self.recorder = recorder
        self.logger = logger
        self.breaker = Mutex(CircuitBreaker(failureThreshold: configuration.breakerThreshold, initialCooldown: configuration.breakerCooldown,
                                            maximumCooldown: configuration.breakerMaximumCooldown))
        UploaderMetrics.circuitState.record(0)
    }

    func run() async throws {
        let queues = [Kind.readings: DeliveryQueue(limits: configuration.limits), Kind.results: DeliveryQueue(limits: configuration.limits)]
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                for kind in Kind.allCases {
                    for _ in 0..<max(1, configuration.sendersPerKind) {
                        group.addTask { await self.sendLoop(kind: kind, queue: queues[kind]!) }
                    }
                }
                group.addTask {
                    // Intake ends when the consumer ends, or is cancelled on shutdown.
                    let intake = Task { await self.intake(queues: queues) }
                    await withTaskCancellationOrGracefulShutdownHandler {
                        await intake.value
                    } onCancelOrGracefulShutdown: {
                        intake.cancel()
                    }
                    for queue in queues.values { queue.close() }
                }
                await group.waitForAll()
            }
        } onGracefulShutdown: {
            self.stopping.store(true, ordering: .relaxed)
            for queue in queues.values { queue.close() }
        }
        await client.shutdown()
        logger.info("uploader stopped; what was not confirmed is read again from the committed offsets")
    }

    // MARK: - Intake

    private func intake(queues: [Kind: DeliveryQueue]) async {
        do {
            for try await message in consumer.messages {
                let kind: Kind = message.topic == KafkaTopics.results ? .results : .readings
                guard let pending = await prepare(message, kind: kind) else { continue }
                Self.metrics[kind]!.bufferedBytes.record(queues[kind]!.bufferedBytes)
                guard await queues[kind]!.push(pending) else { return }
            }
        } catch {
            logger.error("the consumer failed; the uploader stops reading", metadata: [LogMetadataKey.error: "\(error)"])
        }
    }

    /// Reads what the uploader needs of a message; one that is not a contract this build reads
    /// goes to the dead-letter topic at once (and is finished), never to the IMS.
    private func prepare(_ message: KafkaConsumerMessage, kind: Kind) async -> PendingDelivery? {
        do {
            switch kind {
            case .readings:
                let batch = try ContractCoder.decode(ReadingBatch.self, from: message.value)
                var progress: [String: Double] = [:]
                for reading in batch.readings {
                    let time = reading.captureTime.timeIntervalSince1970
                    // Progress is per profile: values read on their own (registers) do not advance it.
                    guard let profile = reading.profile else { continue }
                    if time > progress[profile] ?? -.infinity { progress[profile] = time }
                }
                return PendingDelivery(message: message, itemID: batch.batchID, meterID: batch.meterID, weight: max(1, batch.readings.count), progress: progress,
                                       batch: configuration.format == .cim ? batch : nil)
            case .results:
                let result = try ContractCoder.decode(TaskResult.self, from: message.value)
                return PendingDelivery(message: message, itemID: result.taskID, meterID: result.meterID, weight: 1, result: result)
            }
        } catch {
            let code = (error as? ContractError).map { "contract.\($0.code)" } ?? "contract.malformed"
            logger.error("a message is not a contract this uploader reads; it goes to the dead-letter topic", metadata: [
                LogMetadataKey.kafkaTopic: "\(message.topic)", "kafka.partition": "\(message.partition)", "kafka.offset": "\(message.offset)",
                LogMetadataKey.errorCode: "\(code)", LogMetadataKey.error: "\(error)",
            ])
            let letter = DeadLetter(source: Self.source(message), id: nil, meterID: message.keyString, code: code, reason: "\(error)", rejectedAt: Date(), payload: message.value)
            if await deadLetter([letter], kind: kind) { consumer.markFinished(message) }
            return nil
        }
    }

    // MARK: - Sending

    private func sendLoop(kind: Kind, queue: DeliveryQueue) async {
        while let request = await queue.nextRequest() {
            await deliver(request, kind: kind)
        }
    }

    /// Sends one request until the IMS decides on it (or the process stops), then settles it.
    private func deliver(_ items: [PendingDelivery], kind: Kind) async {
        let messages = items.map(\.message)
        let key = DeliveryKey.make(kind: kind.rawValue, messages: messages)
        let format: IMSFormat = kind == .readings ? configuration.format : .native
        let body: [UInt8]
        switch (kind, format) {
        case (.readings, .native):
            body = IMSRequestBody.readings(requestID: key, rawBatches: messages.map(\.value))
        case (.readings, .cim):
            // One MeterReading per message, in request order: the reply's errors name them by position.
            let batches = items.compactMap { $0.batch ?? (try? ContractCoder.decode(ReadingBatch.self, from: $0.message.value)) }
            body = CIMMeterReadings.requestMessage(messageID: key, timestamp: Date(), batches: batches)
        case (.results, _):
            body = IMSRequestBody.results(requestID: key, rawResults: messages.map(\.value))
        }
        let weight = items.reduce(0) { $0 + $1.weight }
        var logger = self.logger
        logger[metadataKey: LogMetadataKey.imsRequestID] = "\(key)"
        let metrics = Self.metrics[kind]!
        metrics.requestItems.record(weight)
        var attempt = 0
        while true {
            guard await admitted(logger: logger) else { return }
            attempt += 1
            let started = ContinuousClock.now
            let answer = await client.post(path: kind.path(format: format), body: body, idempotencyKey: key, format: format)
            metrics.requestDuration.recordNanoseconds((ContinuousClock.now - started).wholeMilliseconds * 1_000_000)
            switch answer {
            case .decided(let status, let reply):
                recordBreaker(success: true, logger: logger)
                await settle(items, kind: kind, key: key, rejected: reply?.rejected ?? [], status: status, logger: logger)
                return
            case .refused(let status, let reason):
                recordBreaker(success: true, logger: logger)
                logger.error("the IMS refused a whole request; its items go to the dead-letter topic", metadata: [LogMetadataKey.imsStatus: "\(status)", LogMetadataKey.error: "\(reason)"])
                let rejected = items.indices.map { IMSDeliveryReply.Rejection(index: $0, id: items[$0].itemID, code: "request.refused", reason: reason) }
                await settle(items, kind: kind, key: key, rejected: rejected, status: status, logger: logger)
                return
            case .tooLarge(let reason):
                recordBreaker(success: true, logger: logger)
                if items.count > 1 {
                    logger.warning("the IMS found a request too large; sending it in two halves", metadata: [LogMetadataKey.imsItems: "\(items.count)"])
                    await deliver(Array(items[..<(items.count / 2)]), kind: kind)
                    await deliver(Array(items[(items.count / 2)...]), kind: kind)
                } else {
                    let rejected = [IMSDeliveryReply.Rejection(index: 0, id: items[0].itemID, code: "request.too-large", reason: reason)]
                    await settle(items, kind: kind, key: key, rejected: rejected, status: 413, logger: logger)
                }
                return
            case .undecided(let reason):
                recordBreaker(success: false, logger: logger)
                metrics.retries.increment()
                if stopping.load(ordering: .relaxed) {
                    logger.warning("stopping with a request the IMS did not confirm; it will be read again", metadata: [LogMetadataKey.error: "\(reason)"])
                    return
                }
                let delay = configuration.backoff.delay(attempt: attempt, draw: Double.random(in: 0..<1))
                logger.warning("the IMS did not confirm a request, retrying", metadata: [
                    LogMetadataKey.attempt: "\(attempt)", LogMetadataKey.retryIn: "\(delay)", LogMetadataKey.error: "\(reason)",
                    LogMetadataKey.imsItems: "\(items.count)",
                ])
                do { try await Task.sleep(for: delay) } catch { return }
            }
        }
    }

    /// Waits until the breaker lets a request go; `false` when the process stops meanwhile.
    private func admitted(logger: Logger) async -> Bool {
        while true {
            if stopping.load(ordering: .relaxed) || Task.isCancelled { return false }
            let admission = breaker.withLock { $0.admit(now: .now) }
            let wait: Duration
            switch admission {
            case .proceed: return true
            case .waitUntil(let instant): wait = min(max(instant - .now, .milliseconds(10)), .milliseconds(500))
            case .waitForProbe: wait = .milliseconds(50)
            }
            do { try await Task.sleep(for: wait) } catch { return false }
        }
    }

    private func recordBreaker(success: Bool, logger: Logger) {
        let (before, after) = breaker.withLock { breaker -> (CircuitBreaker<ContinuousClock.Instant>.State, CircuitBreaker<ContinuousClock.Instant>.State) in
            let before = breaker.state
            if success { breaker.recordSuccess() } else { breaker.recordFailure(now: .now) }
            return (before, breaker.state)
        }
        guard before.name != after.name else { return }
        UploaderMetrics.circuitState.record(after.gauge)
        switch after {
        case .open(_, let cooldown):
            logger.error("the IMS is failing; circuit open, sending paused", metadata: [LogMetadataKey.imsCircuit: "open", LogMetadataKey.retryIn: "\(cooldown)"])
        case .closed:
            logger.notice("the IMS answers again; circuit closed", metadata: [LogMetadataKey.imsCircuit: "closed"])
        case .halfOpen:
            break
        }
    }

    /// After a decision: rejections to the dead-letter topic, progress and outcomes to
    /// PostgreSQL, then the messages are finished (their offsets may be committed).
    private func settle(_ items: [PendingDelivery], kind: Kind, key: String, rejected: [IMSDeliveryReply.Rejection], status: Int, logger: Logger) async {
        var rejectedIndices: [Int: IMSDeliveryReply.Rejection] = [:]
        for rejection in rejected where items.indices.contains(rejection.index) { rejectedIndices[rejection.index] = rejection }
        var confirmation = ProgressRecorder.Confirmation()
        var letters: [DeadLetter] = []
        var deliveredWeight = 0
        for (index, item) in items.enumerated() {
            if let rejection = rejectedIndices[index] {
                letters.append(DeadLetter(source: Self.source(item.message), id: item.itemID, meterID: item.meterID, code: "ims.\(rejection.code)",
                                          reason: rejection.reason, rejectedAt: Date(), payload: item.message.value))
                confirmation.rejections.append((item.meterID, item.itemID, rejection.code, rejection.reason))
                Self.metrics[kind]!.rejected(code: rejection.code).increment()
                logger.warning("the IMS rejected an item; it goes to the dead-letter topic", metadata: [
                    LogMetadataKey.meterID: "\(item.meterID)", LogMetadataKey.batchID: "\(item.itemID)", LogMetadataKey.errorCode: "\(rejection.code)",
                    LogMetadataKey.error: "\(rejection.reason)",
                ])
                continue
            }
            deliveredWeight += item.weight
            for (obis, time) in item.progress {
                let key = ProgressRecorder.ProgressKey(meterID: item.meterID, obis: obis)
                let date = Date(timeIntervalSince1970: time)
                if date > confirmation.progress[key] ?? .distantPast { confirmation.progress[key] = date }
            }
            if let result = item.result { confirmation.results.append(result) }
        }
        if !letters.isEmpty {
            guard await deadLetter(letters, kind: kind) else { return }
        }
        if let recorder {
            var failures = 0
            while true {
                do {
                    try await recorder.record(confirmation)
                    break
                } catch {
                    failures += 1
                    if stopping.load(ordering: .relaxed) {
                        logger.warning("stopping before the IMS's confirmation was recorded; the request will be sent again (the IMS deduplicates)",
                                       metadata: [LogMetadataKey.error: "\(error)"])
                        return
                    }
                    let delay = configuration.backoff.delay(attempt: failures, draw: Double.random(in: 0..<1))
                    logger.error("recording confirmed progress failed, retrying", metadata: [LogMetadataKey.error: "\(error)", LogMetadataKey.attempt: "\(failures)"])
                    do { try await Task.sleep(for: delay) } catch { return }
                }
            }
        }
        for item in items { consumer.markFinished(item.message) }
        Self.metrics[kind]!.delivered.increment(by: items.count - letters.count)
        if kind == .readings { UploaderMetrics.readingsDelivered.increment(by: deliveredWeight) }
        logger.debug("request confirmed", metadata: [
            LogMetadataKey.imsStatus: "\(status)", LogMetadataKey.imsItems: "\(items.count)", "rejected": "\(letters.count)",
            "batches": "\(items.prefix(3).map(\.itemID).joined(separator: ","))\(items.count > 3 ? ",…" : "")",
        ])
    }

    /// Publishes dead letters and waits for the broker; `false` when stopping before it worked.
    private func deadLetter(_ letters: [DeadLetter], kind: Kind) async -> Bool {
        var failures = 0
        while true {
            do {
                for letter in letters {
                    _ = try await producer.send(topic: KafkaTopics.readingsDeadLetter, key: letter.meterID, value: try ContractCoder.encode(letter))
                }
                Self.metrics[kind]!.deadLetters.increment(by: letters.count)
                return true
            } catch {
                failures += 1
                if stopping.load(ordering: .relaxed) { return false }
                logger.error("publishing to the dead-letter topic failed, retrying", metadata: [LogMetadataKey.error: "\(error)", LogMetadataKey.attempt: "\(failures)"])
                do { try await Task.sleep(for: configuration.backoff.delay(attempt: failures, draw: 1)) } catch { return false }
            }
        }
    }

    static func source(_ message: KafkaConsumerMessage) -> String {
        "\(message.topic)/\(message.partition)/\(message.offset)"
    }
}
