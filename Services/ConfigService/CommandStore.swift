import Contracts
import Foundation
import Logging
import Persistence
import PostgresNIO

/// On-demand commands in `commands` (DESIGN.md §7): accepted here, dispatched by the scheduler,
/// finished by the uploader from the collector's result. A retried `POST` with the same
/// idempotency key finds its command instead of making a second one. Disconnects and reconnects
/// are guarded: at most `switchingLimitPerHour` an hour, and above `approvalThreshold` an hour
/// each needs a second person's approval before it is dispatched.
struct CommandStore: Sendable {
    struct Guard: Sendable, Hashable {
        var switchingLimitPerHour = 1_000
        var approvalThreshold = 100
        /// A command's deadline when the request names none.
        var defaultDeadline: Duration = .seconds(3600)
    }

    /// `pg_advisory_xact_lock` key of the switching guard ("HESSW").
    static let switchingLock: Int64 = 0x48_4553_5357

    let database: DatabaseService
    let guardrails: Guard
    let logger: Logger

    static let columns = """
        id::text, params::text, state, requires_approval, requested_by, approved_by, deadline, created_at, updated_at,
        dispatched_at, finished_at, result::text, error
        """
    typealias Row = (String, String, String, Bool, String, String?, Date, Date, Date, Date?, Date?, String?, String?)

    /// Accepts a command (or finds the one made with the same `requestKey`).
    /// - Returns: the command, and whether this call made it.
    func create(_ request: CommandRequest, requestKey: String?, by actor: String, now: Date = Date()) async throws -> (CommandView, created: Bool) {
        let problems = request.problems(now: now)
        guard problems.isEmpty else { throw ConfigServiceError.invalidDocument(problems) }
        let params = String(decoding: try ContractCoder.makeEncoder().encode(request), as: UTF8.self)
        let deadline = request.deadline ?? now.addingTimeInterval(Double(guardrails.defaultDeadline.components.seconds))
        return try await database.withTransaction { connection in
            if let requestKey, let existing = try await find(requestKey: requestKey, on: connection) {
                let encoder = ContractCoder.makeEncoder()
                guard try encoder.encode(existing.request) == (try encoder.encode(request)) else {
                    throw ConfigServiceError.conflict("the idempotency key '\(requestKey)' was used for a different command (\(existing.id))")
                }
                return (existing, false)
            }
            var known = false
            for try await _ in try await connection.query("SELECT 1 FROM meters WHERE id = \(request.meterID)", logger: logger) { known = true }
            guard known else {
                throw ConfigServiceError.invalidDocument([ConfigurationProblem(pointer: "/meterID", detail: "meter '\(request.meterID)' is not in the active configuration")])
            }
            var requiresApproval = false
            if request.kind == .disconnect || request.kind == .reconnect {
                try await connection.query("SELECT pg_advisory_xact_lock(\(Self.switchingLock))", logger: logger)
                var recent = 0
                let rows = try await connection.query("""
                    SELECT count(*)::bigint FROM commands WHERE kind IN ('disconnect', 'reconnect') AND created_at > now() - interval '1 hour'
                    """, logger: logger)
                for try await count in rows.decode(Int.self) { recent = count }
                guard recent < guardrails.switchingLimitPerHour else {
                    throw ConfigServiceError.limitReached(
                        "\(recent) disconnects and reconnects in the last hour: the limit is \(guardrails.switchingLimitPerHour) an hour; try later")
                }
                requiresApproval = recent >= guardrails.approvalThreshold
            }
            let rows = try await connection.query("""
                INSERT INTO commands (request_key, kind, meter_id, params, requires_approval, requested_by, deadline)
                VALUES (\(requestKey), \(request.kind.rawValue), \(request.meterID), \(params)::jsonb, \(requiresApproval), \(actor), \(deadline))
                ON CONFLICT (request_key) DO NOTHING
                RETURNING \(unescaped: Self.columns)
                """, logger: logger)
            var made: CommandView?
            for try await row in rows.decode(Row.self) { made = try Self.view(row) }
            guard let made else {
                // A concurrent retry with the same key won the insert: its command is this one.
                guard let requestKey, let existing = try await find(requestKey: requestKey, on: connection) else {
                    throw ConfigServiceError.storeFailed("the command was neither stored nor found")
                }
                return (existing, false)
            }
            try await AuditLog.append(actor: actor, action: "command.accepted", subject: "command/\(made.id)", details: [
                "kind": request.kind.rawValue, "meter": request.meterID, "requiresApproval": "\(requiresApproval)",
            ], on: connection, logger: logger)
            return (made, true)
        }
    }

    func get(_ id: UUID) async throws -> CommandView {
        let found = try await database.withConnection { connection in
            var view: CommandView?
            let rows = try await connection.query("SELECT \(unescaped: Self.columns) FROM commands WHERE id = \(id)", logger: logger)
            for try await row in rows.decode(Row.self) { view = try Self.view(row) }
            return view
        }
        guard let found else { throw ConfigServiceError.notFound("there is no command \(id.uuidString.lowercased())") }
        return found
    }

