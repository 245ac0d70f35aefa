import Logging
import Persistence
import TestSupport

/// Small helpers for the integration suites: one dedicated connection per call.
enum SQL {
    static let logger = Logger(label: "persistence-tests")

    /// Runs `body` on a fresh connection to `database`, closing it afterwards.
    static func withConnection<T>(
        _ database: PostgresTestDatabase,
        _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        let connection = try await database.configuration.connect(logger: logger)
        do {
            let value = try await body(connection)
            try await connection.close()
            return value
        } catch {
            try? await connection.close()
            throw error
        }
    }

    /// Runs a ``DatabaseService`` for `body`, which starts once the service called `onReady`.
    static func withRunningService<T>(
        _ configuration: DatabaseService.Configuration,
        _ body: (DatabaseService) async throws -> T
    ) async throws -> T {
        let (ready, readyContinuation) = AsyncStream<Void>.makeStream()
        let service = DatabaseService(configuration: configuration, logger: logger, onReady: { readyContinuation.yield() })
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                defer { readyContinuation.finish() }
                try await service.run()
            }
            var iterator = ready.makeAsyncIterator()
            guard await iterator.next() != nil else {
                try await group.waitForAll()  // rethrows why the service stopped
                throw PersistenceError.shutdown("the database service stopped before it was ready")
            }
            defer { group.cancelAll() }
            return try await body(service)
        }
    }

    /// Every row of a query whose columns are all text (cast in SQL), joined by `|`.
    static func rows(_ database: PostgresTestDatabase, _ sql: String) async throws -> [String] {
        try await withConnection(database) { connection in
            let rows = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
            var result: [String] = []
            for try await row in rows {
                var fields: [String] = []
                for cell in row {
                    fields.append(try cell.decode(String?.self) ?? "NULL")
                }
                result.append(fields.joined(separator: "|"))
            }
            return result
        }
    }

    /// Runs one statement in an explicit transaction.
    ///
    /// Explicit, because PostgresNIO reports a statement as done at CommandComplete: an error that
    /// PostgreSQL raises at the implicit commit of a lone statement (a deferred foreign key or
    /// constraint trigger) is lost. `COMMIT` as its own query reports it.
    static func execute(_ database: PostgresTestDatabase, _ sql: String) async throws {
        try await withConnection(database) { connection in
            try await connection.withTransaction(logger: logger) { connection in
                _ = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
            }
        }
    }

    /// The server's SQLSTATE of a failed statement.
    static func sqlState(of error: any Error) -> String? {
        PersistenceError.classify(error, context: "test").sqlState
    }

    /// A description of the schema of `public` from the catalogs: tables, columns, defaults,
    /// constraints, indexes, triggers and functions, in a stable order.
    static func schemaDump(_ database: PostgresTestDatabase) async throws -> [String] {
        try await rows(
            database,
            """
            SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable
                   || ' ' || coalesce(column_default, '')
              FROM information_schema.columns WHERE table_schema = 'public'
            UNION ALL
            SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
              FROM pg_constraint WHERE connamespace = 'public'::regnamespace
            UNION ALL
            SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
            UNION ALL
            SELECT 'trigger ' || tgrelid::regclass::text || ' ' || pg_get_triggerdef(oid)
              FROM pg_trigger WHERE NOT tgisinternal
            UNION ALL
            SELECT 'function ' || proname || ' ' || md5(prosrc)
              FROM pg_proc WHERE pronamespace = 'public'::regnamespace
            ORDER BY 1
            """
        )
    }
}
