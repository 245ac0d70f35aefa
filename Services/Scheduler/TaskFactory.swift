import Contracts
import Foundation

/// Builds the self-contained tasks of DESIGN.md §2 from the plan: scheduled reads, command
/// executions and gap-recovery reads, each with its deterministic id. Pure (the clock and the
/// confirmed progress are arguments).
struct TaskFactory: Sendable {
    let plan: FleetPlan

    /// (meter, profile OBIS) → the latest capture time the IMS confirmed.
    typealias Progress = [ProgressKey: Date]

    struct ProgressKey: Hashable, Sendable {
        var meterID: String
        var obis: String
    }

    /// The scheduled task of `meter` for `slot`: the template's objects, and each profile from
    /// the last confirmed capture (at most `lookbackHours` back) to the slot. On time it expires
    /// at the end of the window; a slot emitted late (catching up after downtime) gets a whole
    /// window from now.
    func scheduled(meter index: Int, schedule: FleetPlan.PlannedSchedule, slot: Date, now: Date, keys: MeterAccess.Keys?, progress: Progress) -> CollectionTask {
        let meter = plan.meters[index]
        var actions: [TaskAction] = []
        if !meter.objects.isEmpty { actions.append(.readObjects(meter.objects)) }
        for profile in meter.profiles {
            var from = slot.addingTimeInterval(-profile.lookbackHours * 3600)
            if let confirmed = progress[ProgressKey(meterID: meter.id, obis: profile.obis)], confirmed > from { from = min(confirmed, slot) }
            actions.append(.readProfile(profile: profile.reference, from: from, to: slot))
        }
        let onTimeDeadline = slot.addingTimeInterval(schedule.window)
        var access = meter.access
        access.keys = keys
        return CollectionTask(
            taskID: TaskIdentity.scheduled(schedule: schedule.schedule.id, slot: slot, meter: meter.id).uuidString.lowercased(),
            origin: .schedule, region: meter.region, lineID: meter.lineID, meterID: meter.id, meter: access,
            configVersion: plan.version, slot: slot, createdAt: now,
            deadline: now < onTimeDeadline ? onTimeDeadline : now.addingTimeInterval(schedule.window),
            actions: actions)
    }

    /// The one task of a command.
    func command(id: UUID, request: CommandRequest, deadline: Date, now: Date, keys: MeterAccess.Keys?) throws -> CollectionTask {
        guard let index = plan.meterIndex[request.meterID] else {
            throw SchedulerError.unknownMeter("meter \(request.meterID) is not in the active configuration (version \(plan.version))")
        }
        let meter = plan.meters[index]
        var access = meter.access
        access.keys = keys
        return CollectionTask(
            taskID: TaskIdentity.command(id).uuidString.lowercased(), origin: .command, region: meter.region, lineID: meter.lineID,
            meterID: meter.id, meter: access, configVersion: plan.version, commandID: id.uuidString.lowercased(),
            createdAt: now, deadline: deadline, actions: request.actions)
    }

    /// A gap-recovery read of one profile range.
    func gap(meter index: Int, profile: ConfigurationDocument.ProfileRead, range: GapPlanner.Piece, attempt: Int64, now: Date,
             deadline: Date, keys: MeterAccess.Keys?) -> CollectionTask {
        let meter = plan.meters[index]
        var access = meter.access
        access.keys = keys
        return CollectionTask(
            taskID: TaskIdentity.gap(meter: meter.id, profile: profile.obis, from: range.from, to: range.to, attempt: attempt).uuidString.lowercased(),
            origin: .gapRecovery, region: meter.region, lineID: meter.lineID, meterID: meter.id, meter: access,
            configVersion: plan.version, createdAt: now, deadline: deadline,
            actions: [.readProfile(profile: profile.reference, from: range.from, to: range.to)])
    }
}
