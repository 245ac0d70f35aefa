import Contracts
import Foundation

/// When each meter of a schedule slot is due: the slot plus a deterministic jitter spread over
/// the schedule's `jitterSeconds` (the same meter gets the same offset in every slot, so its
/// calls are evenly spaced, and two schedulers agree), and, on a network segment with a
/// connection rate, no faster than that rate. Always inside the collection window. Pure.
enum SlotPlanner {
    struct Entry: Sendable, Hashable {
        /// Seconds after the slot.
        var offset: TimeInterval
        var meter: Int
    }

    /// The meters of `schedule` ordered by when they are due in a slot.
    static func entries(for schedule: FleetPlan.PlannedSchedule, plan: FleetPlan) -> [Entry] {
        let window = schedule.window
        // The last moment a meter may be started and still leave a tenth of the window to run.
        let latest = max(0, window * 0.9)
        var entries = schedule.meters.map { index in
            // A jitter longer than the window is spread over the window (not piled up at its end).
            Entry(offset: jitter(schedule: schedule.schedule.id, meter: plan.meters[index].id, seconds: min(schedule.schedule.jitterSeconds, Int(latest))),
                  meter: index)
        }
        // Per-segment pacing: the k-th meter of a paced segment starts no earlier than k / rate.
        var bySegment: [String: [Int]] = [:]
        for (position, entry) in entries.enumerated() {
            let meter = plan.meters[entry.meter]
            guard meter.segmentRate != nil, let segment = meter.access.networkSegment else { continue }
            bySegment[segment, default: []].append(position)
        }
        for positions in bySegment.values {
            let ordered = positions.sorted { (entries[$0].offset, plan.meters[entries[$0].meter].id) < (entries[$1].offset, plan.meters[entries[$1].meter].id) }
            for (rank, position) in ordered.enumerated() {
                guard let rate = plan.meters[entries[position].meter].segmentRate else { continue }
                entries[position].offset = min(max(entries[position].offset, Double(rank) / rate), latest)
            }
        }
        entries.sort { ($0.offset, $0.meter) < ($1.offset, $1.meter) }
        return entries
    }

    /// A stable offset in `0..<seconds` for the meter (FNV-1a of schedule and meter id, in
    /// milliseconds); 0 without jitter.
    static func jitter(schedule: String, meter: String, seconds: Int) -> TimeInterval {
        guard seconds > 0 else { return 0 }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in schedule.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        hash = (hash ^ 0) &* 0x100_0000_01b3
        for byte in meter.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return TimeInterval(hash % UInt64(seconds * 1000)) / 1000
    }
}
