import Contracts
import Foundation
import Logging
import Messaging
import Persistence
import PostgresNIO
import Testing
import TestSupport

/// Two schedulers as processes with kafka-dev and PostgreSQL: the leader is SIGKILLed in the
/// middle of emitting a slot; the standby takes over, and the tasks on Kafka cover every meter
/// of every slot exactly once after dedup by id (no gap, no missing slot).
@Suite(.serialized, .timeLimit(.minutes(5)))
struct SchedulerFailoverTests {
    static let region = "north"
    static let meters = 1_500
    static let logger = Logger(label: "scheduler-failover-test")

    /// Every minute, spread over 50 s: a slot is being emitted most of the time.
    static func document() -> String {
        let lines = (0..<meters).map { #"{"id": "L\#($0)", "region": "north", "endpoint": {"kind": "tcp", "host": "127.0.0.1", "port": \#(10_000 + $0)}}"# }
        let meters = (0..<meters).map { #"{"id": "M\#(String(format: "%05d", $0))", "line": "L\#($0)", "template": "home"}"# }
        return """
            {"schema": "hes-configuration/v1", "regions": [{"id": "north"}],
             "schedules": [{"id": "minutely", "cron": "* * * * *", "windowMinutes": 1, "jitterSeconds": 50}],
             "templates": [{"id": "home", "schedules": ["minutely"], "defaults": {"protocol": "dlms-wrapper"},
                            "objects": [{"classID": 3, "obis": "1.0.1.8.0.255", "attribute": 2}]}],
             "lines": [\(lines.joined(separator: ","))], "meters": [\(meters.joined(separator: ","))]}
            """
    }

    static func sql(_ database: PostgresTestDatabase, _ text: String) async throws -> [String] {
        let connection = try await database.configuration.connect(logger: logger)
        var values: [String] = []
        do {
            for try await value in try await connection.query(PostgresQuery(unsafeSQL: text), logger: logger).decode(String.self) { values.append(value) }
        } catch {
            try? await connection.close()
            throw error
        }
        try? await connection.close()
        return values
    }

    @Test("SIGKILL of the leader mid-slot: the standby takes over within seconds; every meter of every slot is on Kafka, once after dedup")
    func leaderKilledMidSlot() async throws {
        let database = try await PostgresTestCluster.shared.createDatabase(prefix: "sched_failover")
        _ = try await MigrationRunner(migrations: Migration.bundled(), logger: Self.logger).run(configuration: database.configuration)
        let escaped = Self.document().replacingOccurrences(of: "'", with: "''")
        _ = try await Self.sql(database, """
            INSERT INTO config_versions (status, document, sha256, created_by, activated_at)
            VALUES ('active', '\(escaped)'::jsonb, repeat('0', 64), 'test', now()) RETURNING id::text
            """)

        let stack = try ProcessStack(prefix: "hes-sched", stopGrace: .seconds(6))
        let kafkaPort = try freeLoopbackPort()
        let brokers = "127.0.0.1:\(kafkaPort)"
        _ = try await stack.start("kafka-dev", [
            "--port", String(kafkaPort), "--regions", Self.region, "--partitions", "4", "--admin-port", "0", "--bootstrap-file", stack.directory + "/bootstrap",
        ], ready: "kafka-dev bootstrap")
        let environment = ["HES_DATABASE_URL": database.url, "HES_KAFKA_BROKERS": brokers]
        // Only the slot whose window is open: no catch-up of the hour before the test.
        let first = try await stack.start("scheduler", ["--admin-port", "0", "--catch-up", "0s"], environment: environment, ready: "leading:")
        let second = try await stack.start("scheduler", ["--admin-port", "0", "--catch-up", "0s"], environment: environment, ready: "standing by")

        // Kill the leader once it is in the middle of a slot.
        var killedSlot = ""
        let waitUntil = ContinuousClock.now + .seconds(90)
        while ContinuousClock.now < waitUntil {
            let progress = try await Self.sql(database, """
                SELECT slot::text || '|' || count(*)::text FROM dispatched_tasks GROUP BY slot ORDER BY slot DESC LIMIT 1
                """)
            if let latest = progress.first, let count = Int(latest.split(separator: "|")[1]), count > 300, count < Self.meters - 300 {
                killedSlot = String(latest.split(separator: "|")[0])
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(!killedSlot.isEmpty, "the leader was never seen mid-slot")
        first.signal(SIGKILL)
        let killedAt = ContinuousClock.now
        _ = await first.waitForExit(timeout: .seconds(5))
        try await second.waitForOutput(containing: "leading:", timeout: .seconds(20))
        let takeover = ContinuousClock.now - killedAt
        #expect(takeover < .seconds(10))

        // Let the standby finish the killed slot and emit the whole next one.
        let slotsAfter = ContinuousClock.now + .seconds(150)
        var completed: [String] = []
        while ContinuousClock.now < slotsAfter {
            completed = try await Self.sql(database, """
                SELECT slot::text FROM dispatched_tasks WHERE slot >= '\(killedSlot)' GROUP BY slot HAVING count(*) = \(Self.meters) ORDER BY slot
                """)
            if completed.count >= 2 { break }
            try await Task.sleep(for: .milliseconds(500))
        }
        #expect(completed.count >= 2, "the killed slot and the next one are complete in the ledger: \(completed)")
        second.signal(SIGTERM)
        _ = await second.waitForExit(timeout: .seconds(10))

        // Everything on Kafka, from the start (kafka-dev still runs).
        let ledgerCount = Int(try await Self.sql(database, "SELECT count(*)::text FROM dispatched_tasks").first ?? "0") ?? 0
        var configuration = KafkaConsumerConfiguration(bootstrapServers: brokers, groupID: KafkaTestSupport.uniqueName("sched-check"),
                                                       topics: [KafkaTopics.tasks(region: Self.region)])
        configuration.offsetReset = .earliest
        let consumer = try KafkaConsumer(configuration: configuration, logger: Self.logger)
        let running = Task { try await consumer.run() }
        let collector = KafkaMessageCollector(consumer) { consumer.markFinished($0) }  // unfinished messages would pause a partition
        let messages = try await collector.wait(forCount: ledgerCount, timeout: .seconds(60))
        try await Task.sleep(for: .seconds(1))  // anything beyond the ledger (sent, not recorded) arrives too
        let all = collector.received
        running.cancel()
        await stack.stop()

        var servedBy: [String: String] = [:]  // task id → meter@slot
        var metersBySlot: [Date: Set<String>] = [:]
        for message in all {
            let task = try ContractCoder.decode(CollectionTask.self, from: message.value)
            let served = "\(task.meterID)@\(task.slot!.timeIntervalSince1970)"
            #expect(servedBy[task.taskID] == nil || servedBy[task.taskID] == served, "one id, one meter and slot")
            servedBy[task.taskID] = served
            metersBySlot[task.slot!, default: []].insert(task.meterID)
        }
        let lastComplete = try #require(metersBySlot.filter { $0.value.count == Self.meters }.keys.max())
        let checked = metersBySlot.keys.filter { $0 <= lastComplete }.sorted()
        #expect(checked.count >= 2, "the killed slot and the one after it")
        for slot in checked { #expect(metersBySlot[slot]?.count == Self.meters, "slot \(slot) has every meter") }
        // Consecutive minutes: no slot is missing.
        for (earlier, later) in zip(checked, checked.dropFirst()) { #expect(later.timeIntervalSince(earlier) == 60) }
        #expect(Set(servedBy.values).count == servedBy.count, "no meter and slot under two ids")
        #expect(messages.count >= ledgerCount)
        print("BENCH-NOTE scheduler failover: takeover after \(takeover); \(all.count) task messages for \(servedBy.count) ids in \(metersBySlot.count) slots (\(all.count - servedBy.count) redelivered copies)")
    }
}
