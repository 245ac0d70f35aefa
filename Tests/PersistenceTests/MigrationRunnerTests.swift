import Logging
import Persistence
import TestSupport
import Testing

@Suite(.serialized, .timeLimit(.minutes(5)))
struct MigrationRunnerTests {
    let logger = Logger(label: "migration-tests")

    private func bundledRunner(_ logger: Logger? = nil) throws -> MigrationRunner {
        try MigrationRunner.bundled(logger: logger ?? self.logger)
    }

    @Test func appliesAllMigrationsToAnEmptyDatabase() async throws {
        let database = try await PostgresTestCluster.shared.createDatabase(prefix: "empty")
        let runner = try bundledRunner()

        let report = try await runner.run(configuration: database.configuration)

        #expect(report.applied.map(\.version) == runner.migrations.map(\.version))
        #expect(report.alreadyApplied.isEmpty)
        let recorded = try await SQL.rows(database, "SELECT version::text, name, checksum FROM schema_migrations ORDER BY version")
        #expect(recorded == runner.migrations.map { "\($0.version)|\($0.name)|\($0.checksum)" })
        let tables = try await SQL.rows(
            database, "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1"
        )
        for table in [
            "audit_log", "commands", "config_versions", "dispatched_tasks", "lines", "meter_progress", "meter_secrets",
            "meters", "regions", "schedules", "schema_migrations", "task_outcomes", "template_schedules", "templates",
        ] {
            #expect(tables.contains(table), "missing table \(table)")
        }
    }

