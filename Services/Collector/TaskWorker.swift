import Contracts
import Foundation
import Logging
import Messaging
import Metrics
import Observability
import ServiceLifecycle
import Synchronization

/// The collector's work loop: takes tasks from the region's task topics, runs them line by line
/// (``LineQueues``) with at most `maxConcurrentSessions` sessions at once, publishes each task's
/// `ReadingBatch` (`hes.readings`, keyed by meter id) and `TaskResult` (`hes.results`, keyed by
/// task id), and only when the broker acknowledged both marks the task's message finished, so
/// its offset can be committed. A collector killed at any moment therefore loses nothing: the
/// task is delivered again, and produces the same batch id.
///
/// A message that is not a task the collector can follow (not JSON, another contract, an
/// unknown major version, an invalid field) is logged, counted and answered with a `failed`
/// result (code `task.malformed` / `task.unsupported-version`), never a crash or a stuck partition.
///
/// On graceful shutdown it stops taking tasks, lets the running sessions finish (the group's
/// shutdown budget bounds them; what is cancelled is not marked and is delivered again) and
/// leaves queued tasks unmarked for the next owner.
final class TaskWorker: Service, Sendable {
    struct Configuration: Sendable {
        var region: String
        /// Sessions at once over all lines. Default: 256.
        var maxConcurrentSessions: Int = 256
    }

    private let configuration: Configuration
    private let consumer: KafkaConsumer
    private let producer: KafkaProducer
    private let executor: TaskExecutor
    private let logger: Logger
    private let queues = Mutex(LineQueues<QueuedTask>())
    private let sessions: AsyncSemaphore
    private let metrics = CollectorMetrics()

    struct QueuedTask: Sendable {
        var task: CollectionTask
        var message: KafkaConsumerMessage
        var priority: Bool
    }

    init(configuration: Configuration, consumer: KafkaConsumer, producer: KafkaProducer, executor: TaskExecutor, logger: Logger) {
        self.configuration = configuration
        self.consumer = consumer
        self.producer = producer
        self.executor = executor
        self.logger = logger
        self.sessions = AsyncSemaphore(permits: configuration.maxConcurrentSessions)
    }

    func run() async throws {
        // Intake runs in its own child task (stopped by graceful shutdown); the lines it wakes
        // up come back through this stream and get their runners in the group.
        let (lineStarts, starter) = AsyncStream.makeStream(of: String.self)
        await withDiscardingTaskGroup { group in
            group.addTask {
                await self.intake(starter)
                starter.finish()
            }
            for await line in lineStarts {
                group.addTask { await self.runLine(line) }
            }
        }
        await executor.lines.closeAll()
    }

    /// Takes tasks until graceful shutdown or the end of the consumer's messages.
    private func intake(_ starter: AsyncStream<String>.Continuation) async {
        let priorityTopic = KafkaTopics.priorityTasks(region: configuration.region)
        do {
            try await cancelWhenGracefulShutdown {
                for try await message in self.consumer.messages {
                    guard let task = await self.decode(message) else { continue }
                    let queued = QueuedTask(task: task, message: message, priority: message.topic == priorityTopic)
                    let (startsRunner, queuedCount) = self.queues.withLock {
                        ($0.enqueue(queued, line: task.lineID, priority: queued.priority), $0.queuedCount)
                    }
                    self.metrics.queued.record(queuedCount)
                    if startsRunner { starter.yield(task.lineID) }
                }
            }
        } catch {
            if !(error is CancellationError) {
                logger.error("task intake stopped", metadata: [LogMetadataKey.error: "\(error)"])
            }
        }
        // Queued tasks stay unmarked and are delivered again; runners finish what they started.
        let dropped = queues.withLock { $0.removeQueued { _ in true } }
        if !dropped.isEmpty {
            logger.info("left queued tasks for redelivery", metadata: ["tasks": "\(dropped.count)"])
        }
    }

    /// Runs the tasks of one line one after another until its queue is empty.
    private func runLine(_ line: String) async {
        while let queued = queues.withLock({ $0.next(line: line) }) {
            // A rebalance gave the task's partition to another member, which runs it again:
            // starting it here too would only open a second session on the line.
            guard consumer.isCurrent(queued.message) else {
                metrics.revoked.increment()
                continue
            }
            do {
                try await sessions.acquire()
            } catch {
                return  // cancelled: the task stays unmarked and is delivered again
            }
            metrics.sessionsInFlight.increment()
            let started = ContinuousClock.now
            let outcome = await executor.execute(queued.task)
            metrics.sessionsInFlight.decrement()
            sessions.release()
            let elapsed = (ContinuousClock.now - started).components
            metrics.sessionDuration.recordNanoseconds(elapsed.seconds * 1_000_000_000 + elapsed.attoseconds / 1_000_000_000)
            if Task.isCancelled && outcome.result.failure?.code == CollectorError.Code.cancelled.rawValue {
                return  // stopped mid-session: not marked, so delivered again
            }
            await publish(outcome, of: queued.message)
        }
    }

