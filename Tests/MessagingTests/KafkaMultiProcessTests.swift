import Foundation
import Messaging
import Testing
import TestSupport

/// Whole processes: a `kafka-dev` broker; a `kafka-probe produce` process sends 10,000 keyed
/// messages; two `kafka-probe consume` processes share the partitions in one group; one is killed
/// with SIGKILL mid-stream and restarted. Every message must be processed, and a message may be
/// processed twice only if it had not been committed.
@Suite("Kafka consumer group across processes", .serialized, .timeLimit(.minutes(5)))
struct KafkaMultiProcessTests {
    struct Record: Hashable {
        var partition: Int32
        var offset: Int64
    }

    /// What one consumer process recorded: processed messages (with keys) and committed offsets.
    struct ConsumerLog {
        var processed: [Record: String] = [:]
        var processedCount = 0
        var lastCommitted: [Int32: Int64] = [:]
        /// Messages this process processed again (after a rebalance gave it the partition back)
        /// although it had already committed past them: must stay empty.
        var reprocessedAfterCommit: [Record] = []
        var reprocessed = 0

        init(path: String) {
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n") {
                let fields = line.split(separator: " ")
                // A line cut short by SIGKILL has fewer fields: the message was not marked finished.
                if fields.count == 4, fields[0] == "P", let partition = Int32(fields[1]), let offset = Int64(fields[2]) {
                    let record = Record(partition: partition, offset: offset)
                    if processed[record] != nil {
                        // The file is in processing order: compare with the commits made so far.
                        reprocessed += 1
                        if offset < lastCommitted[partition] ?? 0 { reprocessedAfterCommit.append(record) }
                    }
                    processed[record] = String(fields[3])
                    processedCount += 1
                } else if fields.count == 3, fields[0] == "C", let partition = Int32(fields[1]), let offset = Int64(fields[2]) {
                    lastCommitted[partition] = max(lastCommitted[partition] ?? 0, offset)
                }
            }
        }
    }

    @Test("10,000 messages, two consumer processes, one killed with SIGKILL and restarted: nothing lost, duplicates only uncommitted")
    func killAndRestartConsumer() async throws {
        let region = "mp"
        let topic = "hes.tasks.\(region)"
        let groupID = KafkaTestSupport.uniqueName("hes-collector-\(region)")
        let partitions = 6
        let total = 10_000
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(KafkaTestSupport.uniqueName("kafka-multi-process"))
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

        // The broker is a kafka-dev process too: every role runs in a process of its own.
        let broker = try ChildProcess(product: "kafka-dev", arguments: [
            "--regions", region, "--partitions", "\(partitions)", "--bootstrap-file", path("kafka-bootstrap"), "--admin-port", "0",
        ])
        try await broker.waitForOutput(containing: "kafka-dev bootstrap:", timeout: .seconds(30))
        let brokers = try String(contentsOfFile: path("kafka-bootstrap"), encoding: .utf8)
        func consumer(_ name: String) throws -> ChildProcess {
            try ChildProcess(product: "kafka-probe", arguments: [
                "consume", "--brokers", brokers, "--topic", topic, "--group", groupID,
                "--out", path(name), "--session-timeout-ms", "6000", "--delay-ms", "1",
            ])
        }

        let started = ContinuousClock.now
        let killed = try consumer("killed")
        let survivor = try consumer("survivor")
        try await killed.waitForOutput(containing: "Kafka partitions assigned", timeout: .seconds(60))
        try await survivor.waitForOutput(containing: "Kafka partitions assigned", timeout: .seconds(60))

        let produce = try await ChildProcess.run(product: "kafka-probe", arguments: [
            "produce", "--brokers", brokers, "--topic", topic, "--count", "\(total)", "--out", path("produced"),
        ], timeout: .seconds(120))
        #expect(produce.status == 0, "\(produce.stderr)")
        print("kafka-probe produce: \(produce.stdout.trimmingCharacters(in: .whitespacesAndNewlines))")

        var produced: [Record: String] = [:]
        for line in try String(contentsOfFile: path("produced"), encoding: .utf8).split(separator: "\n") {
            let fields = line.split(separator: " ")
            produced[Record(partition: Int32(fields[0])!, offset: Int64(fields[1])!)] = String(fields[2])
        }
        #expect(produced.count == total)
        #expect(Set(produced.values).count == total)

        // Kill one member mid-stream, once it has done a real share of the work.
        let midStream = try await eventually(timeout: .seconds(60)) { ConsumerLog(path: path("killed")).processedCount >= 1000 }
        #expect(midStream, "the first consumer processed 1,000 messages")
        killed.signal(SIGKILL)
        _ = await killed.waitForExit(timeout: .seconds(10))
        let killedLog = ConsumerLog(path: path("killed"))
        try await Task.sleep(for: .seconds(1))
        let restarted = try consumer("restarted")

        // Everything produced is processed by someone.
        let everything = try await eventually(timeout: .seconds(150), interval: .milliseconds(500)) {
            let seen = Set(ConsumerLog(path: path("survivor")).processed.keys)
                .union(ConsumerLog(path: path("restarted")).processed.keys)
                .union(killedLog.processed.keys)
            return seen.count >= total
        }
        #expect(everything)
        let processingTime = ContinuousClock.now - started

        // Let the last commits land, then stop both members gracefully.
        try await Task.sleep(for: .seconds(1))
        survivor.signal(SIGTERM)
        restarted.signal(SIGTERM)
        let survivorStatus = await survivor.waitForExit(timeout: .seconds(30))
        let restartedStatus = await restarted.waitForExit(timeout: .seconds(30))
        #expect(survivorStatus == 0, "survivor stderr:\n\(survivor.standardError.suffix(3000))")
        #expect(restartedStatus == 0, "restarted stderr:\n\(restarted.standardError.suffix(3000))")

        broker.signal(SIGTERM)
        #expect(await broker.waitForExit(timeout: .seconds(20)) == 0, "kafka-dev stderr:\n\(broker.standardError.suffix(2000))")

        let logs = [("killed", killedLog), ("survivor", ConsumerLog(path: path("survivor"))), ("restarted", ConsumerLog(path: path("restarted")))]

        // 1. At least once, with the key the producer sent.
        var missing = 0
        var wrongKey = 0
        for (record, key) in produced {
            let keys = logs.compactMap { $0.1.processed[record] }
            if keys.isEmpty { missing += 1 }
            if keys.contains(where: { $0 != key }) { wrongKey += 1 }
        }
        #expect(missing == 0, "\(missing) produced messages were never processed")
        #expect(wrongKey == 0)

        // 2. Duplicates only where nothing had been committed. A message processed by two
        //    members must lie at or above the last offset the killed member committed for its
        //    partition (if the killed member was one of them), and in general at or above the
        //    lower of the two members' last commits: the member that processed it first had not
        //    committed past it.
        var duplicates = 0
        var duplicatesAfterKill = 0
        for record in produced.keys {
            let holders = logs.filter { $0.1.processed[record] != nil }
            guard holders.count > 1 else { continue }
            duplicates += 1
            if holders.contains(where: { $0.0 == "killed" }) {
                duplicatesAfterKill += 1
                let committed = killedLog.lastCommitted[record.partition] ?? 0
                #expect(record.offset >= committed, "\(record) was committed by the killed member (\(committed)) and processed again")
            }
            let lowestCommit = holders.map { $0.1.lastCommitted[record.partition] ?? 0 }.min()!
            #expect(record.offset >= lowestCommit, "\(record) processed twice although committed (\(lowestCommit))")
        }
        // Within one process a message comes again only after a rebalance took the partition
        // away and gave it back before the work was committed.
        for (name, log) in logs {
            #expect(log.reprocessedAfterCommit.isEmpty, "\(name) processed committed messages again: \(log.reprocessedAfterCommit.prefix(5))")
        }

        // 3. After the graceful stop everything is committed.
        var ends: [Int32: Int64] = [:]
        for record in produced.keys { ends[record.partition] = max(ends[record.partition] ?? 0, record.offset + 1) }
        var finalCommits: [Int32: Int64] = [:]
        for (_, log) in logs {
            for (partition, offset) in log.lastCommitted { finalCommits[partition] = max(finalCommits[partition] ?? 0, offset) }
        }
        #expect(finalCommits == ends, "final commits \(finalCommits.sorted { $0.key < $1.key }) vs log ends \(ends.sorted { $0.key < $1.key })")

        print("""
            kafka multi-process: \(total) messages over \(partitions) partitions, processed in \(processingTime); \
            killed member processed \(killedLog.processedCount) (committed \(killedLog.lastCommitted.sorted { $0.key < $1.key })); \
            duplicates across processes \(duplicates) (\(duplicatesAfterKill) involving the killed member), \
            within a process \(logs.map { "\($0.0)=\($0.1.reprocessed)" }.joined(separator: " "))
            """)
    }
}