    @Test func applyingTwiceChangesNothing() async throws {
        let database = try await PostgresTestCluster.shared.createDatabase(prefix: "twice")
        let runner = try bundledRunner()
        try await runner.run(configuration: database.configuration)
        let migrationsBefore = try await SQL.rows(
            database, "SELECT version::text, name, checksum, applied_at::text FROM schema_migrations ORDER BY version"
        )
        let schemaBefore = try await SQL.schemaDump(database)

        let second = try await runner.run(configuration: database.configuration)

        #expect(second.applied.isEmpty)
        #expect(second.alreadyApplied == runner.migrations.map(\.version))
        #expect(try await SQL.rows(
            database, "SELECT version::text, name, checksum, applied_at::text FROM schema_migrations ORDER BY version"
        ) == migrationsBefore)
        let schemaAfter = try await SQL.schemaDump(database)
        #expect(schemaAfter == schemaBefore)
        #expect(schemaBefore.count > 100)
    }

    @Test func concurrentRunnersApplyEachMigrationExactlyOnce() async throws {
        let database = try await PostgresTestCluster.shared.createDatabase(prefix: "concurrent")
        // A slow last migration keeps the lock held long enough for the others to queue up.
        let migrations = try Migration.bundled() + [
            Migration(version: 9000, name: "slow", sql: "SELECT pg_sleep(0.5);\nCREATE TABLE slow_marker (id int);")
        ]
        let capture = LogCapture()
        let runners = try (0..<4).map { index in
            try MigrationRunner(migrations: migrations, logger: capture.logger(label: "runner-\(index)"))
        }

        let reports = try await withThrowingTaskGroup(of: MigrationRunner.Report.self) { group in
            for runner in runners {
                group.addTask { try await runner.run(configuration: database.configuration) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }

        #expect(reports.count == 4)
        #expect(reports.filter { !$0.applied.isEmpty }.count == 1, "exactly one runner applies")
        #expect(reports.flatMap(\.applied).map(\.version) == migrations.map(\.version))
        let counts = try await SQL.rows(database, "SELECT version::text, count(*)::text FROM schema_migrations GROUP BY version ORDER BY version")
        #expect(counts == migrations.map { "\($0.version)|1" })
        #expect(capture.count { $0.message.contains("another process is migrating") } >= 1)
        #expect(capture.count { $0.message == "applied migration" } == migrations.count)
    }

    @Test func aChangedMigrationIsATypedError() async throws {
        let database = try await PostgresTestCluster.shared.createDatabase(prefix: "tampered")
        let runner = try bundledRunner()
        try await runner.run(configuration: database.configuration)

        // The file changed after it was applied.
        var edited = runner.migrations
        edited[0] = Migration(version: edited[0].version, name: edited[0].name, sql: edited[0].sql + "\n-- edited\n")
        let editedRunner = try MigrationRunner(migrations: edited, logger: logger)
        let error = await #expect(throws: PersistenceError.checksumMismatch("")) {
            try await editedRunner.run(configuration: database.configuration)
        }
        #expect(error?.isRetriable == false)
        #expect(error?.reason.contains("0001_initial") == true)

        // The recorded checksum was tampered with.
        try await SQL.execute(database, "UPDATE schema_migrations SET checksum = repeat('0', 64) WHERE version = 1")
        await #expect(throws: PersistenceError.checksumMismatch("")) {
            try await runner.run(configuration: database.configuration)
        }
    }

    @Test func aMismatchIsDetectedBeforeAnythingIsApplied() async throws {
        let database = try await PostgresTestCluster.shared.createDatabase(prefix: "verify_first")
        let first = Migration(version: 1, name: "a", sql: "CREATE TABLE a (id int);")
        try await MigrationRunner(migrations: [first], logger: logger).run(configuration: database.configuration)

        let changed = Migration(version: 1, name: "a", sql: "CREATE TABLE a (id bigint);")
        let next = Migration(version: 2, name: "b", sql: "CREATE TABLE b (id int);")
        await #expect(throws: PersistenceError.checksumMismatch("")) {
            try await MigrationRunner(migrations: [changed, next], logger: logger).run(configuration: database.configuration)
        }
        #expect(try await SQL.rows(database, "SELECT to_regclass('b')::text").first == "NULL")
    }

    @Test func aFailingMigrationRollsBackCompletely() async throws {
        let database = try await PostgresTestCluster.shared.createDatabase(prefix: "failing")
        let good = Migration(version: 1, name: "good", sql: "CREATE TABLE good (id int);")
        let bad = Migration(version: 2, name: "bad", sql: "CREATE TABLE half (id int);\nSELECT no_such_function();")
        let runner = try MigrationRunner(migrations: [good, bad], logger: logger)

        let error = await #expect(throws: PersistenceError.migrationFailed("")) {
            try await runner.run(configuration: database.configuration)
        }
        #expect(error?.sqlState == "42883")
        #expect(error?.reason.contains("0002_bad") == true)
        #expect(error?.reason.contains("statement 2 of 2") == true)
        #expect(try await SQL.rows(database, "SELECT version::text FROM schema_migrations") == ["1"])
        #expect(try await SQL.rows(database, "SELECT to_regclass('half')::text").first == "NULL")

        // The lock was released: a fixed release can carry on.
        let fixed = Migration(version: 2, name: "bad", sql: "CREATE TABLE half (id int);")
        let report = try await MigrationRunner(migrations: [good, fixed], logger: logger).run(configuration: database.configuration)
        #expect(report.applied.map(\.version) == [2])
    }

    @Test func unknownAppliedVersionsAreReportedNotFatal() async throws {
        let database = try await PostgresTestCluster.shared.createDatabase(prefix: "newer")
        let one = Migration(version: 1, name: "a", sql: "CREATE TABLE a (id int);")
        let two = Migration(version: 2, name: "b", sql: "CREATE TABLE b (id int);")
        try await MigrationRunner(migrations: [one, two], logger: logger).run(configuration: database.configuration)

        let report = try await MigrationRunner(migrations: [one], logger: logger).run(configuration: database.configuration)
        #expect(report.applied.isEmpty)
        #expect(report.unknown == [2])
    }

    @Test func anUnreachableDatabaseIsARetriableTypedError() async throws {
        var configuration = DatabaseConfiguration(host: "127.0.0.1", port: try PostgresTestCluster.unusedLoopbackPort(), tls: .disable)
        configuration.connectTimeout = .seconds(2)
        let runner = try bundledRunner()

        let error = await #expect(throws: PersistenceError.unreachable("")) {
            try await runner.run(configuration: configuration)
        }
        #expect(error?.isRetriable == true)
        #expect(error?.reason.contains("127.0.0.1:\(configuration.port)") == true)
    }

    @Test func aMissingDatabaseIsNotRetriable() async throws {
        let database = try await PostgresTestCluster.shared.createDatabase(prefix: "missing")
        var configuration = database.configuration
        configuration.database = "no_such_database"
        let error = await #expect(throws: PersistenceError.authenticationFailed("")) {
            try await MigrationRunner.bundled(logger: logger).run(configuration: configuration)
        }
        #expect(error?.isRetriable == false)
        #expect(error?.sqlState == "3D000")
    }
}
