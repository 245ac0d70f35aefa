import Contracts
import COSEM
import DLMSSecurity
import Foundation
import Testing
@testable import Scheduler

/// A configuration for the scheduler tests: `meters` meters on TCP lines (one line each, in
/// segment `cell-<n % segments>` when paced), a template reading an object and the load profile
/// on schedule `s` (cron, zone, window, jitter as given).
func schedulerDocument(meters: Int, cron: String = "0 * * * *", timeZone: String = "UTC", windowMinutes: Int = 60, jitterSeconds: Int = 0,
                       segmentRate: Double? = nil, segments: Int = 1, regions: [String] = ["north"], lookbackHours: Double = 24,
                       passwordFor: Set<Int> = []) throws -> ConfigurationDocument {
    let pacing = segmentRate.map { #", "segmentConnectionsPerSecond": \#($0)"# } ?? ""
    let lines = (0..<meters).map { index in
        #"{"id": "L\#(index)", "region": "\#(regions[index % regions.count])", "endpoint": {"kind": "tcp", "host": "127.0.0.\#(1 + index % 200)", "port": \#(4000 + index)}, "networkSegment": "cell-\#(index % segments)"\#(pacing)}"#
    }
    let meterEntries = (0..<meters).map { index in
        let keys = passwordFor.contains(index) ? #", "keys": {"password": "pw\#(index)"}"# : ""
        return #"{"id": "M\#(String(format: "%05d", index))", "line": "L\#(index)", "template": "home"\#(keys)}"#
    }
    let json = """
        {"schema": "hes-configuration/v1",
         "regions": [\(regions.map { #"{"id": "\#($0)"}"# }.joined(separator: ","))],
         "schedules": [{"id": "s", "cron": "\(cron)", "timeZone": "\(timeZone)", "windowMinutes": \(windowMinutes), "jitterSeconds": \(jitterSeconds)}],
         "templates": [{"id": "home", "schedules": ["s"], "defaults": {"protocol": "dlms-wrapper", "authentication": "lls"},
                        "objects": [{"classID": 3, "obis": "1.0.1.8.0.255", "attribute": 2}],
                        "profiles": [{"obis": "1.0.99.1.0.255", "lookbackHours": \(lookbackHours)}]}],
         "lines": [\(lines.joined(separator: ",\n"))],
         "meters": [\(meterEntries.joined(separator: ",\n"))]}
        """
    return try JSONDecoder().decode(ConfigurationDocument.self, from: Data(json.utf8))
}

func iso(_ text: String) -> Date { ISO8601DateFormatter().date(from: text)! }

@Suite struct SchedulePlanningTests {
    /// Every slot of a local calendar day, as the engine enumerates them (`fires(after:through:)`).
    static func slots(_ cron: String, zone: String, from: String, to: String) throws -> [Date] {
        let schedule = try CronSchedule(cron, timeZoneIdentifier: zone)
        return schedule.fires(after: iso(from).addingTimeInterval(-0.001), through: iso(to).addingTimeInterval(-0.001))
    }

    @Test("DST forward and back in Europe/Berlin and America/New_York: hourly slots are 23 and 25 a local day, each once")
    func daylightSavingDays() throws {
        // Berlin: 29 March 2026 (02:00 CET → 03:00 CEST), 25 October 2026 (03:00 CEST → 02:00 CET).
        let berlinSpring = try Self.slots("0 * * * *", zone: "Europe/Berlin", from: "2026-03-28T23:00:00Z", to: "2026-03-29T22:00:00Z")
        let berlinAutumn = try Self.slots("0 * * * *", zone: "Europe/Berlin", from: "2026-10-24T22:00:00Z", to: "2026-10-25T23:00:00Z")
        // New York: 8 March 2026 (02:00 EST → 03:00 EDT), 1 November 2026 (02:00 EDT → 01:00 EST).
        let newYorkSpring = try Self.slots("0 * * * *", zone: "America/New_York", from: "2026-03-08T05:00:00Z", to: "2026-03-09T04:00:00Z")
        let newYorkAutumn = try Self.slots("0 * * * *", zone: "America/New_York", from: "2026-11-01T04:00:00Z", to: "2026-11-02T05:00:00Z")
        // The repeated hour fires once (its first pass): 24 distinct wall-clock slots on the long day.
        #expect(berlinSpring.count == 23)
        #expect(berlinAutumn.count == 24)
        #expect(newYorkSpring.count == 23)
        #expect(newYorkAutumn.count == 24)
        for slots in [berlinSpring, berlinAutumn, newYorkSpring, newYorkAutumn] {
            #expect(Set(slots).count == slots.count)
            #expect(slots == slots.sorted())
        }
        // A daily 02:30 slot on the spring-forward day moves to the transition (03:00 local), once.
        let daily = try Self.slots("30 2 * * *", zone: "Europe/Berlin", from: "2026-03-28T23:00:00Z", to: "2026-03-29T22:00:00Z")
        #expect(daily == [iso("2026-03-29T01:00:00Z")])
        let dailyNY = try Self.slots("30 1 * * *", zone: "America/New_York", from: "2026-11-01T04:00:00Z", to: "2026-11-02T05:00:00Z")
        #expect(dailyNY == [iso("2026-11-01T05:30:00Z")])  // 01:30 EDT, not again at 01:30 EST
        // Task ids over the two DST days are distinct per slot and meter.
        let plan = FleetPlan(document: try schedulerDocument(meters: 3, timeZone: "Europe/Berlin"), version: 1)
        let ids = (berlinSpring + berlinAutumn).flatMap { slot in plan.meters.map { TaskIdentity.scheduled(schedule: "s", slot: slot, meter: $0.id) } }
        #expect(Set(ids).count == (berlinSpring.count + berlinAutumn.count) * 3)
    }

    @Test("a window crossing midnight: the task of a 23:30 local slot expires at 00:30 the next local day; gaps wait for the window to close")
    func windowAcrossMidnight() throws {
        let document = try schedulerDocument(meters: 2, cron: "30 23 * * *", timeZone: "Europe/Berlin", windowMinutes: 60)
        let plan = FleetPlan(document: document, version: 7)
        let schedule = try #require(plan.schedules["s"])
        let slot = try #require(schedule.cron.nextFire(after: iso("2026-06-10T12:00:00Z")))
        #expect(slot == iso("2026-06-10T21:30:00Z"))  // 23:30 CEST
        let task = TaskFactory(plan: plan).scheduled(meter: 0, schedule: schedule, slot: slot, now: slot, keys: nil, progress: [:])
        #expect(task.deadline == iso("2026-06-10T22:30:00Z"))  // 00:30 CEST on the 11th
        #expect(task.slot == slot)
        #expect(task.configVersion == 7)
        // Emitted late (catching up): a whole window from now.
        let late = TaskFactory(plan: plan).scheduled(meter: 0, schedule: schedule, slot: slot, now: slot.addingTimeInterval(4000), keys: nil, progress: [:])
        #expect(late.deadline == slot.addingTimeInterval(4000 + 3600))
        #expect(late.taskID == task.taskID)
        // At 00:15 the window of the 23:30 slot is still open: the IMS is expected to hold data
        // up to the slot before it.
        #expect(GapPlanner.expectedUntil(cron: schedule.cron, window: schedule.window, now: iso("2026-06-10T22:15:00Z")) == iso("2026-06-09T21:30:00Z"))
        #expect(GapPlanner.expectedUntil(cron: schedule.cron, window: schedule.window, now: iso("2026-06-10T22:31:00Z")) == slot)
    }

    @Test("jitter: every meter's offset is inside the window, the same in every slot and every build, and spread out")
    func jitterInsideWindowAndStable() throws {
        let plan = FleetPlan(document: try schedulerDocument(meters: 500, windowMinutes: 10, jitterSeconds: 3600), version: 1)
        let schedule = try #require(plan.schedules["s"])
        let entries = SlotPlanner.entries(for: schedule, plan: plan)
        #expect(entries.count == 500)
        #expect(entries.allSatisfy { $0.offset >= 0 && $0.offset <= 0.9 * 600 })
        let rebuilt = SlotPlanner.entries(for: schedule, plan: FleetPlan(document: try schedulerDocument(meters: 500, windowMinutes: 10, jitterSeconds: 3600), version: 2))
        #expect(rebuilt == entries)
        #expect(Set(entries.map(\.offset)).count > 400)
        // Without clamping (jitter shorter than the window) offsets stay below the jitter.
        let short = FleetPlan(document: try schedulerDocument(meters: 200, windowMinutes: 60, jitterSeconds: 120), version: 1)
        let shortEntries = SlotPlanner.entries(for: try #require(short.schedules["s"]), plan: short)
        #expect(shortEntries.allSatisfy { $0.offset < 120 })
        let mean = shortEntries.map(\.offset).reduce(0, +) / Double(shortEntries.count)
        #expect(mean > 40 && mean < 80)
        #expect(SlotPlanner.jitter(schedule: "s", meter: "M00001", seconds: 120) == SlotPlanner.jitter(schedule: "s", meter: "M00001", seconds: 120))
        #expect(SlotPlanner.jitter(schedule: "s", meter: "M00001", seconds: 0) == 0)
    }

    @Test("per-segment pacing: the k-th meter of a segment paced at 2 connections/s starts no earlier than k/2 s")
    func segmentPacing() throws {
        let plan = FleetPlan(document: try schedulerDocument(meters: 40, segmentRate: 2, segments: 2), version: 1)
        let entries = SlotPlanner.entries(for: try #require(plan.schedules["s"]), plan: plan)
        for segment in ["cell-0", "cell-1"] {
            let offsets = entries.filter { plan.meters[$0.meter].access.networkSegment == segment }.map(\.offset).sorted()
            #expect(offsets.count == 20)
            for (rank, offset) in offsets.enumerated() { #expect(offset >= Double(rank) / 2) }
        }
        #expect(entries.map(\.offset) == entries.map(\.offset).sorted())
    }

    @Test("task ids are deterministic UUIDv8s of what the task serves")
    func deterministicIDs() {
        let slot = iso("2026-12-05T10:00:00Z")
        let a = TaskIdentity.scheduled(schedule: "s", slot: slot, meter: "M1")
        #expect(a == TaskIdentity.scheduled(schedule: "s", slot: slot, meter: "M1"))
        #expect(a != TaskIdentity.scheduled(schedule: "s", slot: slot.addingTimeInterval(60), meter: "M1"))
        #expect(a != TaskIdentity.scheduled(schedule: "s", slot: slot, meter: "M2"))
        #expect(a.uuidString.lowercased().dropFirst(14).first == "8")
        let command = UUID()
        #expect(TaskIdentity.command(command) == TaskIdentity.command(command))
        #expect(TaskIdentity.gap(meter: "M1", profile: "p", from: slot, to: slot, attempt: 1) != TaskIdentity.gap(meter: "M1", profile: "p", from: slot, to: slot, attempt: 2))
    }

    @Test("gap pieces: the hole between confirmed and expected in pieces of at most a day, at most three, none older than the maximum age")
    func gapPieces() {
        let now = iso("2026-12-05T12:00:00Z")
        var limits = GapPlanner.Limits()
        let threeDays = GapPlanner.pieces(confirmed: iso("2026-12-02T11:00:00Z"), expected: iso("2026-12-05T11:00:00Z"), now: now, limits: limits)
        #expect(threeDays == [
            GapPlanner.Piece(from: iso("2026-12-02T11:00:00Z"), to: iso("2026-12-03T11:00:00Z")),
            GapPlanner.Piece(from: iso("2026-12-03T11:00:00Z"), to: iso("2026-12-04T11:00:00Z")),
            GapPlanner.Piece(from: iso("2026-12-04T11:00:00Z"), to: iso("2026-12-05T11:00:00Z")),
        ])
        #expect(GapPlanner.pieces(confirmed: iso("2026-12-05T10:30:00Z"), expected: iso("2026-12-05T11:00:00Z"), now: now, limits: limits).isEmpty)
        #expect(GapPlanner.pieces(confirmed: iso("2026-12-05T11:00:00Z"), expected: iso("2026-12-05T11:00:00Z"), now: now, limits: limits).isEmpty)
        limits.maximumAge = 36 * 3600
        let aged = GapPlanner.pieces(confirmed: iso("2026-11-01T00:00:00Z"), expected: iso("2026-12-05T11:00:00Z"), now: now, limits: limits)
        #expect(aged.first?.from == iso("2026-12-04T00:00:00Z"))
        #expect(aged.last?.to == iso("2026-12-05T11:00:00Z"))
        #expect(aged.count == 2)
    }

    @Test("secrets: a sealed password becomes a wrapped secret the collectors' master key opens; another master key is refused")
    func keyRewrapping() throws {
        let master = try MasterKey(id: "k1", hex: String(repeating: "07", count: 16))
        let box = try master.seal(Array("12345678".utf8), context: "M1/password")
        let sealed = ConfigurationDocument.Meter.Keys(password: .sealed(masterKeyID: "k1", box: Data(box).base64EncodedString()))
        let keys = try #require(try KeyRewrapper(masterKeys: MasterKeyRing(current: master)).taskKeys(meterID: "M1", sealed: sealed))
        let wrapped = try #require(keys.password)
        #expect(wrapped.masterKeyID == "k1")
        #expect(try WrappedDLMSSecret(masterKeyID: "k1", wrapped: try #require(Hex.decode(wrapped.wrapped))).unwrap(with: master).bytes == Array("12345678".utf8))
        // Deterministic: the same task bytes when emitted again.
        #expect(try KeyRewrapper(masterKeys: MasterKeyRing(current: master)).taskKeys(meterID: "M1", sealed: sealed) == keys)
        // Bound to the meter: the same box under another meter's name does not open.
        #expect(throws: SchedulerError.self) { try KeyRewrapper(masterKeys: MasterKeyRing(current: master)).taskKeys(meterID: "M2", sealed: sealed) }
        #expect(throws: SchedulerError.self) { try KeyRewrapper(masterKeys: nil).taskKeys(meterID: "M1", sealed: sealed) }
        let other = try MasterKey(id: "k2", hex: String(repeating: "08", count: 16))
        #expect(throws: SchedulerError.self) { try KeyRewrapper(masterKeys: MasterKeyRing(current: other)).taskKeys(meterID: "M1", sealed: sealed) }
        // During a rotation (k2 current, k1 previous): the k1 box opens, the task carries it wrapped under k2.
        let rotating = try #require(try KeyRewrapper(masterKeys: MasterKeyRing(current: other, previous: [master])).taskKeys(meterID: "M1", sealed: sealed)?.password)
        #expect(rotating.masterKeyID == "k2")
        #expect(try WrappedDLMSSecret(masterKeyID: "k2", wrapped: try #require(Hex.decode(rotating.wrapped))).unwrap(with: other).bytes == Array("12345678".utf8))
    }
}