    /// Publishes a task's batch and result and, once the broker took both, marks the message.
    private func publish(_ outcome: TaskExecutor.Outcome, of message: KafkaConsumerMessage) async {
        var attempt = 0
        while true {
            do {
                if let batch = outcome.batch {
                    _ = try await producer.send(topic: KafkaTopics.readings, key: batch.meterID, value: try ContractCoder.encode(batch))
                }
                _ = try await producer.send(topic: KafkaTopics.results, key: outcome.result.taskID, value: try ContractCoder.encode(outcome.result))
                consumer.markFinished(message)
                metrics.results(outcome.result).increment()
                return
            } catch {
                attempt += 1
                if Task.isCancelled { return }
                logger.error("publishing a task's readings failed, retrying", metadata: [
                    LogMetadataKey.taskID: "\(outcome.result.taskID)", LogMetadataKey.error: "\(error)", "attempt": "\(attempt)",
                ])
                try? await Task.sleep(for: .milliseconds(Int64(min(5000, 100 << min(attempt, 6)))))
            }
        }
    }

    /// The task in `message`, or `nil` after answering a malformed one with a `failed` result.
    private func decode(_ message: KafkaConsumerMessage) async -> CollectionTask? {
        do {
            let task = try ContractCoder.decode(CollectionTask.self, from: message.value)
            if task.region != configuration.region {
                logger.warning("task of another region on this region's topic; executing it anyway", metadata: [
                    LogMetadataKey.taskID: "\(task.taskID)", LogMetadataKey.region: "\(task.region)",
                ])
            }
            return task
        } catch {
            let contractError = error as? ContractError
            let code: CollectorError.Code = contractError?.code == .unsupportedVersion ? .taskUnsupportedVersion : .taskMalformed
            metrics.malformed.increment()
            logger.error("malformed task skipped", metadata: [
                LogMetadataKey.kafkaTopic: "\(message.topic)", LogMetadataKey.kafkaPartition: "\(message.partition)",
                LogMetadataKey.kafkaOffset: "\(message.offset)", LogMetadataKey.errorCode: "\(code)", LogMetadataKey.error: "\(error)",
            ])
            let now = Date()
            let identity = MalformedTaskIdentity(message)
            let result = TaskResult(
                taskID: identity.taskID, region: configuration.region, lineID: identity.lineID, meterID: identity.meterID,
                outcome: .failed, failure: .init(code: code.rawValue, reason: "\(error)", retriable: false, step: "decode"),
                startedAt: now, finishedAt: now, readingCount: 0)
            await publish(TaskExecutor.Outcome(batch: nil, result: result), of: message)
            return nil
        }
    }
}

/// The ids a malformed task message still names (best effort), so its `failed` result can be
/// told apart; otherwise its Kafka position.
struct MalformedTaskIdentity {
    var taskID: String
    var lineID: String
    var meterID: String

    init(_ message: KafkaConsumerMessage) {
        let object = (try? JSONSerialization.jsonObject(with: Data(message.value))) as? [String: Any]
        let position = "kafka:\(message.topic)/\(message.partition)/\(message.offset)"
        taskID = (object?["taskID"] as? String).flatMap { $0.isEmpty ? nil : String($0.prefix(200)) } ?? position
        lineID = (object?["lineID"] as? String).map { String($0.prefix(200)) } ?? message.key.map { String(decoding: $0.prefix(200), as: UTF8.self) } ?? ""
        meterID = (object?["meterID"] as? String).map { String($0.prefix(200)) } ?? ""
    }
}

/// Waits for one of a fixed number of permits (the process-wide session limit); waiters are
/// served in arrival order. Cancelling a waiter throws `CancellationError`.
final class AsyncSemaphore: Sendable {
    private struct State {
        var permits: Int
        var waiters: [(id: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
        var nextID: UInt64 = 0
    }

    private let state: Mutex<State>

    init(permits: Int) {
        state = Mutex(State(permits: permits))
    }

    func acquire() async throws {
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let granted = state.withLock { state -> Bool in
                    if state.permits > 0, state.waiters.isEmpty {
                        state.permits -= 1
                        return true
                    }
                    state.waiters.append((id, continuation))
                    return false
                }
                if granted { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, any Error>? in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index).continuation
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    func release() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            if state.waiters.isEmpty {
                state.permits += 1
                return nil
            }
            return state.waiters.removeFirst().continuation
        }
        waiter?.resume()
    }
}
