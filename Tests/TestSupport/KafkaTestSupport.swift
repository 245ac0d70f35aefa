import Foundation
import Logging
import Messaging
import Synchronization

/// Fixtures for tests that need Kafka: an in-process mock cluster and unique names.
public enum KafkaTestSupport {
    /// Starts a mock cluster and creates `topics` (name → partition count).
    public static func mockCluster(topics: [String: Int], brokers: Int = 1, logger: Logger = testLogger("kafka-mock")) throws -> KafkaMockCluster {
        let cluster = try KafkaMockCluster(brokers: brokers, logger: logger)
        for (topic, partitions) in topics.sorted(by: { $0.key < $1.key }) {
            try cluster.createTopic(name: topic, partitions: partitions)
        }
        return cluster
    }

    /// A topic or group name no other test uses.
    public static func uniqueName(_ prefix: String) -> String {
        "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
    }

    /// A logger to standard error at `HES_TEST_LOG_LEVEL` (default: warning), so librdkafka's
    /// complaints show up next to a failing test.
    public static func testLogger(_ label: String) -> Logger {
        var logger = Logger(label: label) { StreamLogHandler.standardError(label: $0) }
        let level = ProcessInfo.processInfo.environment["HES_TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:))
        logger.logLevel = level ?? .warning
        return logger
    }
}

/// Reads a consumer's messages in a task of its own and keeps them, so a test can wait for a
/// number of messages with a deadline (an iterator's `next()` cannot time out).
public final class KafkaMessageCollector: Sendable {
    private let task: Task<Void, any Error>

    /// Starts reading `consumer.messages`; `onMessage` runs for each (e.g. to mark it finished).
    public init(_ consumer: KafkaConsumer, onMessage: @escaping @Sendable (KafkaConsumerMessage) -> Void = { _ in }) {
        let box = CollectorStorage()
        self.storage = box
        task = Task {
            for try await message in consumer.messages {
                box.append(message)
                onMessage(message)
            }
        }
    }

    private let storage: CollectorStorage

    /// Everything read so far.
    public var received: [KafkaConsumerMessage] { storage.all }

    /// Waits until at least `count` messages were read; returns what was read (fewer on timeout).
    @discardableResult
    public func wait(forCount count: Int, timeout: Duration) async throws -> [KafkaConsumerMessage] {
        let deadline = ContinuousClock.now + timeout
        while storage.count < count && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        return storage.all
    }

    /// Forgets what was read so far.
    public func reset() { storage.reset() }

    deinit { task.cancel() }
}

private final class CollectorStorage: Sendable {
    private let mutex = Mutex<[KafkaConsumerMessage]>([])
    func append(_ message: KafkaConsumerMessage) { mutex.withLock { $0.append(message) } }
    var all: [KafkaConsumerMessage] { mutex.withLock { $0 } }
    var count: Int { mutex.withLock { $0.count } }
    func reset() { mutex.withLock { $0.removeAll() } }
}
