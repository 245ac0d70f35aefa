import Logging
import Observability
import PostgresNIO

/// Applies ``Migration``s to a database, safely from any number of processes at once.
///
/// The runner takes a session-level PostgreSQL advisory lock (``lockKey``) on the connection it
/// is given, so replicas that start together queue up: the first applies what is pending, the
/// others find nothing left to do. Because the lock belongs to the session, a runner that dies
/// releases it with its connection. Inside the lock it
/// 1. creates `schema_migrations(version, name, checksum, applied_at)` if needed,
/// 2. checks every applied migration's checksum against its file
///    (``PersistenceError/Code/checksumMismatch`` on a difference, before anything is applied),
/// 3. applies each pending migration in its own transaction, recording it in the same
///    transaction, so a failure leaves the database at the previous version.
///
/// Running it again on an up-to-date database changes nothing.
public struct MigrationRunner: Sendable {
    /// Key of the advisory lock that serialises runners: `'SwiftHES'` read as a big-endian
    /// integer. Other advisory-lock users (the scheduler's leader election) must use other keys.
    public static let defaultLockKey: Int64 = 0x5377_6966_7448_4553

    /// The migrations to apply, sorted by version.
    public let migrations: [Migration]
    /// The advisory lock key. Default: ``defaultLockKey``.
    public let lockKey: Int64
    private let logger: Logger

    /// - Parameters:
    ///   - migrations: What to apply; validated and sorted (see ``Migration/validated(_:)``).
    ///   - lockKey: Advisory lock key; runners with the same key exclude each other.
    ///   - logger: Receives one line per applied migration and lock waits.
    /// - Throws: ``PersistenceError/Code/invalidMigration`` for duplicate versions.
    public init(migrations: [Migration], lockKey: Int64 = Self.defaultLockKey, logger: Logger) throws(PersistenceError) {
        self.migrations = try Migration.validated(migrations)
        self.lockKey = lockKey
        self.logger = logger
    }

    /// A runner for the migrations bundled with this module.
    public static func bundled(logger: Logger) throws(PersistenceError) -> MigrationRunner {
        try MigrationRunner(migrations: Migration.bundled(), logger: logger)
    }

    /// What a run did.
    public struct Report: Sendable, Hashable {
        /// Migrations applied by this run, in order.
        public var applied: [Migration]
        /// Versions that were already applied before this run.
        public var alreadyApplied: [Int]
        /// Versions recorded in the database that this runner does not know: the database was
        /// migrated by a newer release. Logged as a warning, not an error, so an older replica
        /// keeps working during a rolling upgrade.
        public var unknown: [Int]
    }

    // MARK: - Running

    /// Opens a dedicated connection, applies pending migrations and closes it.
    ///
    /// - Throws: ``PersistenceError``; ``PersistenceError/isRetriable`` tells whether the
    ///   database was merely unreachable.
    @discardableResult
    public func run(configuration: DatabaseConfiguration) async throws -> Report {
        let connection = try await configuration.connect(logger: self.logger)
        do {
            let report = try await withTaskCancellationHandler {
                try await self.run(on: connection)
            } onCancel: {
                // A runner blocked in pg_advisory_lock only wakes up when its connection goes away.
                connection.close().whenComplete { _ in }
            }
            try? await connection.close()
            return report
        } catch {
            try? await connection.close()
            if Task.isCancelled { throw PersistenceError.shutdown("migrations cancelled") }
            throw error
        }
    }

    /// Applies pending migrations using `connection`, which must not be in a transaction.
    /// The connection is returned with the advisory lock released.
    ///
    /// - Throws: ``PersistenceError``.
    @discardableResult
    public func run(on connection: PostgresConnection) async throws -> Report {
        try await self.acquireLock(on: connection)
        let result: Result<Report, any Error>
        do {
            result = .success(try await self.runLocked(on: connection))
        } catch {
            result = .failure(error)
        }
        do {
            try await connection.query("SELECT pg_advisory_unlock(\(self.lockKey))", logger: self.logger)
        } catch {
            // Closing the session releases the lock too; a pooled connection must not keep it.
            self.logger.warning("could not release the migration lock, closing the connection", metadata: [LogMetadataKey.error: "\(error)"])
            try? await connection.close()
        }
        return try result.get()
    }

