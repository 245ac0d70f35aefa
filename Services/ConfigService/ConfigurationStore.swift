import Contracts
import Crypto
import Foundation
import Logging
import Persistence
import PostgresNIO

/// A configuration version as the API lists it.
struct VersionSummary: Codable, Sendable, Hashable {
    var id: Int64
    var parentID: Int64?
    var status: String
    var sha256: String
    var comment: String?
    var createdBy: String
    var createdAt: Date
    var activatedAt: Date?
    var regions: Int
    var lines: Int
    var meters: Int
}

/// A version with its document (secrets sealed: never hand it out unredacted).
struct StoredVersion: Sendable {
    var summary: VersionSummary
    var document: ConfigurationDocument
}

/// Configuration versions in PostgreSQL (DESIGN.md §4): immutable documents with their hash,
/// staged → active → superseded. Activating a version rebuilds the read models (`regions`,
/// `lines`, `templates`, `schedules`, `template_schedules`, `meters`, `meter_secrets`) in the
/// same transaction, writes the audit row and sends `NOTIFY hes_config_activated '<id>'`; a
/// failure anywhere changes nothing. Activations are serialised by a transaction-scoped advisory
/// lock, and each checks that the version it was based on is still the active one, so of two
/// concurrent writers one wins and the other gets ``ConfigServiceError/Code/conflict``.
struct ConfigurationStore: Sendable {
    static let notificationChannel = "hes_config_activated"
    /// `pg_advisory_xact_lock` key of activations ("HESCFG").
    static let activationLock: Int64 = 0x4845_5343_4647

    let database: DatabaseService
    let logger: Logger

    // MARK: - Reading

    static let summaryColumns = """
        id, parent_id, status, sha256, comment, created_by, created_at, activated_at,
        COALESCE(jsonb_array_length(document->'regions'), 0), COALESCE(jsonb_array_length(document->'lines'), 0),
        COALESCE(jsonb_array_length(document->'meters'), 0)
        """

    func versions(limit: Int) async throws -> [VersionSummary] {
        try await call("listing versions") {
            try await database.withConnection { connection in
                let rows = try await connection.query(
                    PostgresQuery(unsafeSQL: "SELECT \(Self.summaryColumns) FROM config_versions ORDER BY id DESC LIMIT \(max(1, min(limit, 1000)))"),
                    logger: logger)
                var summaries: [VersionSummary] = []
                for try await row in rows.decode((Int64, Int64?, String, String, String?, String, Date, Date?, Int, Int, Int).self) {
                    summaries.append(Self.summary(row))
                }
                return summaries
            }
        }
    }

    /// The version `id`, or the active one for `nil` (nil when there is none).
    func version(_ id: Int64?) async throws -> StoredVersion? {
        try await call("reading a version") {
            try await database.withConnection { connection in try await Self.version(id, on: connection, logger: logger) }
        }
    }

    static func version(_ id: Int64?, on connection: PostgresConnection, logger: Logger) async throws -> StoredVersion? {
        let condition = id.map { "id = \($0)" } ?? "status = 'active'"
        let rows = try await connection.query(
            PostgresQuery(unsafeSQL: "SELECT \(summaryColumns), document::text FROM config_versions WHERE \(condition)"), logger: logger)
        for try await row in rows.decode((Int64, Int64?, String, String, String?, String, Date, Date?, Int, Int, Int, String).self) {
            let document = try JSONDecoder().decode(ConfigurationDocument.self, from: Data(row.11.utf8))
            return StoredVersion(summary: summary((row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7, row.8, row.9, row.10)), document: document)
        }
        return nil
    }

    /// The version's summary only (not its document), after a write.
    private func writtenSummary(_ id: Int64, on connection: PostgresConnection) async throws -> VersionSummary {
        let rows = try await connection.query(PostgresQuery(unsafeSQL: "SELECT \(Self.summaryColumns) FROM config_versions WHERE id = \(id)"), logger: logger)
        for try await row in rows.decode((Int64, Int64?, String, String, String?, String, Date, Date?, Int, Int, Int).self) { return Self.summary(row) }
        throw ConfigServiceError.storeFailed("version \(id) vanished inside its own transaction")
    }