    func list(meterID: String?, state: String?, kind: String?, limit: Int) async throws -> [CommandView] {
        try await database.withConnection { connection in
            let rows = try await connection.query("""
                SELECT \(unescaped: Self.columns) FROM commands
                WHERE (\(meterID)::text IS NULL OR meter_id = \(meterID)) AND (\(state)::text IS NULL OR state = \(state))
                  AND (\(kind)::text IS NULL OR kind = \(kind))
                ORDER BY created_at DESC LIMIT \(limit)
                """, logger: logger)
            var views: [CommandView] = []
            for try await row in rows.decode(Row.self) { views.append(try Self.view(row)) }
            return views
        }
    }

    /// A second person approves a guarded command.
    func approve(_ id: UUID, by actor: String) async throws -> CommandView {
        try await database.withTransaction { connection in
            let current = try await locked(id, on: connection)
            guard current.requiresApproval, current.approvedBy == nil else {
                throw ConfigServiceError.conflict("command \(current.id) does not wait for an approval")
            }
            guard current.state == "accepted" else { throw ConfigServiceError.conflict("command \(current.id) is \(current.state); it cannot be approved") }
            guard current.requestedBy != actor else {
                throw ConfigServiceError.conflict("command \(current.id) needs a second person: '\(actor)' requested it")
            }
            try await connection.query("""
                UPDATE commands SET approved_by = \(actor), approved_at = now(), updated_at = now() WHERE id = \(id)
                """, logger: logger)
            try await AuditLog.append(actor: actor, action: "command.approved", subject: "command/\(current.id)", on: connection, logger: logger)
            return try await locked(id, on: connection)
        }
    }

    /// Cancels a command that has not been dispatched yet.
    func cancel(_ id: UUID, by actor: String) async throws -> CommandView {
        try await database.withTransaction { connection in
            let current = try await locked(id, on: connection)
            guard current.state == "accepted" else {
                throw ConfigServiceError.conflict("command \(current.id) is \(current.state): only an accepted command can be cancelled")
            }
            try await connection.query("""
                UPDATE commands SET state = 'cancelled', finished_at = now(), updated_at = now(), error = \("cancelled by \(actor)") WHERE id = \(id)
                """, logger: logger)
            try await AuditLog.append(actor: actor, action: "command.cancelled", subject: "command/\(current.id)", on: connection, logger: logger)
            return try await locked(id, on: connection)
        }
    }

    /// Start-up repair: accepted commands whose deadline passed expire; dispatched or running
    /// ones whose deadline passed an hour ago (no outcome will come any more) expire too.
    @discardableResult
    func expireStale() async throws -> Int {
        try await database.withTransaction { connection in
            let rows = try await connection.query("""
                UPDATE commands SET state = 'expired', finished_at = now(), updated_at = now(),
                       error = CASE WHEN state = 'accepted' THEN 'the deadline passed before it was dispatched'
                                    ELSE 'no outcome was reported before the deadline' END
                WHERE (state = 'accepted' AND deadline < now())
                   OR (state IN ('dispatched', 'running') AND deadline < now() - interval '1 hour')
                RETURNING id::text
                """, logger: logger)
            var expired: [String] = []
            for try await id in rows.decode(String.self) { expired.append(id) }
            for id in expired { try await AuditLog.append(actor: "config-service", action: "command.expired", subject: "command/\(id)", on: connection, logger: logger) }
            return expired.count
        }
    }

    // MARK: - Helpers

    private func find(requestKey: String, on connection: PostgresConnection) async throws -> CommandView? {
        let rows = try await connection.query("SELECT \(unescaped: Self.columns) FROM commands WHERE request_key = \(requestKey)", logger: logger)
        for try await row in rows.decode(Row.self) { return try Self.view(row) }
        return nil
    }

    private func locked(_ id: UUID, on connection: PostgresConnection) async throws -> CommandView {
        let rows = try await connection.query("SELECT \(unescaped: Self.columns) FROM commands WHERE id = \(id) FOR UPDATE", logger: logger)
        for try await row in rows.decode(Row.self) { return try Self.view(row) }
        throw ConfigServiceError.notFound("there is no command \(id.uuidString.lowercased())")
    }

    static func view(_ row: Row) throws -> CommandView {
        let request = try ContractCoder.makeDecoder().decode(CommandRequest.self, from: Data(row.1.utf8))
        return CommandView(id: row.0, request: request, state: row.2, requiresApproval: row.3, requestedBy: row.4, approvedBy: row.5,
                           deadline: row.6, createdAt: row.7, updatedAt: row.8, dispatchedAt: row.9, finishedAt: row.10, result: row.11, error: row.12)
    }
}
