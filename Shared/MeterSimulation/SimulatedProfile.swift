import COSEM
import NIOCore

/// The profiles (class 7) a simulated meter has. Their buffers are virtual: an entry is computed
/// from its capture time when it is read, so a meter stores no history.
enum SimulatedProfile: Sendable, CaseIterable {
    case load, daily, events

    static let clockColumn = CaptureObjectDefinition(classID: .clock, logicalName: .clock, attributeIndex: 2)
    static let statusObject = OBISCode(0, 0, 96, 10, 1, 255)
    static let eventCodeObject = OBISCode(0, 0, 96, 11, 0, 255)
    /// How many days back the virtual buffers reach.
    static let retentionDays: Int64 = 60

    var obis: OBISCode {
        switch self {
        case .load: OBISCode(1, 0, 99, 1, 0, 255)
        case .daily: OBISCode(1, 0, 98, 1, 0, 255)
        case .events: OBISCode(0, 0, 99, 98, 0, 255)
        }
    }

    var captureObjects: [CaptureObjectDefinition] {
        func register(_ r: EnergyRegister) -> CaptureObjectDefinition { CaptureObjectDefinition(classID: .register, logicalName: r.obis, attributeIndex: 2) }
        switch self {
        case .load:
            return [Self.clockColumn, register(.importTotal), register(.exportTotal),
                    CaptureObjectDefinition(classID: .data, logicalName: Self.statusObject, attributeIndex: 2)]
        case .daily:
            return [Self.clockColumn, register(.importTotal), register(.importTariff1), register(.importTariff2), register(.exportTotal)]
        case .events:
            return [Self.clockColumn, CaptureObjectDefinition(classID: .data, logicalName: Self.eventCodeObject, attributeIndex: 2)]
        }
    }

    /// capture_period in seconds (0 for the event log, which captures asynchronously).
    var capturePeriod: Int64 {
        switch self {
        case .load: EnergyModel.interval
        case .daily: 86_400
        case .events: 0
        }
    }

    /// profile_entries: the buffer's capacity.
    var profileEntries: Int {
        switch self {
        case .load: Int(Self.retentionDays * 86_400 / EnergyModel.interval)   // 5760
        case .daily: Int(Self.retentionDays)
        case .events: 2 * Int(Self.retentionDays)
        }
    }

    /// The entries the buffer holds at meter time `now` (unix seconds), oldest first.
    func entries(model: EnergyModel, now: Int64) -> ProfileEntries {
        switch self {
        case .load, .daily:
            let last = now.floorDivided(by: capturePeriod)
            return .regular(first: last - Int64(profileEntries) + 1, count: profileEntries, period: capturePeriod)
        case .events:
            let today = now.floorDivided(by: 86_400)
            var list: [ProfileEntries.Event] = []
            for day in (today - Self.retentionDays + 1)...today {
                for event in Self.events(model: model, day: day) where event.time <= now && event.time > now - Self.retentionDays * 86_400 {
                    list.append(event)
                }
            }
            return .listed(list)
        }
    }

    /// The deterministic events of one day: on about one day in five a power failure
    /// (event 1, power down) and its restoration (event 2, power up) some minutes later.
    static func events(model: EnergyModel, day: Int64) -> [ProfileEntries.Event] {
        let h = model.hash(day, 0xE7)
        guard h % 5 == 0 else { return [] }
        let down = day * 86_400 + Int64((h >> 8) % 85_000)
        let up = down + 60 + Int64((h >> 32) % 600)
        return [ProfileEntries.Event(time: down, code: 1), ProfileEntries.Event(time: up, code: 2)]
    }

    /// All columns of the entry captured at `time`.
    func row(model: EnergyModel, time: Int64, code: UInt8 = 0) -> [DLMSData] {
        let clock = DLMSData.octetString(dateTime: CosemDateTime(unixTime: time))
        func register(_ r: EnergyRegister) -> DLMSData { .uint32(model.value(r, at: time)) }
        switch self {
        case .load: return [clock, register(.importTotal), register(.exportTotal), .uint8(0)]
        case .daily: return [clock, register(.importTotal), register(.importTariff1), register(.importTariff2), register(.exportTotal)]
        case .events: return [clock, .uint8(code)]
        }
    }
}

/// The entries of a virtual buffer: evenly spaced capture times, or a short explicit list.
enum ProfileEntries: Sendable {
    struct Event: Sendable, Hashable {
        var time: Int64
        var code: UInt8
    }

    /// Capture times `(first + i) · period` for `i` in `0..<count`.
    case regular(first: Int64, count: Int, period: Int64)
    case listed([Event])

    var count: Int {
        switch self {
        case .regular(_, let count, _): count
        case .listed(let events): events.count
        }
    }

    func time(at index: Int) -> Int64 {
        switch self {
        case .regular(let first, _, let period): (first + Int64(index)) * period
        case .listed(let events): events[index].time
        }
    }

    func code(at index: Int) -> UInt8 {
        if case .listed(let events) = self { return events[index].code }
        return 0
    }

    /// The indices whose capture time lies in `from...to`.
    func indices(from: Int64, to: Int64) -> Range<Int> {
        guard from <= to else { return 0..<0 }
        switch self {
        case .regular(let first, let count, let period):
            // Clamp to the window first: the bounds may be ±Int64.max (no bound).
            let from = max(from, first * period), to = min(to, (first + Int64(count)) * period)
            guard from <= to else { return 0..<0 }
            let lo = max(0, from.ceilDivided(by: period) - first)
            let hi = min(Int64(count), to.floorDivided(by: period) - first + 1)
            return lo < hi ? Int(lo)..<Int(hi) : 0..<0
        case .listed(let events):
            let lo = events.firstIndex { $0.time >= from } ?? events.count
            let hi = events.lastIndex { $0.time <= to }.map { $0 + 1 } ?? 0
            return lo < hi ? lo..<hi : 0..<0
        }
    }
}

/// A selection of a virtual buffer (entries and columns) that encodes its rows on demand, so
/// that a block transfer of a long profile never holds the whole encoding.
struct ProfileRows: Sendable {
    let profile: SimulatedProfile
    let model: EnergyModel
    let entries: ProfileEntries
    let rows: Range<Int>
    /// 0-based column indices, in order.
    let columns: [Int]

    var count: Int { rows.count }

    func row(_ index: Int) -> DLMSData {
        let all = profile.row(model: model, time: entries.time(at: index), code: entries.code(at: index))
        return .structure(DLMSDataList(columns.count == all.count ? all : columns.map { all[$0] }))
    }

    /// The whole selection as one value (used for small reads and GET-with-list).
    var data: DLMSData { .array(DLMSDataList(rows.map(row))) }
}

extension Int64 {
    func floorDivided(by d: Int64) -> Int64 { self >= 0 ? self / d : -((-self + d - 1) / d) }
    func ceilDivided(by d: Int64) -> Int64 { -((-self).floorDivided(by: d)) }
}
