import ArgumentParser
import Foundation
import Logging
import Messaging
import ServiceLifecycle
import Synchronization
import UnixSignals

/// `kafka-probe`: a test-only tool that produces and consumes through the Messaging library in
/// its own process, so tests can kill and restart group members (`Tests/MessagingTests`).
///
/// Output files are line-oriented and fsync'd before the work they record is marked finished:
/// `produce` writes `partition offset key` per acknowledged message; `consume` writes
/// `P partition offset key` per processed message and `C partition offset` per committed offset.
@main
struct KafkaProbe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kafka-probe",
        abstract: "Test tool: produce or consume through the Messaging library, recording what happened.",
        subcommands: [Produce.self, Consume.self])
}

struct Produce: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Send keyed messages and record where they landed.")

    @Option(help: "Bootstrap servers (host:port,...).") var brokers: String
    @Option(help: "Topic to produce to.") var topic: String
    @Option(help: "Number of messages.") var count: Int
    @Option(help: "File receiving 'partition offset key' lines.") var out: String
    @Option(help: "Key prefix; message i has key <prefix><i>.") var keyPrefix: String = "key-"
    @Option(help: "Messages in flight at once.") var concurrency: Int = 1000

    func run() async throws {
        let logger = probeLogger("kafka-probe-produce")
        let producer = try KafkaProducer(configuration: .init(bootstrapServers: brokers), logger: logger)
        let output = try RecordFile(path: out)
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: (Int, KafkaDeliveryReport).self) { group in
            var next = 0
            func submit() {
                let index = next
                next += 1
                group.addTask {
                    (index, try await producer.send(topic: topic, key: "\(keyPrefix)\(index)", value: "value-\(index)"))
                }
            }
            while next < min(concurrency, count) { submit() }
            while let (index, report) = try await group.next() {
                output.write("\(report.partition) \(report.offset) \(keyPrefix)\(index)\n")
                if next < count { submit() }
            }
        }
        output.sync()
        await producer.close()
        let elapsed = ContinuousClock.now - started
        print("produced \(count) messages in \(elapsed)")
    }
}

struct Consume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Consume in a group; record processed messages and commits.")

    @Option(help: "Bootstrap servers (host:port,...).") var brokers: String
    @Option(help: "Topic to consume.") var topic: String
    @Option(help: "Consumer group id.") var group: String
    @Option(help: "File receiving 'P partition offset key' and 'C partition offset' lines.") var out: String
    @Option(help: "session.timeout.ms") var sessionTimeoutMs: Int = 6000
    @Option(help: "Simulated work per message, in milliseconds.") var delayMs: Int = 0
    @Option(help: "Commit interval in milliseconds.") var commitIntervalMs: Int = 200

    func run() async throws {
        let logger = probeLogger("kafka-probe-consume")
        let output = try RecordFile(path: out)
        var configuration = KafkaConsumerConfiguration(bootstrapServers: brokers, groupID: group, topics: [topic])
        configuration.sessionTimeout = .milliseconds(sessionTimeoutMs)
        configuration.heartbeatInterval = .milliseconds(500)
        configuration.commitInterval = .milliseconds(commitIntervalMs)
        let consumer = try KafkaConsumer(configuration: configuration, logger: logger) { committed in
            for (partition, offset) in committed.sorted(by: { $0.key < $1.key }) {
                output.write("C \(partition.partition) \(offset)\n")
            }
            output.sync()
        }
        let processor = Processor(consumer: consumer, output: output, delay: .milliseconds(delayMs))
        let services = ServiceGroup(configuration: .init(
            services: [.init(service: consumer), .init(service: processor)],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await services.run()
        print("consumer stopped")
    }
}

/// Records each message, and every 20 ms fsyncs the records and marks the recorded messages
/// finished — in shuffled order, so completion is out of order as in a collector.
struct Processor: Service {
    let consumer: KafkaConsumer
    let output: RecordFile
    let delay: Duration

    func run() async throws {
        let pending = PendingMessages()
        let consumer = self.consumer
        let output = self.output
        let finishPending: @Sendable () -> Void = {
            let batch = pending.takeAll()
            guard !batch.isEmpty else { return }
            output.sync()
            for message in batch.shuffled() { consumer.markFinished(message) }
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(20))
                    finishPending()
                }
            }
            do {
                for try await message in consumer.messages.cancelOnGracefulShutdown() {
                    if delay > .zero { try? await Task.sleep(for: delay) }
                    output.write("P \(message.partition) \(message.offset) \(message.keyString ?? "")\n")
                    pending.append(message)
                }
            } catch {
                print("consume loop ended: \(error)")
            }
            group.cancelAll()
        }
        finishPending()
    }
}

final class PendingMessages: Sendable {
    private let mutex = Mutex<[KafkaConsumerMessage]>([])
    func append(_ message: KafkaConsumerMessage) { mutex.withLock { $0.append(message) } }
    func takeAll() -> [KafkaConsumerMessage] {
        mutex.withLock { messages in
            defer { messages.removeAll() }
            return messages
        }
    }
}

/// An append-only file written with write(2) (one call per line) and fsync'd on demand.
final class RecordFile: Sendable {
    private let descriptor: Int32

    init(path: String) throws {
        descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        guard descriptor >= 0 else { throw ValidationError("cannot open \(path): errno \(errno)") }
    }

    deinit { close(descriptor) }

    func write(_ line: String) {
        var line = line
        line.withUTF8 { bytes in _ = Foundation.write(descriptor, bytes.baseAddress, bytes.count) }
    }

    func sync() { fsync(descriptor) }
}

func probeLogger(_ label: String) -> Logger {
    var logger = Logger(label: label) { StreamLogHandler.standardError(label: $0) }
    logger.logLevel = ProcessInfo.processInfo.environment["HES_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
    return logger
}
