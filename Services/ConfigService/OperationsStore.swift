import Contracts
import Foundation
import Logging
import Persistence
import PostgresNIO

/// What operators ask about meters and regions (`hesctl meters status`, `hesctl regions`), from
/// the read models, the ledger, `task_outcomes` and `meter_progress`.
struct OperationsStore: Sendable {
    let database: DatabaseService
    let logger: Logger

    func meterStatus(_ meterID: String) async throws -> MeterStatusView? {
        try await database.withConnection { connection in
            var view: MeterStatusView?
            for try await (region, line, template, protocolName) in try await connection.query("""
                SELECT l.region_id, m.line_id, m.template_id, m.protocol FROM meters m JOIN lines l ON l.id = m.line_id WHERE m.id = \(meterID)
                """, logger: logger).decode((String, String, String?, String).self) {
                view = MeterStatusView(meterID: meterID, region: region, lineID: line, template: template, protocolName: protocolName,
                                       recentOutcomes: [], progress: [], lastDispatchedAt: nil, openCommands: 0)
            }
            guard var view else { return nil }
            for try await (task, command, outcome, failure, readings, finished) in try await connection.query("""
                SELECT task_id::text, command_id::text, outcome, failure_code, readings, finished_at FROM task_outcomes
                WHERE meter_id = \(meterID) ORDER BY finished_at DESC LIMIT 10
                """, logger: logger).decode((String, String?, String, String?, Int, Date).self) {
                view.recentOutcomes.append(.init(taskID: task, commandID: command, outcome: outcome, failureCode: failure, readings: readings, finishedAt: finished))
            }
            for try await (profile, until) in try await connection.query("""
                SELECT profile_obis, confirmed_until FROM meter_progress WHERE meter_id = \(meterID) ORDER BY profile_obis
                """, logger: logger).decode((String, Date).self) {
                view.progress.append(.init(profile: profile, confirmedUntil: until))
            }
            for try await (last, open) in try await connection.query("""
                SELECT (SELECT max(dispatched_at) FROM dispatched_tasks WHERE meter_id = \(meterID)),
                       (SELECT count(*) FROM commands WHERE meter_id = \(meterID) AND state IN ('accepted', 'dispatched', 'running'))::bigint
                """, logger: logger).decode((Date?, Int).self) {
                view.lastDispatchedAt = last
                view.openCommands = open
            }
            return view
        }
    }

    func regionStatus() async throws -> [RegionStatusView] {
        try await database.withConnection { connection in
            var views: [RegionStatusView] = []
            for try await row in try await connection.query("""
                SELECT r.id,
                       (SELECT count(*) FROM lines l WHERE l.region_id = r.id)::bigint,
                       (SELECT count(*) FROM meters m JOIN lines l ON l.id = m.line_id WHERE l.region_id = r.id)::bigint,
                       (SELECT count(*) FROM dispatched_tasks d WHERE d.region_id = r.id AND d.dispatched_at > now() - interval '1 hour')::bigint,
                       (SELECT count(*) FROM task_outcomes o WHERE o.region_id = r.id AND o.outcome = 'succeeded' AND o.finished_at > now() - interval '1 hour')::bigint,
                       (SELECT count(*) FROM task_outcomes o WHERE o.region_id = r.id AND o.outcome <> 'succeeded' AND o.finished_at > now() - interval '1 hour')::bigint,
                       (SELECT count(*) FROM dispatched_tasks d LEFT JOIN task_outcomes o ON o.task_id = d.task_id
                         WHERE d.region_id = r.id AND d.dispatched_at > now() - interval '6 hours' AND o.task_id IS NULL)::bigint,
                       (SELECT max(confirmed_at) FROM task_outcomes o WHERE o.region_id = r.id)
                FROM regions r ORDER BY r.id
                """, logger: logger).decode((String, Int, Int, Int, Int, Int, Int, Date?).self) {
                views.append(RegionStatusView(region: row.0, lines: row.1, meters: row.2, dispatchedLastHour: row.3, succeededLastHour: row.4,
                                              failedLastHour: row.5, awaitingResults: row.6, lastConfirmation: row.7))
            }
            return views
        }
    }
}
