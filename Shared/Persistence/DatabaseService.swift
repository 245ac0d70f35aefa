import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Runs the process's PostgreSQL connection pool and prepares the database before use.
///
/// Put it first in the executable's `ServiceGroup`: services shut down in reverse order, so the
/// pool stays open while the others finish their work. `run()`
/// 1. starts the pool (`PostgresClient.run()`),
/// 2. opens a dedicated connection and applies the migrations (``MigrationRunner``), retrying
///    with exponential backoff while the database is unreachable, logging every attempt
///    (`database unreachable at host:port: …, retrying in 2s`),
/// 3. calls `onReady` (executables flip `/readyz` there),
/// 4. waits for graceful shutdown, then closes the pool.
///
/// A permanent failure (a changed migration, failing SQL, bad credentials) is thrown from
/// `run()`, which stops the service group: serving against the wrong schema is worse than not
/// serving.
public struct DatabaseService: Service {
    /// Start-up behaviour.
    public struct Configuration: Sendable {
        /// Where the database is.
        public var database: DatabaseConfiguration
        /// Backoff between attempts while the database is unreachable.
        public var retry: RetryPolicy
        /// Whether to apply migrations at start-up. Default: `true`. Tools that only read (or
        /// tests that prepare the schema themselves) can turn it off; the service then only
        /// checks that the database answers.
        public var runMigrations: Bool
        /// The migrations to apply. Default: the ones bundled with this module.
        public var migrations: [Migration]?

        public init(
            database: DatabaseConfiguration,
            retry: RetryPolicy = .init(),
            runMigrations: Bool = true,
            migrations: [Migration]? = nil
        ) {
            self.database = database
            self.retry = retry
            self.runMigrations = runMigrations
            self.migrations = migrations
        }
    }

    /// Exponential backoff: `initialBackoff`, × `multiplier` per failure, at most `maximumBackoff`.
    public struct RetryPolicy: Sendable, Hashable {
        /// Default: 1 s.
        public var initialBackoff: Duration
        /// Default: 30 s.
        public var maximumBackoff: Duration
        /// Default: 2.
        public var multiplier: Double

        public init(initialBackoff: Duration = .seconds(1), maximumBackoff: Duration = .seconds(30), multiplier: Double = 2) {
            self.initialBackoff = initialBackoff
            self.maximumBackoff = maximumBackoff
            self.multiplier = multiplier
        }

        /// The wait after `failures` consecutive failed attempts (1 = the first failure).
        public func backoff(afterFailures failures: Int) -> Duration {
            var delay = self.initialBackoff
            for _ in 1..<max(1, failures) {
                delay = delay * self.multiplier
                if delay >= self.maximumBackoff { return self.maximumBackoff }
            }
            return min(delay, self.maximumBackoff)
        }
    }

    /// The connection pool. Use it (or ``withConnection(_:)`` / ``withTransaction(_:)``) once
    /// `onReady` has been called; before that, leases wait for the database.
    public let client: PostgresClient
    /// The settings this service was created with.
    public let configuration: Configuration
    private let logger: Logger
    private let onReady: @Sendable () -> Void
    private let prepared = PreparedFlag()

    /// - Parameters:
    ///   - configuration: Database and start-up settings.
    ///   - logger: For start-up progress and the pool's background messages.
    ///   - onReady: Called once, after the migrations are applied.
    public init(configuration: Configuration, logger: Logger, onReady: @escaping @Sendable () -> Void = {}) {
        var poolLogger = logger
        poolLogger[metadataKey: "db.endpoint"] = "\(configuration.database.endpoint)"
        self.client = configuration.database.makeClient(backgroundLogger: poolLogger)
        self.configuration = configuration
        self.logger = logger
        self.onReady = onReady
    }

