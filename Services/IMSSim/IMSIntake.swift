import Contracts
import Foundation

/// Decides, item by item, what an IMS accepts from a request (pure: no store, no clock of its
/// own). An item is rejected permanently when it could not be read, names a meter the IMS does
/// not know (the fault plan's `rejectMeters`), or holds readings captured in the future.
struct IMSIntake: Sendable {
    /// Readings captured later than this after `now` are refused.
    static let futureTolerance: TimeInterval = 86_400

    /// What a request's items came to.
    struct Decision<Payload: Sendable>: Sendable {
        var accepted: [Payload] = []
        var rejected: [IMSDeliveryReply.Rejection] = []
    }

    var rejectMeters: Set<String>
    var now: Date

    func readings(_ items: [IMSItem<ReadingBatch>]) -> Decision<ReadingBatch> {
        var decision = Decision<ReadingBatch>()
        for (index, item) in items.enumerated() {
            switch item {
            case .invalid(let id, let reason):
                decision.rejected.append(.init(index: index, id: id, code: "item.invalid", reason: reason))
            case .valid(let batch):
                if batch.meterID.isEmpty || batch.batchID.isEmpty {
                    decision.rejected.append(.init(index: index, id: batch.batchID, code: "item.invalid", reason: "a batch needs a batchID and a meterID"))
                } else if rejectMeters.contains(batch.meterID) {
                    decision.rejected.append(.init(index: index, id: batch.batchID, code: "meter.unknown", reason: "meter \(batch.meterID) is not registered at the IMS"))
                } else if let future = batch.readings.first(where: { $0.captureTime.timeIntervalSince(now) > Self.futureTolerance }) {
                    decision.rejected.append(.init(index: index, id: batch.batchID, code: "capture-time.future",
                                                   reason: "\(future.obis) captured at \(ContractDate.format(future.captureTime)), after the IMS's clock (\(ContractDate.format(now)))"))
                } else {
                    decision.accepted.append(batch)
                }
            }
        }
        return decision
    }

    func results(_ items: [IMSItem<TaskResult>]) -> Decision<TaskResult> {
        var decision = Decision<TaskResult>()
        for (index, item) in items.enumerated() {
            switch item {
            case .invalid(let id, let reason):
                decision.rejected.append(.init(index: index, id: id, code: "item.invalid", reason: reason))
            case .valid(let result):
                if result.taskID.isEmpty || result.meterID.isEmpty {
                    decision.rejected.append(.init(index: index, id: result.taskID, code: "item.invalid", reason: "a result needs a taskID and a meterID"))
                } else if rejectMeters.contains(result.meterID) {
                    decision.rejected.append(.init(index: index, id: result.taskID, code: "meter.unknown", reason: "meter \(result.meterID) is not registered at the IMS"))
                } else {
                    decision.accepted.append(result)
                }
            }
        }
        return decision
    }

    /// OK when nothing was rejected, FAILED when everything was, PARTIAL between.
    static func status(accepted: Int, rejected: Int) -> IMSDeliveryReply.Status {
        if rejected == 0 { return .ok }
        return accepted == 0 ? .failed : .partial
    }
}
