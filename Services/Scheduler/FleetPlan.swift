import Contracts
import Foundation

/// The active configuration as the scheduler plans with it: every meter with its region, line,
/// access (keys still sealed) and what its template reads; every schedule with its parsed cron
/// expression and the meters it covers. Built once per activated version; pure.
struct FleetPlan: Sendable {
    struct PlannedMeter: Sendable {
        var id: String
        var region: String
        var lineID: String
        /// Without keys: ``KeyRewrapper`` adds them when a task is built.
        var access: MeterAccess
        /// The meter's secrets as the configuration stores them (sealed).
        var sealedKeys: ConfigurationDocument.Meter.Keys?
        var objects: [ObjectReference]
        var profiles: [ConfigurationDocument.ProfileRead]
        /// Connections per second allowed into the meter's network segment, if paced.
        var segmentRate: Double?
    }

    struct PlannedSchedule: Sendable {
        var schedule: ConfigurationDocument.Schedule
        var cron: CronSchedule
        /// Indices into ``FleetPlan/meters``, ordered by meter id.
        var meters: [Int]

        var window: TimeInterval { TimeInterval(schedule.windowMinutes * 60) }
    }

    let version: Int64
    let meters: [PlannedMeter]
    let meterIndex: [String: Int]
    let schedules: [String: PlannedSchedule]
    let regions: [String]
    /// Schedules left out because their expression or zone does not parse (the validator
    /// refuses such documents, so this is a configuration written around it).
    let problems: [String]

    init(document: ConfigurationDocument, version: Int64) {
        self.version = version
        let lines = Dictionary(document.lines.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let templates = Dictionary(document.templates.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var segmentRates: [String: Double] = [:]
        for line in document.lines {
            guard let segment = line.networkSegment, let rate = line.segmentConnectionsPerSecond, rate > 0 else { continue }
            segmentRates[segment] = min(segmentRates[segment] ?? rate, rate)
        }
        var meters: [PlannedMeter] = []
        var meterIndex: [String: Int] = [:]
        var bySchedule: [String: [Int]] = [:]
        var problems: [String] = []
        meters.reserveCapacity(document.meters.count)
        for meter in document.meters.sorted(by: { $0.id < $1.id }) {
            guard let line = lines[meter.line], meterIndex[meter.id] == nil else {
                problems.append("meter '\(meter.id)': unknown line '\(meter.line)' or a duplicate id; not scheduled")
                continue
            }
            let template = templates[meter.template]
            let index = meters.count
            meterIndex[meter.id] = index
            meters.append(PlannedMeter(
                id: meter.id, region: line.region, lineID: line.id,
                access: document.access(of: meter, line: line, template: template, keys: nil),
                sealedKeys: meter.keys, objects: template?.objects ?? [], profiles: template?.profiles ?? [],
                segmentRate: line.networkSegment.flatMap { segmentRates[$0] }))
            for scheduleID in Set(template?.schedules ?? []) { bySchedule[scheduleID, default: []].append(index) }
        }
        var schedules: [String: PlannedSchedule] = [:]
        for schedule in document.schedules {
            do {
                let cron = try CronSchedule(schedule.cron, timeZoneIdentifier: schedule.timeZone)
                schedules[schedule.id] = PlannedSchedule(schedule: schedule, cron: cron, meters: bySchedule[schedule.id] ?? [])
            } catch {
                problems.append("schedule '\(schedule.id)': \(error); not scheduled")
            }
        }
        self.meters = meters
        self.meterIndex = meterIndex
        self.schedules = schedules
        self.regions = document.regions.map(\.id)
        self.problems = problems
    }
}
