import Contracts
import Foundation
import Logging
import Persistence
import PostgresNIO

/// What the scheduler reads and writes in PostgreSQL: the active configuration, the ledger of
/// dispatched tasks (`dispatched_tasks`, DESIGN.md §4), confirmed progress (`meter_progress`)
/// and the commands waiting for dispatch.
///
/// The active configuration is read as its document rather than from the read models: the
/// document holds what a task needs and the read models leave out (inline manufacturer
/// profiles, sealed secrets, template objects).
struct SchedulerStore: Sendable {
    /// One row of the ledger.
    struct LedgerEntry: Sendable, Hashable {
        enum Kind: String, Sendable { case scheduled, command, gapRecovery = "gap-recovery" }
        var taskID: UUID
        var kind: Kind
        var region: String
        var lineID: String
        var meterID: String
        var scheduleID: String?
        /// The slot, or the time of emission for commands and gap reads.
        var slot: Date
        var commandID: UUID?
        var profileOBIS: String?
        var rangeStart: Date?
        var rangeEnd: Date?
        var topic: String
    }

    /// A command ready for dispatch: accepted and, when guarded, approved.
    struct OpenCommand: Sendable {
        var id: UUID
        var request: CommandRequest
        var deadline: Date
    }

    let database: DatabaseService
    let logger: Logger

    // MARK: - Configuration

    /// The id of the active configuration version, `nil` before the first activation.
    func activeVersion() async throws -> Int64? {
        try await database.withConnection { connection in
            let rows = try await connection.query("SELECT id FROM config_versions WHERE status = 'active'", logger: logger)
            for try await id in rows.decode(Int64.self) { return id }
            return nil
        }
    }

    /// The active version and its document.
    func activeDocument() async throws -> (version: Int64, document: ConfigurationDocument)? {
        let row = try await database.withConnection { connection -> (Int64, String)? in
            let rows = try await connection.query("SELECT id, document::text FROM config_versions WHERE status = 'active'", logger: logger)
            for try await row in rows.decode((Int64, String).self) { return row }
            return nil
        }
        guard let row else { return nil }
        do {
            return (row.0, try JSONDecoder().decode(ConfigurationDocument.self, from: Data(row.1.utf8)))
        } catch {
            throw SchedulerError.storeFailed("the document of active version \(row.0) does not decode: \(error)")
        }
    }

    // MARK: - Ledger

    /// Which of `ids` the ledger already holds.
    func dispatched(among ids: [UUID]) async throws -> Set<UUID> {
        guard !ids.isEmpty else { return [] }
        return try await database.withConnection { connection in
            let rows = try await connection.query("SELECT task_id FROM dispatched_tasks WHERE task_id = ANY(\(ids)::uuid[])", logger: logger)
            var found = Set<UUID>()
            for try await id in rows.decode(UUID.self) { found.insert(id) }
            return found
        }
    }

    /// Records dispatched tasks; a task already recorded (by the other scheduler) stays as it was.
    /// Commands among them move from `accepted` to `dispatched` in the same transaction.
    func record(_ entries: [LedgerEntry]) async throws {
        guard !entries.isEmpty else { return }
        try await database.withTransaction { connection in
            try await connection.query("""
                INSERT INTO dispatched_tasks (task_id, kind, region_id, line_id, meter_id, schedule_id, slot, command_id,
                                              profile_obis, range_start, range_end, topic)
                SELECT t, k, r, l, m, NULLIF(s, ''), sl, NULLIF(c, '')::uuid, NULLIF(p, ''),
                       CASE WHEN rs = 'NaN' THEN NULL ELSE to_timestamp(rs) END, CASE WHEN re = 'NaN' THEN NULL ELSE to_timestamp(re) END, tp
                FROM unnest(\(entries.map(\.taskID))::uuid[], \(entries.map(\.kind.rawValue))::text[],
                            \(entries.map(\.region))::text[], \(entries.map(\.lineID))::text[], \(entries.map(\.meterID))::text[],
                            \(entries.map { $0.scheduleID ?? "" })::text[], \(entries.map(\.slot))::timestamptz[],
                            \(entries.map { $0.commandID?.uuidString ?? "" })::text[], \(entries.map { $0.profileOBIS ?? "" })::text[],
                            \(entries.map { $0.rangeStart?.timeIntervalSince1970 ?? .nan })::float8[],
                            \(entries.map { $0.rangeEnd?.timeIntervalSince1970 ?? .nan })::float8[],
                            \(entries.map(\.topic))::text[]) AS e (t, k, r, l, m, s, sl, c, p, rs, re, tp)
                ON CONFLICT DO NOTHING
                """, logger: logger)
            let commands = entries.compactMap(\.commandID)
            if !commands.isEmpty {
                try await connection.query("""
                    UPDATE commands SET state = 'dispatched', dispatched_at = now(), updated_at = now(), attempts = attempts + 1
                    WHERE id = ANY(\(commands)::uuid[]) AND state = 'accepted'
                    """, logger: logger)
            }
        }
    }

