import Contracts
import Foundation
import Logging
import Observability
import Persistence
import PostgresNIO

/// Writes what the IMS confirmed into the head-end's store, after the confirmation and before
/// the offsets move: `meter_progress` (the latest confirmed capture time per meter and OBIS
/// code, never moved back), command outcomes (`commands`, a finished command stays finished),
/// and an `audit_log` row per permanent rejection.
struct ProgressRecorder: Sendable {
    let database: DatabaseService
    let logger: Logger

    /// One confirmed request's effects.
    struct Confirmation: Sendable {
        /// (meter, OBIS) → latest capture time confirmed.
        var progress: [ProgressKey: Date] = [:]
        var results: [TaskResult] = []
        var rejections: [(meterID: String, itemID: String, code: String, reason: String)] = []

        var isEmpty: Bool { progress.isEmpty && results.isEmpty && rejections.isEmpty }
    }

    struct ProgressKey: Hashable, Sendable {
        var meterID: String
        var obis: String
    }

    func record(_ confirmation: Confirmation) async throws {
        guard !confirmation.isEmpty else { return }
        try await database.withTransaction { connection in
            if !confirmation.progress.isEmpty {
                let entries = Array(confirmation.progress)
                try await connection.query("""
                    INSERT INTO meter_progress (meter_id, profile_obis, confirmed_until, updated_at)
                    SELECT m, o, t, now() FROM unnest(\(entries.map(\.key.meterID))::text[], \(entries.map(\.key.obis))::text[], \(entries.map(\.value))::timestamptz[]) AS p (m, o, t)
                    ON CONFLICT (meter_id, profile_obis) DO UPDATE
                    SET confirmed_until = GREATEST(meter_progress.confirmed_until, EXCLUDED.confirmed_until), updated_at = now()
                    """, logger: logger)
            }
            if !confirmation.results.isEmpty {
                // Every result the IMS confirmed (task ids are UUIDs; one that is not has no row).
                let results = confirmation.results.filter { UUID(uuidString: $0.taskID) != nil }
                try await connection.query("""
                    INSERT INTO task_outcomes (task_id, region_id, line_id, meter_id, command_id, outcome, failure_code, readings, started_at, finished_at)
                    SELECT t::uuid, r, l, m, NULLIF(c, '')::uuid, o, NULLIF(f, ''), n, s, e
                    FROM unnest(\(results.map(\.taskID))::text[], \(results.map(\.region))::text[], \(results.map(\.lineID))::text[],
                                \(results.map(\.meterID))::text[], \(results.map { $0.commandID.flatMap { UUID(uuidString: $0) }?.uuidString ?? "" })::text[],
                                \(results.map(\.outcome.rawValue))::text[], \(results.map { $0.failure?.code ?? "" })::text[],
                                \(results.map(\.readingCount))::int8[], \(results.map(\.startedAt))::timestamptz[], \(results.map(\.finishedAt))::timestamptz[])
                         AS x (t, r, l, m, c, o, f, n, s, e)
                    ON CONFLICT (task_id) DO NOTHING
                    """, logger: logger)
            }
            for result in confirmation.results {
                guard let commandID = result.commandID else { continue }
                guard let id = UUID(uuidString: commandID) else {
                    logger.warning("a result names a command id that is not a UUID; no command row to update", metadata: [
                        LogMetadataKey.taskID: "\(result.taskID)", LogMetadataKey.commandID: "\(commandID)",
                    ])
                    continue
                }
                let state: String = switch result.outcome {
                case .succeeded: "succeeded"
                case .expired: "expired"
                case .partial, .failed: "failed"
                }
                let error = result.failure.map { "\($0.code): \($0.reason)" }
                let details = String(decoding: try ContractCoder.encode(result), as: UTF8.self)
                try await connection.query("""
                    UPDATE commands SET state = \(state), result = \(details)::jsonb, error = \(error), finished_at = now(), updated_at = now()
                    WHERE id = \(id) AND state NOT IN ('succeeded', 'failed', 'expired', 'cancelled')
                    """, logger: logger)
            }
            for rejection in confirmation.rejections {
                let details = String(decoding: try JSONEncoder().encode(["item": rejection.itemID, "code": rejection.code, "reason": rejection.reason]), as: UTF8.self)
                try await connection.query("""
                    INSERT INTO audit_log (actor, action, subject, details) VALUES ('uploader', 'ims.rejected', \("meter:\(rejection.meterID)"), \(details)::jsonb)
                    """, logger: logger)
            }
        }
    }
}
