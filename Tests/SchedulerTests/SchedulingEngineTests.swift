import Contracts
import DLMSSecurity
import Foundation
import Logging
import Persistence
import PostgresNIO
import Synchronization
import Testing
import TestSupport
@testable import Scheduler

/// Keeps what the engine sends; fails the first `failures` sends when asked to.
final class RecordingSink: TaskSink {
    struct Sent: Sendable { var task: CollectionTask; var topic: String }
    private let state = Mutex<(sent: [Sent], failures: Int)>(([], 0))

    func send(_ task: CollectionTask, topic: String) async throws {
        try state.withLock { state in
            if state.failures > 0 {
                state.failures -= 1
                throw SchedulerError.sendFailed("injected")
            }
            state.sent.append(Sent(task: task, topic: topic))
        }
    }

    var sent: [Sent] { state.withLock { $0.sent } }
    func failNext(_ count: Int) { state.withLock { $0.failures = count } }
    func reset() { state.withLock { $0.sent = [] } }
}

/// A region load the test sets.
final class SettableLoad: RegionLoad {
    let value = Mutex<Int?>(nil)
    func outstanding(region: String) async -> Int? { value.withLock { $0 } }
}

/// The engine against a real PostgreSQL (migrated), driven tick by tick with an injected clock.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct SchedulingEngineTests {
    struct Harness: Sendable {
        let service: DatabaseService
        let store: SchedulerStore

        func activate(_ document: ConfigurationDocument) async throws {
            let json = String(decoding: try JSONEncoder().encode(document), as: UTF8.self)
            try await execute("UPDATE config_versions SET status = 'superseded' WHERE status = 'active'")
            try await service.withConnection { connection in
                try await connection.query("""
                    INSERT INTO config_versions (status, document, sha256, created_by, activated_at)
                    VALUES ('active', \(json)::jsonb, \(String(repeating: "0", count: 64)), 'test', now())
                    """, logger: Logger(label: "sql"))
            }
        }

        func execute(_ sql: String) async throws {
            try await service.withConnection { connection in
                try await connection.query(PostgresQuery(unsafeSQL: sql), logger: Logger(label: "sql"))
            }
        }

        func strings(_ sql: String) async throws -> [String] {
            try await service.withConnection { connection in
                var values: [String] = []
                for try await value in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: Logger(label: "sql")).decode(String.self) {
                    values.append(value)
                }
                return values
            }
        }

        func engine(_ sink: RecordingSink, settings: SchedulingSettings = SchedulingSettings(), load: (any RegionLoad)? = nil,
                    masterKey: MasterKey? = nil) -> SchedulingEngine {
            SchedulingEngine(store: store, sink: sink, load: load, rewrapper: KeyRewrapper(masterKeys: masterKey.map { MasterKeyRing(current: $0) }), settings: settings,
                             logger: Logger(label: "engine"))
        }
    }

    func withDatabase(_ body: @Sendable (Harness) async throws -> Void) async throws {
        let database = try await PostgresTestCluster.shared.createDatabase(prefix: "scheduler")
        let logger = Logger(label: "scheduler-test")
        _ = try await MigrationRunner(migrations: Migration.bundled(), logger: logger).run(configuration: database.configuration)
        let service = DatabaseService(configuration: .init(database: database.configuration, runMigrations: false), logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await service.client.run() }
            try await body(Harness(service: service, store: SchedulerStore(database: service, logger: logger)))
            group.cancelAll()
        }
        try await PostgresTestCluster.shared.dropDatabase(database)
    }

    static func ids(_ sent: [RecordingSink.Sent]) -> [String] { sent.map(\.task.taskID) }

    @Test("a restarted engine neither repeats nor skips a slot; missed slots are caught up once, up to the catch-up age")
    func restartAndCatchUp() async throws {
        try await withDatabase { harness in
            try await harness.activate(try schedulerDocument(meters: 50, cron: "*/10 * * * *", windowMinutes: 10, jitterSeconds: 300))
            var settings = SchedulingSettings()
            settings.catchUp = 0  // only the slot whose window is open
            let first = RecordingSink()
            let engine = harness.engine(first, settings: settings)
            try await engine.tick(now: iso("2026-12-05T10:00:00Z"))
            try await engine.tick(now: iso("2026-12-05T10:01:00Z"))
            try await engine.tick(now: iso("2026-12-05T10:02:30Z"))
            let early = first.sent.count
            #expect(early > 0 && early < 50, "only the meters whose jitter passed are due: \(early)")
            #expect(first.sent.allSatisfy { $0.task.slot == iso("2026-12-05T10:00:00Z") && $0.topic == "hes.tasks.north" })
            // The leader dies; another engine takes over in the same slot.
            let second = RecordingSink()
            let takeover = harness.engine(second, settings: settings)
            try await takeover.tick(now: iso("2026-12-05T10:04:00Z"))
            try await takeover.tick(now: iso("2026-12-05T10:09:59Z"))
            let slot = iso("2026-12-05T10:00:00Z")
            let expected = Set((0..<50).map { TaskIdentity.scheduled(schedule: "s", slot: slot, meter: String(format: "M%05d", $0)).uuidString.lowercased() })
            let all = Self.ids(first.sent) + Self.ids(second.sent)
            #expect(all.count == 50, "no task twice")
            #expect(Set(all) == expected, "no task missing")
            // Down from 10:10 to 10:45: the slots 10:20, 10:30, 10:40 (within 30 minutes) are emitted once; 10:10 is too old.
            settings.catchUp = 1800
            let third = RecordingSink()
            let restarted = harness.engine(third, settings: settings)
            try await restarted.tick(now: iso("2026-12-05T10:45:00Z"))
            try await restarted.tick(now: iso("2026-12-05T10:45:30Z"))
            let slots = Dictionary(grouping: third.sent, by: { $0.task.slot! }).mapValues(\.count)
            #expect(slots == [iso("2026-12-05T10:20:00Z"): 50, iso("2026-12-05T10:30:00Z"): 50, iso("2026-12-05T10:40:00Z"): 50])
            // Late tasks get a whole window from now.
            #expect(third.sent.allSatisfy { $0.task.slot! >= iso("2026-12-05T10:40:00Z") || $0.task.deadline == iso("2026-12-05T10:55:00Z") })
            #expect(third.sent.allSatisfy { $0.task.slot! < iso("2026-12-05T10:40:00Z") || $0.task.deadline == iso("2026-12-05T10:50:00Z") })
            let ledger = try await harness.strings("SELECT count(*)::text FROM dispatched_tasks WHERE kind = 'scheduled'")
            #expect(ledger == ["200"])
        }
    }

    @Test("tasks Kafka refused are sent again at the next tick and recorded once")
    func sendFailuresRetried() async throws {
        try await withDatabase { harness in
            try await harness.activate(try schedulerDocument(meters: 30, cron: "0 * * * *"))
            let sink = RecordingSink()
            var settings = SchedulingSettings()
            settings.catchUp = 600
            let engine = harness.engine(sink, settings: settings)
            sink.failNext(7)
            await #expect(throws: SchedulerError.self) { try await engine.tick(now: iso("2026-12-05T10:00:05Z")) }
            #expect(sink.sent.count == 23)
            try await engine.tick(now: iso("2026-12-05T10:00:06Z"))
            #expect(sink.sent.count == 30)
            #expect(Set(Self.ids(sink.sent)).count == 30)
            #expect(try await harness.strings("SELECT count(*)::text FROM dispatched_tasks") == ["30"])
        }
    }

    @Test("commands: dispatched once to the priority topic; unknown meters fail, passed deadlines expire, unapproved ones wait")
    func commands() async throws {
        try await withDatabase { harness in
            try await harness.activate(try schedulerDocument(meters: 3, cron: "0 0 1 1 *"))
            let encoder = ContractCoder.makeEncoder()
            func insert(_ id: String, _ request: CommandRequest, deadline: String, approval: Bool = false) async throws {
                let params = String(decoding: try encoder.encode(request), as: UTF8.self)
                try await harness.execute("""
                    INSERT INTO commands (id, kind, meter_id, params, requires_approval, requested_by, deadline)
                    VALUES ('\(id)', '\(request.kind.rawValue)', '\(request.meterID)', '\(params)'::jsonb, \(approval), 'ims', '\(deadline)')
                    """)
            }
            let ok = "00000000-0000-4000-8000-000000000001"
            try await insert(ok, CommandRequest(kind: .timeSync, meterID: "M00001"), deadline: "2026-12-05T11:00:00Z")
            try await insert("00000000-0000-4000-8000-000000000002", CommandRequest(kind: .timeSync, meterID: "nope"), deadline: "2026-12-05T11:00:00Z")
            try await insert("00000000-0000-4000-8000-000000000003", CommandRequest(kind: .disconnect, meterID: "M00002"), deadline: "2026-12-05T09:00:00Z")
            try await insert("00000000-0000-4000-8000-000000000004", CommandRequest(kind: .reconnect, meterID: "M00002"), deadline: "2026-12-05T11:00:00Z", approval: true)
            let sink = RecordingSink()
            let engine = harness.engine(sink)
            let now = iso("2026-12-05T10:00:00Z")
            try await engine.tick(now: now)
            try await engine.tick(now: now.addingTimeInterval(1))
            #expect(sink.sent.count == 1)
            let sent = try #require(sink.sent.first)
            #expect(sent.topic == "hes.tasks.north.priority")
            #expect(sent.task.commandID == ok)
            #expect(sent.task.origin == .command)
            #expect(sent.task.deadline == iso("2026-12-05T11:00:00Z"))
            #expect(sent.task.taskID == TaskIdentity.command(UUID(uuidString: ok)!).uuidString.lowercased())
            let states = try await harness.strings("SELECT id::text || ' ' || state FROM commands ORDER BY id")
            #expect(states == ["\(ok) dispatched", "00000000-0000-4000-8000-000000000002 failed",
                               "00000000-0000-4000-8000-000000000003 expired", "00000000-0000-4000-8000-000000000004 accepted"])
            // Approved: dispatched at the next tick, once.
            try await harness.execute("UPDATE commands SET approved_by = 'second', approved_at = now() WHERE id = '00000000-0000-4000-8000-000000000004'")
            try await engine.tick(now: now.addingTimeInterval(2))
            try await engine.tick(now: now.addingTimeInterval(3))
            #expect(sink.sent.count == 2)
            // A leader that sent a command's task and died before recording it: the row is left
            // accepted with the ledger row present (written by the other scheduler); it is not sent again.
            let orphan = "00000000-0000-4000-8000-000000000005"
            try await insert(orphan, CommandRequest(kind: .timeSync, meterID: "M00000"), deadline: "2026-12-05T11:00:00Z")
            try await harness.execute("""
                INSERT INTO dispatched_tasks (task_id, kind, region_id, line_id, meter_id, slot, command_id, topic)
                VALUES ('\(TaskIdentity.command(UUID(uuidString: orphan)!).uuidString.lowercased())', 'command', 'north', 'L0', 'M00000', now(), '\(orphan)', 'x')
                """)
            try await engine.tick(now: now.addingTimeInterval(4))
            #expect(sink.sent.count == 2)
            #expect(try await harness.strings("SELECT state FROM commands WHERE id = '\(orphan)'") == ["dispatched"])
        }
    }

    @Test("gap recovery emits exactly the missing ranges of injected holes, once per retry interval")
    func gapRecovery() async throws {
        try await withDatabase { harness in
            try await harness.activate(try schedulerDocument(meters: 4, cron: "0 * * * *", windowMinutes: 15))
            let profile = "1.0.99.1.0.255"
            try await harness.execute("""
                INSERT INTO meter_progress (meter_id, profile_obis, confirmed_until) VALUES
                  ('M00000', '\(profile)', '2026-12-05T12:00:00Z'),
                  ('M00001', '\(profile)', '2026-12-02T12:00:00Z'),
                  ('M00002', '\(profile)', '2026-12-05T07:00:00Z')
                """)
            var settings = SchedulingSettings()
            settings.catchUp = 60  // no slot in (12:19, 12:20]: only the gap run emits
            let sink = RecordingSink()
            let engine = harness.engine(sink, settings: settings)
            let now = iso("2026-12-05T12:20:00Z")  // the 12:00 window closed at 12:15
            try await engine.tick(now: now)
            var ranges: [String: [String]] = [:]
            let formatter = ISO8601DateFormatter()
            for sent in sink.sent {
                #expect(sent.topic == "hes.tasks.north.priority")
                #expect(sent.task.origin == .gapRecovery)
                guard case .readProfile(let reference, let from, let to) = try #require(sent.task.actions.first) else { Issue.record("not a profile read"); continue }
                #expect(reference.obis == profile)
                ranges[sent.task.meterID, default: []].append("\(formatter.string(from: from))/\(formatter.string(from: to))")
            }
            // Sends run concurrently: the order they reach the sink in is not the order of the hole.
            #expect(ranges.mapValues { $0.sorted() } == [
                "M00001": ["2026-12-02T12:00:00Z/2026-12-03T12:00:00Z", "2026-12-03T12:00:00Z/2026-12-04T12:00:00Z", "2026-12-04T12:00:00Z/2026-12-05T12:00:00Z"],
                "M00002": ["2026-12-05T07:00:00Z/2026-12-05T12:00:00Z"],
            ])
            // Within the retry interval the same holes are not emitted again.
            try await engine.tick(now: now.addingTimeInterval(400))
            #expect(sink.sent.count == 4)
            let ledger = try await harness.strings("SELECT meter_id || ' ' || to_char(range_start AT TIME ZONE 'UTC', 'DD HH24') FROM dispatched_tasks WHERE kind = 'gap-recovery' ORDER BY 1")
            #expect(ledger == ["M00001 02 12", "M00001 03 12", "M00001 04 12", "M00002 05 07"])
        }
    }

    @Test("a meter silent for longer than the lookback gets its older hole with its scheduled read")
    func gapBesideScheduledRead() async throws {
        try await withDatabase { harness in
            try await harness.activate(try schedulerDocument(meters: 1, cron: "0 * * * *", lookbackHours: 24))
            try await harness.execute("INSERT INTO meter_progress (meter_id, profile_obis, confirmed_until) VALUES ('M00000', '1.0.99.1.0.255', '2026-12-03T06:00:00Z')")
            var settings = SchedulingSettings()
            settings.catchUp = 60
            settings.gapInterval = 1e9
            let sink = RecordingSink()
            let engine = harness.engine(sink, settings: settings)
            try await engine.tick(now: iso("2026-12-05T12:00:10Z"))
            let scheduled = try #require(sink.sent.first { $0.task.origin == .schedule })
            #expect(scheduled.task.actions.contains(.readProfile(profile: ObjectReference(classID: 7, obis: "1.0.99.1.0.255", attribute: 2),
                                                                  from: iso("2026-12-04T12:00:00Z"), to: iso("2026-12-05T12:00:00Z"))))
            var gaps: [String] = []
            for sent in sink.sent where sent.task.origin == .gapRecovery {
                guard case .readProfile(_, let from, let to) = sent.task.actions[0] else { Issue.record("not a profile read"); continue }
                gaps.append("\(ISO8601DateFormatter().string(from: from))/\(ISO8601DateFormatter().string(from: to))")
            }
            // Beside the read: the hole before its lookback. The periodic run in the same tick
            // adds only what starts elsewhere (the last piece, which the scheduled read overlaps).
            #expect(gaps.sorted() == ["2026-12-03T06:00:00Z/2026-12-04T06:00:00Z", "2026-12-04T06:00:00Z/2026-12-04T12:00:00Z",
                                      "2026-12-05T06:00:00Z/2026-12-05T11:00:00Z"])
        }
    }

    @Test("a gap read Kafka refused is asked for again at the next tick, not held back as already asked")
    func refusedGapReadRetried() async throws {
        try await withDatabase { harness in
            try await harness.activate(try schedulerDocument(meters: 1, cron: "0 * * * *", lookbackHours: 24))
            try await harness.execute("INSERT INTO meter_progress (meter_id, profile_obis, confirmed_until) VALUES ('M00000', '1.0.99.1.0.255', '2026-12-03T06:00:00Z')")
            var settings = SchedulingSettings()
            settings.catchUp = 60
            settings.gapInterval = 1e9
            let sink = RecordingSink()
            let engine = harness.engine(sink, settings: settings)
            sink.failNext(100)
            await #expect(throws: SchedulerError.self) { try await engine.tick(now: iso("2026-12-05T12:00:10Z")) }
            #expect(sink.sent.isEmpty)
            sink.failNext(0)
            try await engine.tick(now: iso("2026-12-05T12:00:11Z"))
            #expect(sink.sent.filter { $0.task.origin == .schedule }.count == 1)
            #expect(sink.sent.filter { $0.task.origin == .gapRecovery }.count == 3, "\(sink.sent.map(\.task.actions))")
        }
    }

    @Test("backpressure: a region with too much outstanding work gets no scheduled tasks until it catches up; commands still go")
    func backpressure() async throws {
        try await withDatabase { harness in
            try await harness.activate(try schedulerDocument(meters: 20, cron: "0 * * * *"))
            let load = SettableLoad()
            load.value.withLock { $0 = 500 }
            var settings = SchedulingSettings()
            settings.maxOutstandingPerRegion = 100
            settings.catchUp = 600
            let sink = RecordingSink()
            let engine = harness.engine(sink, settings: settings, load: load)
            try await engine.tick(now: iso("2026-12-05T10:00:01Z"))
            #expect(sink.sent.isEmpty)
            // Room for 8 more: only 8 go out.
            load.value.withLock { $0 = 92 }
            try await engine.tick(now: iso("2026-12-05T10:00:02Z"))
            #expect(sink.sent.count == 8)
            load.value.withLock { $0 = 0 }
            try await engine.tick(now: iso("2026-12-05T10:00:03Z"))
            #expect(sink.sent.count == 20)
            #expect(Set(Self.ids(sink.sent)).count == 20)
        }
    }

    @Test("a meter whose secrets cannot be wrapped is left out and named; the others are scheduled")
    func meterWithoutUsableKeys() async throws {
        try await withDatabase { harness in
            try await harness.activate(try schedulerDocument(meters: 5, cron: "0 * * * *", passwordFor: [2]))
            var settings = SchedulingSettings()
            settings.catchUp = 600
            let sink = RecordingSink()
            try await harness.engine(sink, settings: settings).tick(now: iso("2026-12-05T10:00:01Z"))
            #expect(Set(sink.sent.map(\.task.meterID)) == ["M00000", "M00001", "M00003", "M00004"])
            // With the master key the password travels wrapped.
            let master = try MasterKey(id: "default", hex: String(repeating: "11", count: 16))
            let keyed = RecordingSink()
            try await harness.execute("TRUNCATE dispatched_tasks")
            try await harness.engine(keyed, settings: settings, masterKey: master).tick(now: iso("2026-12-05T10:00:01Z"))
            let withKey = try #require(keyed.sent.first { $0.task.meterID == "M00002" })
            let wrapped = try #require(withKey.task.meter.keys?.password)
            #expect(!wrapped.wrapped.contains(Data("pw2".utf8).map { String(format: "%02x", $0) }.joined()))
            #expect(keyed.sent.count == 5)
        }
    }
}
