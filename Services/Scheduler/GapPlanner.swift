import Contracts
import Foundation

/// Finds holes between what the IMS confirmed (`meter_progress`) and what the schedules should
/// have produced by now, and cuts them into range reads. Pure.
enum GapPlanner {
    struct Piece: Hashable, Sendable, CustomStringConvertible {
        var from: Date
        var to: Date
        var description: String { "\(ISO8601DateFormatter().string(from: from))…\(ISO8601DateFormatter().string(from: to))" }
    }

    struct Limits: Sendable, Hashable {
        /// Longest range of one read. Default 24 h.
        var pieceLength: TimeInterval = 24 * 3600
        /// Pieces per meter and profile in one run. Default 3.
        var piecesPerMeter = 3
        /// Holes older than this are not recovered (the meters' own buffers are finite). Default 10 days.
        var maximumAge: TimeInterval = 10 * 24 * 3600
        /// A shortfall up to this long is not a hole (the last interval may not be captured yet). Default 1 h.
        var tolerance: TimeInterval = 3600
    }

    /// The schedule's latest slot whose window has closed: by then its task has run, so the IMS
    /// should hold data up to it. `nil` when no slot closed within the maximum age.
    static func expectedUntil(cron: CronSchedule, window: TimeInterval, now: Date) -> Date? {
        cron.previousFire(atOrBefore: now.addingTimeInterval(-window))
    }

    /// The pieces that recover (confirmed, expected], oldest first, at most `limits.piecesPerMeter`,
    /// none older than `now - limits.maximumAge`. Empty when the shortfall is within tolerance.
    static func pieces(confirmed: Date, expected: Date, now: Date, limits: Limits) -> [Piece] {
        guard expected.timeIntervalSince(confirmed) > limits.tolerance else { return [] }
        var start = max(confirmed, now.addingTimeInterval(-limits.maximumAge))
        var pieces: [Piece] = []
        while start < expected, pieces.count < limits.piecesPerMeter {
            let end = min(start.addingTimeInterval(limits.pieceLength), expected)
            pieces.append(Piece(from: start, to: end))
            start = end
        }
        return pieces
    }
}
