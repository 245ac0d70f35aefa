import Contracts
import Foundation
import Logging
import Messaging
import Persistence
import PostgresNIO
import Testing
import TestSupport

/// The uploader as a process between kafka-dev and ims-sim (each with its own PostgreSQL
/// database): what is on `hes.readings` and `hes.results` ends at the IMS exactly once, through
/// SIGKILLs of the uploader and an IMS outage, and `meter_progress` holds only what the IMS holds.
@Suite(.serialized, .timeLimit(.minutes(6)))
struct UploaderDeliveryTests {
    static let logger = Logger(label: "uploader-delivery-test")
    static let t0 = Date(timeIntervalSince1970: 1_764_547_200)  // 2025-12-01T00:00:00Z

    final class Stack: ProcessStack, @unchecked Sendable {
        let kafkaPort: Int
        let imsPort: Int
        var imsAdminPort = 0
        var hesDatabase: PostgresTestDatabase!
        var imsDatabase: PostgresTestDatabase!
        var brokers: String { "127.0.0.1:\(kafkaPort)" }

        init() throws {
            kafkaPort = try freeLoopbackPort()
            imsPort = try freeLoopbackPort()
            try super.init(prefix: "hes-upl")
        }

        func startBase(imsArguments: [String] = []) async throws {
            hesDatabase = try await PostgresTestCluster.shared.createDatabase(prefix: "upl_hes")
            imsDatabase = try await PostgresTestCluster.shared.createDatabase(prefix: "upl_ims")
            _ = try await start("kafka-dev", [
                "--port", String(kafkaPort), "--regions", "upl", "--partitions", "4", "--admin-port", "0", "--bootstrap-file", directory + "/bootstrap",
            ], ready: "kafka-dev bootstrap")
            imsAdminPort = try freeLoopbackPort()
            _ = try await start("ims-sim", ["--port", String(imsPort), "--admin-port", String(imsAdminPort)] + imsArguments,
                                environment: ["HES_IMS_DATABASE_URL": imsDatabase.url], ready: "ims api listening")
        }

        func startUploader(_ extra: [String] = []) async throws -> ChildProcess {
            try await start("uploader", ["--admin-port", "0", "--ims-url", "http://127.0.0.1:\(imsPort)", "--kafka-session-timeout", "6"] + extra,
                            environment: ["HES_KAFKA_BROKERS": brokers, "HES_DATABASE_URL": hesDatabase.url], ready: "Kafka consumer started")
        }

        func stats() throws -> IMSStatsView {
            let response = try httpGet(port: imsPort, path: "/v1/stats?meters=true")
            guard response.status == 200 else { throw ChildProcessError(reason: "stats: \(response.status) \(response.body)") }
            return try UploaderDeliveryTests.decoder.decode(IMSStatsView.self, from: Data(response.body.utf8))
        }
    }

    struct IMSStatsView: Decodable {
        struct Meter: Decodable { var meterID: String; var readings: Int; var lastCaptureTime: Date }
        var requests: Int
        var replayedRequests: Int
        var readings: Int
        var duplicateReadings: Int
        var results: Int
        var rejectedItems: Int
        var meters: [Meter]?
    }

    static let decoder = ContractCoder.makeDecoder()

    static func batch(meter: String, task: String, quarterHours: Int, start: Int = 0) -> ReadingBatch {
        ReadingBatch(batchID: "\(task)#readings", taskID: task, region: "upl", meterID: meter, collectedAt: t0.addingTimeInterval(86_400),
                     readings: (start..<(start + quarterHours)).flatMap { quarter in
                         ["1.0.1.8.0.255", "1.0.2.8.0.255"].map { obis in
                             Reading(obis: obis, classID: 3, attribute: 2, captureTime: t0.addingTimeInterval(Double(quarter) * 900),
                                     valueType: .number, value: "\(quarter).\(obis.count)", unit: "Wh", profile: "1.0.99.1.0.255")
                         }
                     })
    }

    static func result(meter: String, task: String) -> TaskResult {
        TaskResult(taskID: task, region: "upl", lineID: "line-\(meter)", meterID: meter, outcome: .succeeded, startedAt: t0, finishedAt: t0, readingCount: 0)
    }

