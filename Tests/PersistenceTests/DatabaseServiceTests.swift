import Logging
import Persistence
import ServiceLifecycle
import Synchronization
import TestSupport
import Testing

@Suite(.serialized, .timeLimit(.minutes(5)))
struct DatabaseServiceTests {
    @Test func keepsRetryingWhileTheDatabaseIsUnreachable() async throws {
        let port = try PostgresTestCluster.unusedLoopbackPort()
        let capture = LogCapture()
        let ready = Counter()
        let service = DatabaseService(
            configuration: .init(
                database: DatabaseConfiguration(host: "127.0.0.1", port: port, tls: .disable, connectTimeout: .seconds(1)),
                retry: .init(initialBackoff: .milliseconds(20), maximumBackoff: .milliseconds(80))
            ),
            logger: capture.logger(),
            onReady: { ready.increment() }
        )
        let unreachable = "database unreachable at 127.0.0.1:\(port):"

        let task = Task { try await service.run() }
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(30)
        while capture.count(where: { $0.message.hasPrefix(unreachable) }) < 3 && clock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        task.cancel()
        let result = await task.result

        #expect(throws: Never.self) { try result.get() }
        let attempts = capture.messages.filter { $0.message.hasPrefix(unreachable) }
        #expect(attempts.count >= 3)
        #expect(attempts.allSatisfy { $0.level == .error && $0.message.contains(", retrying in 0.") })
        #expect(ready.value == 0)
    }

    @Test func becomesReadyAppliesMigrationsAndShutsDownGracefully() async throws {
        let database = try await PostgresTestCluster.shared.createDatabase(prefix: "service")
        let readyCount = Counter()
        let service = DatabaseService(
            configuration: .init(database: database.configuration),
            logger: Logger(label: "database-service-test"),
            onReady: { readyCount.increment() }
        )
        let group = ServiceGroup(
            configuration: .init(services: [service], logger: Logger(label: "service-group-test"))
        )

        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let clock = ContinuousClock()
            let deadline = clock.now + .seconds(60)
            while readyCount.value == 0 && clock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(readyCount.value == 1)

            // The pool serves queries once ready.
            let versions = try await service.withConnection { connection in
                let rows = try await connection.query("SELECT count(*) FROM schema_migrations", logger: SQL.logger)
                var count = 0
                for try await value in rows.decode(Int.self) { count = value }
                return count
            }
            #expect(versions == (try Migration.bundled()).count)

            let auditRows = try await service.withTransaction { connection in
                try await connection.query(
                    "INSERT INTO audit_log (actor, action, subject) VALUES ('test', 'probe', 'pool')", logger: SQL.logger
                )
                let rows = try await connection.query("SELECT count(*) FROM audit_log", logger: SQL.logger)
                var count = 0
                for try await value in rows.decode(Int.self) { count = value }
                return count
            }
            #expect(auditRows == 1)

            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }

        #expect(readyCount.value == 1)
    }

    @Test func transactionsRollBackAndReportTypedErrors() async throws {
        let database = try await PostgresTestCluster.shared.createDatabase(prefix: "transactions")
        try await SQL.withRunningService(.init(database: database.configuration)) { service in
            let error = await #expect(throws: PersistenceError.queryFailed("")) {
                try await service.withTransaction { connection in
                    try await connection.query(
                        "INSERT INTO audit_log (actor, action, subject) VALUES ('test', 'rolled', 'back')", logger: SQL.logger
                    )
                    try await connection.query("SELECT 1 / 0", logger: SQL.logger)
                }
            }
            #expect(error?.sqlState == "22012")
            #expect(error?.isRetriable == false)
            let auditRows = try await SQL.rows(database, "SELECT count(*)::text FROM audit_log")
            #expect(auditRows == ["0"])
        }
    }

    @Test func aChangedMigrationStopsTheService() async throws {
        let database = try await PostgresTestCluster.shared.createDatabase(prefix: "service_fatal")
        let first = Migration(version: 1, name: "a", sql: "CREATE TABLE a (id int);")
        try await MigrationRunner(migrations: [first], logger: SQL.logger).run(configuration: database.configuration)

        let changed = Migration(version: 1, name: "a", sql: "CREATE TABLE a (id bigint);")
        let ready = Counter()
        let service = DatabaseService(
            configuration: .init(database: database.configuration, migrations: [changed]),
            logger: SQL.logger,
            onReady: { ready.increment() }
        )
        await #expect(throws: PersistenceError.checksumMismatch("")) { try await service.run() }
        #expect(ready.value == 0)
    }
}

/// A thread-safe counter for callbacks.
final class Counter: Sendable {
    private let count = Atomic<Int>(0)

    var value: Int { self.count.load(ordering: .relaxed) }

    func increment() { self.count.add(1, ordering: .relaxed) }
}