@Suite("kafka-dev", .serialized, .timeLimit(.minutes(2)))
struct KafkaDevTests {
    @Test("kafka-dev serves the SwiftHES topics, publishes its address, and exits 0 on SIGTERM")
    func servesTopicsAndStops() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(KafkaTestSupport.uniqueName("kafka-dev"))
        defer { try? FileManager.default.removeItem(at: directory) }
        let bootstrapFile = directory.appendingPathComponent("kafka-bootstrap").path
        let broker = try ChildProcess(product: "kafka-dev", arguments: [
            "--regions", "north,south", "--partitions", "3", "--bootstrap-file", bootstrapFile, "--admin-port", "0",
        ])
        try await broker.waitForOutput(containing: "kafka-dev bootstrap:", timeout: .seconds(30))
        let address = try String(contentsOfFile: bootstrapFile, encoding: .utf8)
        #expect(broker.standardOutput.contains(address))

        let logger = KafkaTestSupport.testLogger("kafka-dev-test")
        let producer = try KafkaProducer(configuration: .init(bootstrapServers: address), logger: logger)
        for topic in ["hes.tasks.north", "hes.tasks.north.priority", "hes.tasks.south", "hes.tasks.south.priority", "hes.readings", "hes.results", "hes.readings.dlq"] {
            let report = try await producer.send(topic: topic, key: "line-1", value: "probe")
            #expect((0..<3).contains(report.partition), "\(topic) has 3 partitions")
        }
        await producer.close()

        broker.signal(SIGTERM)
        let status = await broker.waitForExit(timeout: .seconds(20))
        #expect(status == 0, "stderr:\n\(broker.standardError.suffix(2000))")
        #expect(!FileManager.default.fileExists(atPath: bootstrapFile), "the address of a stopped broker is removed")
    }
}