    private static func summary(_ row: (Int64, Int64?, String, String, String?, String, Date, Date?, Int, Int, Int)) -> VersionSummary {
        VersionSummary(id: row.0, parentID: row.1, status: row.2, sha256: row.3, comment: row.4, createdBy: row.5, createdAt: row.6,
                       activatedAt: row.7, regions: row.8, lines: row.9, meters: row.10)
    }

    // MARK: - Writing

    /// Stores `document` (secrets already sealed) as a new version based on `parent`, and
    /// activates it when `activate` is set.
    /// - Throws: ``ConfigServiceError`` `.conflict` when activating and `parent` is not the
    ///   active version any more.
    func stage(_ document: ConfigurationDocument, parent: Int64?, activate: Bool, actor: String, comment: String?) async throws -> VersionSummary {
        let text = try Self.canonicalJSON(document)
        let hash = SHA256.hash(data: Array(text.utf8)).map { String(format: "%02x", $0) }.joined()
        return try await call("storing a version") {
            try await database.withTransaction { connection in
                if activate { try await lockActivations(on: connection, expectedActive: parent) }
                let rows = try await connection.query("""
                    INSERT INTO config_versions (parent_id, document, sha256, comment, created_by)
                    VALUES (\(parent), \(text)::jsonb, \(hash), \(comment), \(actor)) RETURNING id
                    """, logger: logger)
                var id: Int64 = 0
                for try await value in rows.decode(Int64.self) { id = value }
                try await AuditLog.append(actor: actor, action: "config.staged", subject: "config/\(id)",
                                          details: ["parent": parent.map { "\($0)" } ?? "none", "sha256": hash], on: connection, logger: logger)
                if activate {
                    try await activateLocked(id: id, document: document, actor: actor, action: "config.activated", on: connection)
                }
                return try await writtenSummary(id, on: connection)
            }
        }
    }

    /// Activates the stored version `id`. Unless `force`, its parent must be the active version
    /// (it was built on what is active); `force` (rollback) activates any version.
    func activate(id: Int64, expectedActive: Int64?, force: Bool, actor: String, action: String = "config.activated") async throws -> VersionSummary {
        try await call("activating a version") {
            try await database.withTransaction { connection in
                guard let stored = try await Self.version(id, on: connection, logger: logger) else {
                    throw ConfigServiceError.notFound("there is no configuration version \(id)")
                }
                let active = try await lockActivations(on: connection, expectedActive: expectedActive)
                if stored.summary.status == "active" { return stored.summary }
                if !force, stored.summary.parentID != active {
                    throw ConfigServiceError.conflict(
                        "version \(id) was built on version \(stored.summary.parentID.map { "\($0)" } ?? "none"), but version \(active.map { "\($0)" } ?? "none") is active; stage it again on the active version, or roll back to it explicitly")
                }
                try await activateLocked(id: id, document: stored.document, actor: actor, action: action, on: connection)
                return try await writtenSummary(id, on: connection)
            }
        }
    }

    /// The version active before the current one (the most recently superseded).
    func previousActive() async throws -> Int64? {
        try await call("finding the previous version") {
            try await database.withConnection { connection in
                let rows = try await connection.query("""
                    SELECT id FROM config_versions WHERE status = 'superseded' ORDER BY activated_at DESC, id DESC LIMIT 1
                    """, logger: logger)
                for try await id in rows.decode(Int64.self) { return id }
                return nil
            }
        }
    }