    static func publish(_ batches: [ReadingBatch], results: [TaskResult] = [], brokers: String) async throws {
        var configuration = KafkaProducerConfiguration(bootstrapServers: brokers)
        configuration.clientID = "upl-test"
        let producer = try KafkaProducer(configuration: configuration, logger: KafkaTestSupport.testLogger("upl-test"))
        for batch in batches { _ = try await producer.send(topic: KafkaTopics.readings, key: batch.meterID, value: try ContractCoder.encode(batch)) }
        for result in results { _ = try await producer.send(topic: KafkaTopics.results, key: result.taskID, value: try ContractCoder.encode(result)) }
        await producer.close()
    }

    /// `meter_progress` as (meter, obis) → confirmed_until.
    static func progress(_ database: PostgresTestDatabase) async throws -> [String: Date] {
        let connection = try await database.configuration.connect(logger: logger)
        defer { Task { try? await connection.close() } }
        var progress: [String: Date] = [:]
        let rows = try await connection.query("SELECT meter_id, profile_obis, confirmed_until FROM meter_progress", logger: logger)
        for try await (meter, obis, until) in rows.decode((String, String, Date).self) { progress["\(meter)|\(obis)"] = until }
        return progress
    }

    static func auditRejections(_ database: PostgresTestDatabase) async throws -> [String] {
        let connection = try await database.configuration.connect(logger: logger)
        defer { Task { try? await connection.close() } }
        var subjects: [String] = []
        let rows = try await connection.query("SELECT subject FROM audit_log WHERE action = 'ims.rejected' ORDER BY subject", logger: logger)
        for try await subject in rows.decode(String.self) { subjects.append(subject) }
        return subjects
    }