    public func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                // Returns on graceful shutdown (PostgresClient handles it) or cancellation.
                await self.client.run()
            }
            let prepared = try await cancelWhenGracefulShutdown {
                try await self.prepareWithRetry()
            }
            if prepared {
                self.prepared.set()
                self.onReady()
                // Keep the pool open until the group shuts down, so later services can finish.
                try? await gracefulShutdown()
            }
            group.cancelAll()
        }
        self.logger.info("database pool closed", metadata: ["db.endpoint": "\(self.configuration.database.endpoint)"])
    }

    /// Runs ``prepareOnce()`` until it succeeds, a permanent error occurs, or the task is
    /// cancelled. Returns `false` when cancelled.
    private func prepareWithRetry() async throws -> Bool {
        let endpoint = self.configuration.database.endpoint
        var failures = 0
        while !Task.isCancelled {
            do {
                let report = try await self.prepareOnce()
                self.logger.info(
                    "database ready",
                    metadata: [
                        "db.endpoint": "\(endpoint)",
                        "db.database": "\(self.configuration.database.database)",
                        "migration.applied": "\(report.applied.map(\.description))",
                    ]
                )
                return true
            } catch let error as PersistenceError where error.code == .shutdown || Task.isCancelled {
                return false
            } catch let error as PersistenceError where error.isRetriable {
                failures += 1
                let delay = self.configuration.retry.backoff(afterFailures: failures)
                // `connect()` names the endpoint in its reason; the message names it already.
                let cause = error.reason.replacingOccurrences(of: "connecting to the database: cannot connect at \(endpoint): ", with: "")
                self.logger.error(
                    "database unreachable at \(endpoint): \(cause), retrying in \(Self.format(delay))",
                    metadata: ["db.endpoint": "\(endpoint)", "attempt": "\(failures)", "error.code": "\(error.code)"]
                )
                do {
                    try await Task.sleep(for: delay)
                } catch {
                    return false
                }
            } catch let error as PersistenceError {
                self.logger.critical(
                    "database start-up failed: \(error.reason)",
                    metadata: ["db.endpoint": "\(endpoint)", "error.code": "\(error.code)"]
                )
                throw error
            }
        }
        return false
    }

    /// One start-up attempt: connect a dedicated connection, apply the migrations (or just
    /// `SELECT 1` if ``Configuration/runMigrations`` is off), close it.
    ///
    /// - Throws: ``PersistenceError``; retriable when the database was unreachable.
    @discardableResult
    public func prepareOnce() async throws -> MigrationRunner.Report {
        if self.configuration.runMigrations {
            let migrations = try self.configuration.migrations ?? Migration.bundled()
            let runner = try MigrationRunner(migrations: migrations, logger: self.logger)
            return try await runner.run(configuration: self.configuration.database)
        }
        try await self.selectOneOnDedicatedConnection()
        return MigrationRunner.Report(applied: [], alreadyApplied: [], unknown: [])
    }

    /// Opens a connection of its own, runs `SELECT 1` and closes it.
    private func selectOneOnDedicatedConnection() async throws {
        let database = self.configuration.database
        let connection = try await database.connect(logger: self.logger)
        do {
            try await connection.closing(after: database.connectTimeout, endpoint: database.endpoint, "checking the database") {
                try await connection.query("SELECT 1", logger: self.logger)
            }
            try? await connection.close()
        } catch {
            try? await connection.close()
            throw PersistenceError.classify(error, context: "checking the database", endpoint: self.configuration.database.endpoint)
        }
    }

    // MARK: - Readiness

    /// Returns once ``run()`` has prepared the database (migrations applied): work that must
    /// happen before a service serves (start-up repair) waits here.
    /// - Throws: `CancellationError` when the task is cancelled first.
    public func waitUntilPrepared() async throws {
        while !self.prepared.isSet { try await Task.sleep(for: .milliseconds(50)) }
    }

    /// Whether the database answers now: throws until ``run()`` has prepared it (migrations
    /// applied), then opens a dedicated connection (so a pool that still holds connections does
    /// not hide a server that went away), runs `SELECT 1` and closes it.
    ///
    /// - Throws: ``PersistenceError`` (`unreachable` before preparation and while the server
    ///   does not answer).
    public func checkConnectivity() async throws {
        let endpoint = self.configuration.database.endpoint
        guard self.prepared.isSet else {
            throw PersistenceError.unreachable("the database at \(endpoint) is not prepared yet (connecting, applying migrations)")
        }
        try await self.selectOneOnDedicatedConnection()
    }

    // MARK: - Using the pool

    /// Leases a pooled connection for `body`. Errors are ``PersistenceError``s.
    public func withConnection<Result: Sendable>(
        _ body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        do {
            return try await self.client.withConnection { connection in try await body(connection) }
        } catch {
            throw PersistenceError.classify(error, context: "database operation", endpoint: self.configuration.database.endpoint)
        }
    }

    /// Runs `body` in a transaction on a pooled connection: committed when `body` returns,
    /// rolled back when it throws. Errors are ``PersistenceError``s (the first failure of
    /// `BEGIN`, `body`, or `COMMIT`); ``PersistenceError/isRetriable`` is `true` for
    /// serialization failures and deadlocks, so callers can retry the whole transaction.
    public func withTransaction<Result: Sendable>(
        _ body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        do {
            return try await self.client.withTransaction(logger: self.logger) { connection in try await body(connection) }
        } catch {
            throw PersistenceError.classify(error, context: "transaction", endpoint: self.configuration.database.endpoint)
        }
    }

    static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        if attoseconds == 0 { return "\(seconds)s" }
        let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000)s" : "\(Double(milliseconds) / 1000)s"
    }
}

/// Set once the database has been prepared; shared by the copies of a ``DatabaseService``.
private final class PreparedFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}