    // MARK: - Progress and gaps

    /// What the IMS confirmed: (meter, profile) → latest confirmed capture time.
    func progress() async throws -> TaskFactory.Progress {
        try await database.withConnection { connection in
            let rows = try await connection.query("SELECT meter_id, profile_obis, confirmed_until FROM meter_progress", logger: logger)
            var progress: TaskFactory.Progress = [:]
            for try await (meter, obis, until) in rows.decode((String, String, Date).self) {
                progress[TaskFactory.ProgressKey(meterID: meter, obis: obis)] = until
            }
            return progress
        }
    }

    /// Gap reads emitted since `since` (their emission time): "meter|obis|range start" keys, so a
    /// hole one run already asked for is not asked for again until the retry interval passed.
    func recentGapStarts(since: Date) async throws -> Set<String> {
        try await database.withConnection { connection in
            let rows = try await connection.query("""
                SELECT meter_id, profile_obis, range_start FROM dispatched_tasks WHERE kind = 'gap-recovery' AND slot > \(since)
                """, logger: logger)
            var keys = Set<String>()
            for try await (meter, obis, start) in rows.decode((String, String, Date).self) {
                keys.insert(Self.gapKey(meter: meter, obis: obis, start: start))
            }
            return keys
        }
    }

    static func gapKey(meter: String, obis: String, start: Date) -> String {
        "\(meter)|\(obis)|\(Int64(start.timeIntervalSince1970))"
    }

    // MARK: - Commands

    /// Accepted commands that may be dispatched (approved when guarded), oldest first.
    func openCommands(limit: Int) async throws -> [OpenCommand] {
        let rows = try await database.withConnection { connection in
            let rows = try await connection.query("""
                SELECT id, params::text, deadline FROM commands
                WHERE state = 'accepted' AND (NOT requires_approval OR approved_by IS NOT NULL)
                ORDER BY created_at LIMIT \(limit)
                """, logger: logger)
            var found: [(UUID, String, Date?)] = []
            for try await row in rows.decode((UUID, String, Date?).self) { found.append(row) }
            return found
        }
        var commands: [OpenCommand] = []
        let decoder = ContractCoder.makeDecoder()
        for (id, params, deadline) in rows {
            do {
                let request = try decoder.decode(CommandRequest.self, from: Data(params.utf8))
                commands.append(OpenCommand(id: id, request: request, deadline: deadline ?? request.deadline ?? Date.distantFuture))
            } catch {
                try await finish(command: id, state: "failed", reason: "the stored command does not decode: \(error)")
            }
        }
        return commands
    }

    /// Ends a command the scheduler cannot dispatch (`failed`, or `expired` when its deadline passed first).
    func finish(command id: UUID, state: String, reason: String) async throws {
        try await database.withTransaction { connection in
            let rows = try await connection.query("""
                UPDATE commands SET state = \(state), error = \(reason), finished_at = now(), updated_at = now()
                WHERE id = \(id) AND state = 'accepted' RETURNING id
                """, logger: logger)
            var changed = false
            for try await _ in rows.decode(UUID.self) { changed = true }
            guard changed else { return }
            let details = String(decoding: try JSONEncoder().encode(["reason": reason]), as: UTF8.self)
            try await connection.query("""
                INSERT INTO audit_log (actor, action, subject, details)
                VALUES ('scheduler', \("command.\(state)"), \("command/\(id.uuidString.lowercased())"), \(details)::jsonb)
                """, logger: logger)
        }
    }
}