    static func rss(_ pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return 0 }
        return Int(line.split(separator: " ").dropFirst().first ?? "0").map { $0 * 1024 } ?? 0
    }

    @Test("the uploader SIGKILLed mid-delivery 5 times: every reading reaches the IMS exactly once; progress holds only what the IMS holds; committed offsets are not sent again")
    func killedUploaderLosesNothing() async throws {
        let stack = try Stack()
        defer { Task { await stack.stop() } }
        try await stack.startBase(imsArguments: ["--latency-ms", "60"])
        let meters = (0..<240).map { String(format: "M%04d", $0) }
        let batches = meters.map { Self.batch(meter: $0, task: "day-\($0)", quarterHours: 24) }
        let results = meters.map { Self.result(meter: $0, task: "day-\($0)") }
        let expectedReadings = batches.reduce(0) { $0 + $1.readings.count }
        try await Self.publish(batches, results: results, brokers: stack.brokers)

        var seenBeforeKills: [Int] = []
        for round in 0..<5 {
            let uploader = try await stack.startUploader(["--batch-readings", "480", "--in-flight", "1"])
            try await Task.sleep(for: .milliseconds(600 + 150 * round))
            uploader.signal(SIGKILL)
            _ = await uploader.waitForExit(timeout: .seconds(5))
            seenBeforeKills.append(try stack.stats().readings)
        }
        #expect(seenBeforeKills.last.map { $0 < expectedReadings } == true, "the kills must land before the end: \(seenBeforeKills)")
        let last = try await stack.startUploader(["--batch-readings", "480"])
        let done = try await eventually(timeout: .seconds(90), interval: .milliseconds(250)) {
            let stats = try stack.stats()
            return stats.readings == expectedReadings && stats.results == results.count
        }
        let stats = try stack.stats()
        #expect(done, "IMS holds \(stats.readings) of \(expectedReadings) readings, \(stats.results) of \(results.count) results; progress over kills: \(seenBeforeKills)\n\(last.standardError.suffix(3000))")
        #expect(stats.rejectedItems == 0)
        // Every meter's readings, each once (the store's key is the natural key; the count per meter shows none is missing).
        #expect(stats.meters?.count == meters.count)
        #expect(stats.meters?.allSatisfy { $0.readings == 48 } == true)

        // Progress: exactly the IMS's latest capture per meter, for the profile the values came from.
        let progress = try await Self.progress(stack.hesDatabase)
        #expect(progress.count == meters.count)
        for meter in stats.meters ?? [] {
            #expect(progress["\(meter.meterID)|1.0.99.1.0.255"] == meter.lastCaptureTime)
        }

        // A graceful stop commits; the next uploader finds nothing to send again.
        last.signal(SIGTERM)
        #expect(await last.waitForExit(timeout: .seconds(10)) == 0, "\(last.standardError.suffix(2000))")
        let requestsBefore = try stack.stats().requests + stack.stats().replayedRequests
        let next = try await stack.startUploader()
        // Only a member that holds the partitions could send anything again; a stop in the middle
        // of joining the group would wait for the join first.
        try await next.waitForOutput(containing: "Kafka partitions assigned", timeout: .seconds(30))
        try await Task.sleep(for: .seconds(3))
        let after = try stack.stats()
        #expect(after.requests + after.replayedRequests == requestsBefore, "committed work was sent again")
        next.signal(SIGTERM)
        #expect(await next.waitForExit(timeout: .seconds(20)) == 0, "\(next.standardError.suffix(3000))")
    }

    @Test("a 60 s IMS outage while batches keep coming: nothing lost, memory bounded, caught up after; rejected items go to the dead-letter topic with their reason")
    func imsOutage() async throws {
        let stack = try Stack()
        defer { Task { await stack.stop() } }
        try await stack.startBase(imsArguments: ["--outage", "0,60", "--reject-meter", "GHOST"])
        let uploader = try await stack.startUploader(["--batch-readings", "2000", "--max-buffered-bytes", "4194304"])
        let started = ContinuousClock.now

        var configuration = KafkaConsumerConfiguration(bootstrapServers: stack.brokers, groupID: KafkaTestSupport.uniqueName("dlq-check"), topics: [KafkaTopics.readingsDeadLetter])
        configuration.offsetReset = .earliest
        let dlqConsumer = try KafkaConsumer(configuration: configuration, logger: KafkaTestSupport.testLogger("dlq-check"))
        let dlqRunning = Task { try await dlqConsumer.run() }
        let deadLetters = KafkaMessageCollector(dlqConsumer) { dlqConsumer.markFinished($0) }
        defer { dlqRunning.cancel() }

        var expected = 0
        var peakRSS = 0
        var wave = 0
        while ContinuousClock.now - started < .seconds(44) {
            let batches = (0..<30).map { Self.batch(meter: String(format: "W%02d-%02d", wave, $0), task: "w\(wave)-\($0)", quarterHours: 96) }
            expected += batches.reduce(0) { $0 + $1.readings.count }
            try await Self.publish(batches, brokers: stack.brokers)
            peakRSS = max(peakRSS, Self.rss(uploader.pid))
            wave += 1
            try await Task.sleep(for: .seconds(4))
        }
        let duringOutage = try stack.stats()
        #expect(duringOutage.readings == 0, "the IMS was down")
        try await Self.publish([Self.batch(meter: "GHOST", task: "ghost-1", quarterHours: 4)], brokers: stack.brokers)

        let done = try await eventually(timeout: .seconds(90), interval: .milliseconds(500)) {
            peakRSS = max(peakRSS, Self.rss(uploader.pid))
            return try stack.stats().readings == expected
        }
        let stats = try stack.stats()
        #expect(done, "IMS holds \(stats.readings) of \(expected)\n\(uploader.standardError.suffix(3000))")
        #expect(peakRSS > 0 && peakRSS < 160 << 20, "uploader RSS peaked at \(peakRSS >> 20) MiB during the outage")
        print("BENCH-NOTE uploader peak RSS during a 60 s outage with \(expected) readings waiting: \(peakRSS >> 20) MiB")

        let letters = try await deadLetters.wait(forCount: 1, timeout: .seconds(30))
        let letter = try ContractCoder.decode(DeadLetter.self, from: letters[0].value)
        #expect(letter.meterID == "GHOST" && letter.code == "ims.meter.unknown" && letter.reason.contains("not registered"))
        #expect(letter.payload.contains("ghost-1#readings"))
        #expect(try await Self.auditRejections(stack.hesDatabase) == ["meter:GHOST"])
        #expect(try await Self.progress(stack.hesDatabase).keys.contains { $0.hasPrefix("GHOST|") } == false, "rejected data is not progress")
        #expect(uploader.standardError.contains("circuit open"), "the breaker opened during the outage")
    }
}