    /// Takes the activation lock and returns the active version; `expectedActive`, when given,
    /// must be it.
    @discardableResult
    private func lockActivations(on connection: PostgresConnection, expectedActive: Int64?) async throws -> Int64? {
        try await connection.query("SELECT pg_advisory_xact_lock(\(Self.activationLock))", logger: logger)
        var active: Int64?
        for try await id in try await connection.query("SELECT id FROM config_versions WHERE status = 'active'", logger: logger).decode(Int64.self) {
            active = id
        }
        if let expectedActive, expectedActive != active {
            throw ConfigServiceError.conflict(
                "version \(expectedActive) was expected to be active, but \(active.map { "version \($0)" } ?? "no version") is: another change came first; read the active version and try again")
        }
        return active
    }

    /// Under the activation lock: supersedes the active version, activates `id`, rebuilds the
    /// read models from `document`, audits and notifies.
    private func activateLocked(id: Int64, document: ConfigurationDocument, actor: String, action: String, on connection: PostgresConnection) async throws {
        try await connection.query("""
            UPDATE config_versions SET status = 'superseded' WHERE status = 'active'
            """, logger: logger)
        try await connection.query("""
            UPDATE config_versions SET status = 'active', activated_at = now() WHERE id = \(id)
            """, logger: logger)
        try await ReadModels.rebuild(from: document, version: id, on: connection, logger: logger)
        try await AuditLog.append(actor: actor, action: action, subject: "config/\(id)", details: ["meters": "\(document.meters.count)"], on: connection, logger: logger)
        try await connection.query("SELECT pg_notify(\(Self.notificationChannel), \("\(id)"))", logger: logger)
    }

    // MARK: - Start-up repair

    /// Rebuilds the read models when they do not hold the active version (a database restored
    /// from a backup, a read model edited by hand, an older build's rows). Activation itself is
    /// one transaction: a SIGKILL mid-activation leaves the previous version active and intact.
    /// - Returns: the version rebuilt, if one was.
    @discardableResult
    func repair(actor: String = "config-service") async throws -> Int64? {
        try await call("repairing the read models") {
            try await database.withTransaction { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(\(Self.activationLock))", logger: logger)
                guard let active = try await Self.version(nil, on: connection, logger: logger) else { return nil }
                let rows = try await connection.query("""
                    SELECT (SELECT count(*) FROM meters)::bigint, (SELECT count(*) FROM meters WHERE config_version_id <> \(active.summary.id))::bigint,
                           (SELECT count(*) FROM lines)::bigint, (SELECT count(*) FROM regions)::bigint
                    """, logger: logger)
                var consistent = false
                for try await (meters, stale, lines, regions) in rows.decode((Int, Int, Int, Int).self) {
                    consistent = meters == active.document.meters.count && stale == 0 && lines == active.document.lines.count
                        && regions == active.document.regions.count
                }
                if consistent { return nil }
                logger.warning("the read models do not hold the active configuration; rebuilding them", metadata: ["config.version": "\(active.summary.id)"])
                try await ReadModels.rebuild(from: active.document, version: active.summary.id, on: connection, logger: logger)
                try await AuditLog.append(actor: actor, action: "config.repaired", subject: "config/\(active.summary.id)", on: connection, logger: logger)
                try await connection.query("SELECT pg_notify(\(Self.notificationChannel), \("\(active.summary.id)"))", logger: logger)
                return active.summary.id
            }
        }
    }

    // MARK: - Helpers

    /// Sorted keys, so the same document always has the same text and hash.
    static func canonicalJSON(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// Our own errors pass; a database failure becomes `.storeFailed` (logged with its cause).
    func call<T: Sendable>(_ what: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as ConfigServiceError {
            throw error
        } catch let error as PersistenceError {
            if let inner = error.underlying as? ConfigServiceError { throw inner }
            logger.error("the configuration store failed", metadata: ["operation": "\(what)", "error": "\(error)"])
            throw ConfigServiceError.storeFailed("\(what) failed: the database did not answer or refused (\(error.code))")
        } catch {
            logger.error("the configuration store failed", metadata: ["operation": "\(what)", "error": "\(error)"])
            throw ConfigServiceError.storeFailed("\(what) failed")
        }
    }
}