    private func acquireLock(on connection: PostgresConnection) async throws {
        do {
            let rows = try await connection.query("SELECT pg_try_advisory_lock(\(self.lockKey))", logger: self.logger)
            var acquired = false
            for try await (value) in rows.decode(Bool.self) { acquired = value }
            if !acquired {
                self.logger.info("another process is migrating the database, waiting for its lock")
                try await connection.query("SELECT pg_advisory_lock(\(self.lockKey))", logger: self.logger)
            }
        } catch {
            throw PersistenceError.classify(error, context: "acquiring the migration lock")
        }
    }

    private func runLocked(on connection: PostgresConnection) async throws -> Report {
        do {
            try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version    bigint      PRIMARY KEY,
                    name       text        NOT NULL,
                    checksum   text        NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """,
                logger: self.logger
            )
        } catch {
            throw PersistenceError.classify(error, context: "creating schema_migrations")
        }

        let applied = try await self.appliedMigrations(on: connection)
        let known = Dictionary(uniqueKeysWithValues: self.migrations.map { ($0.version, $0) })

        // Verify everything before changing anything.
        for row in applied {
            guard let migration = known[row.version] else { continue }
            if migration.checksum != row.checksum {
                throw PersistenceError.checksumMismatch(
                    "migration \(migration) was changed after it was applied "
                        + "(recorded checksum \(row.checksum.prefix(12))…, file \(migration.checksum.prefix(12))…); "
                        + "restore the file and put the change in a new migration"
                )
            }
        }
        let unknown = applied.map(\.version).filter { known[$0] == nil }
        if !unknown.isEmpty {
            self.logger.warning(
                "the database has migrations this release does not know; it was migrated by a newer release",
                metadata: [LogMetadataKey.migrationVersions: "\(unknown)"]
            )
        }

        let appliedVersions = Set(applied.map(\.version))
        let latestApplied = applied.map(\.version).max() ?? 0
        var report = Report(applied: [], alreadyApplied: applied.map(\.version).sorted(), unknown: unknown)
        for migration in self.migrations where !appliedVersions.contains(migration.version) {
            if migration.version < latestApplied {
                self.logger.warning(
                    "applying migration out of order",
                    metadata: [LogMetadataKey.migration: "\(migration)", LogMetadataKey.migrationLatest: "\(latestApplied)"]
                )
            }
            try await self.apply(migration, on: connection)
            report.applied.append(migration)
        }
        if report.applied.isEmpty {
            self.logger.debug("database schema is up to date", metadata: [LogMetadataKey.migrationCount: "\(applied.count)"])
        }
        return report
    }

    private struct AppliedRow {
        var version: Int
        var checksum: String
    }

    private func appliedMigrations(on connection: PostgresConnection) async throws -> [AppliedRow] {
        do {
            let rows = try await connection.query(
                "SELECT version, checksum FROM schema_migrations ORDER BY version", logger: self.logger
            )
            var result: [AppliedRow] = []
            for try await (version, checksum) in rows.decode((Int64, String).self) {
                result.append(AppliedRow(version: Int(version), checksum: checksum))
            }
            return result
        } catch {
            throw PersistenceError.classify(error, context: "reading schema_migrations")
        }
    }

    private func apply(_ migration: Migration, on connection: PostgresConnection) async throws {
        let statements = try migration.statements()
        let start = ContinuousClock.now
        var failedStatement = 0
        do {
            try await connection.withTransaction(logger: self.logger) { connection in
                for (index, statement) in statements.enumerated() {
                    failedStatement = index + 1
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: self.logger)
                }
                failedStatement = 0
                try await connection.query(
                    """
                    INSERT INTO schema_migrations (version, name, checksum)
                    VALUES (\(Int64(migration.version)), \(migration.name), \(migration.checksum))
                    """,
                    logger: self.logger
                )
            }
        } catch {
            let cause = PersistenceError.classify(error, context: "migration \(migration)")
            if cause.code == .connectionLost || cause.code == .unreachable || cause.code == .shutdown {
                throw cause
            }
            let location = failedStatement > 0 ? " (statement \(failedStatement) of \(statements.count))" : ""
            throw PersistenceError(
                code: .migrationFailed,
                reason: cause.reason + location + "; rolled back",
                isRetriable: cause.isRetriable,
                sqlState: cause.sqlState,
                underlying: cause.underlying
            )
        }
        self.logger.info(
            "applied migration",
            metadata: [
                LogMetadataKey.migration: "\(migration)",
                LogMetadataKey.migrationStatements: "\(statements.count)",
                LogMetadataKey.duration: "\(ContinuousClock.now - start)",
            ]
        )
    }
}
