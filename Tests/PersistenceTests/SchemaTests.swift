import Logging
import Persistence
import TestSupport
import Testing

/// The constraints of `0001_initial.sql` that other services rely on.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct SchemaTests {
    private func migratedDatabase(_ prefix: String) async throws -> PostgresTestDatabase {
        let database = try await PostgresTestCluster.shared.createDatabase(prefix: prefix)
        try await MigrationRunner.bundled(logger: SQL.logger).run(configuration: database.configuration)
        return database
    }

    private func expectSQLState(
        _ expected: String, _ database: PostgresTestDatabase, _ sql: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        do {
            try await SQL.execute(database, sql)
            Issue.record("expected SQLSTATE \(expected) from: \(sql)", sourceLocation: sourceLocation)
        } catch {
            #expect(SQL.sqlState(of: error) == expected, "\(error)", sourceLocation: sourceLocation)
        }
    }

    private static let hash = String(repeating: "ab", count: 32)

    private func insertVersion(_ database: PostgresTestDatabase, status: String = "staged") async throws -> String {
        let activated = status == "staged" ? "NULL" : "now()"
        return try await SQL.rows(
            database,
            """
            INSERT INTO config_versions (status, document, sha256, created_by, activated_at)
            VALUES ('\(status)', '{}', '\(Self.hash)', 'test', \(activated)) RETURNING id::text
            """
        )[0]
    }

    @Test func atMostOneConfigVersionIsActive() async throws {
        let database = try await migratedDatabase("one_active")
        let first = try await insertVersion(database, status: "active")
        let second = try await insertVersion(database)

        // A second active version violates the partial unique index.
        await expectSQLState("23505", database, "UPDATE config_versions SET status = 'active', activated_at = now() WHERE id = \(second)")
        await expectSQLState("23505", database, "INSERT INTO config_versions (status, document, sha256, created_by, activated_at) VALUES ('active', '{}', '\(Self.hash)', 't', now())")

        // Superseding the old and activating the new in one transaction works.
        try await SQL.withConnection(database) { connection in
            try await connection.withTransaction(logger: SQL.logger) { connection in
                try await connection.query(PostgresQuery(unsafeSQL: "UPDATE config_versions SET status = 'superseded' WHERE id = \(first)"), logger: SQL.logger)
                try await connection.query(PostgresQuery(unsafeSQL: "UPDATE config_versions SET status = 'active', activated_at = now() WHERE id = \(second)"), logger: SQL.logger)
            }
        }
        #expect(try await SQL.rows(database, "SELECT id::text FROM config_versions WHERE status = 'active'") == [second])
    }

    @Test func anActiveVersionCannotBeLeftWithoutSuccessor() async throws {
        let database = try await migratedDatabase("keep_active")
        let active = try await insertVersion(database, status: "active")
        await expectSQLState("23514", database, "UPDATE config_versions SET status = 'superseded' WHERE id = \(active)")
        await expectSQLState("23514", database, "DELETE FROM config_versions WHERE id = \(active)")
        #expect(try await SQL.rows(database, "SELECT id::text FROM config_versions WHERE status = 'active'") == [active])
    }

    @Test func deferredViolationsSurfaceAtCommitOfAnExplicitTransaction() async throws {
        let database = try await migratedDatabase("deferred")
        let active = try await insertVersion(database, status: "active")

        // A lone statement: the violation happens at the implicit commit, after PostgresNIO has
        // seen CommandComplete. Whatever the client reports, nothing was committed.
        _ = try? await SQL.withConnection(database) { connection in
            try await connection.query(
                PostgresQuery(unsafeSQL: "UPDATE config_versions SET status = 'superseded' WHERE id = \(active)"),
                logger: SQL.logger
            )
        }
        #expect(try await SQL.rows(database, "SELECT status FROM config_versions") == ["active"])

        // Through DatabaseService.withTransaction the failed COMMIT is a typed error.
        try await SQL.withRunningService(.init(database: database.configuration, runMigrations: false)) { service in
            let error = await #expect(throws: PersistenceError.queryFailed("")) {
                try await service.withTransaction { connection in
                    try await connection.query(
                        PostgresQuery(unsafeSQL: "UPDATE config_versions SET status = 'superseded' WHERE id = \(active)"),
                        logger: SQL.logger
                    )
                }
            }
            #expect(error?.sqlState == "23514")
        }
    }

    @Test func configVersionsAreImmutableSnapshots() async throws {
        let database = try await migratedDatabase("immutable")
        let id = try await insertVersion(database)
        await expectSQLState("23000", database, "UPDATE config_versions SET document = '{\"x\": 1}' WHERE id = \(id)")
        await expectSQLState("23514", database, "UPDATE config_versions SET status = 'draft' WHERE id = \(id)")
        await expectSQLState("23514", database, "INSERT INTO config_versions (document, sha256, created_by) VALUES ('{}', 'nothex', 't')")
        // Status and activation time may change.
        try await SQL.execute(database, "UPDATE config_versions SET status = 'active', activated_at = now() WHERE id = \(id)")
    }

    @Test func commandStatesAreCheckedAndTerminalStatesFinal() async throws {
        let database = try await migratedDatabase("commands")
        await expectSQLState("23514", database, "INSERT INTO commands (kind, meter_id, requested_by, state) VALUES ('disconnect', 'm1', 'ims', 'paused')")
        await expectSQLState("23514", database, "INSERT INTO commands (kind, meter_id, requested_by) VALUES ('self-destruct', 'm1', 'ims')")
        let id = try await SQL.rows(
            database, "INSERT INTO commands (kind, meter_id, requested_by) VALUES ('disconnect', 'm1', 'ims') RETURNING id::text"
        )[0]
        for state in ["dispatched", "running"] {
            try await SQL.execute(database, "UPDATE commands SET state = '\(state)' WHERE id = '\(id)'")
        }
        // Finishing needs a finish time.
        await expectSQLState("23514", database, "UPDATE commands SET state = 'succeeded' WHERE id = '\(id)'")
        try await SQL.execute(database, "UPDATE commands SET state = 'succeeded', finished_at = now() WHERE id = '\(id)'")
        await expectSQLState("23514", database, "UPDATE commands SET state = 'running', finished_at = NULL WHERE id = '\(id)'")

        // A guarded command cannot be dispatched before approval.
        let guarded = try await SQL.rows(
            database,
            "INSERT INTO commands (kind, meter_id, requested_by, requires_approval) VALUES ('disconnect', 'm2', 'ims', true) RETURNING id::text"
        )[0]
        await expectSQLState("23514", database, "UPDATE commands SET state = 'dispatched' WHERE id = '\(guarded)'")
        try await SQL.execute(database, "UPDATE commands SET state = 'dispatched', approved_by = 'operator', approved_at = now() WHERE id = '\(guarded)'")
        // The IMS's idempotency key is unique.
        try await SQL.execute(database, "INSERT INTO commands (kind, meter_id, requested_by, request_key) VALUES ('time-sync', 'm1', 'ims', 'k1')")
        await expectSQLState("23505", database, "INSERT INTO commands (kind, meter_id, requested_by, request_key) VALUES ('time-sync', 'm1', 'ims', 'k1')")
    }

    @Test func theLedgerRejectsASecondTaskForOneSlot() async throws {
        let database = try await migratedDatabase("ledger")
        let insert = """
            INSERT INTO dispatched_tasks (task_id, kind, region_id, line_id, meter_id, schedule_id, slot, topic)
            VALUES (gen_random_uuid(), 'scheduled', 'r1', 'l1', 'm1', 's1', '2026-01-01T00:15:00Z', 'hes.tasks.r1')
            """
        try await SQL.execute(database, insert)
        await expectSQLState("23505", database, insert)
        await expectSQLState("23514", database, """
            INSERT INTO dispatched_tasks (task_id, kind, region_id, line_id, meter_id, slot, topic)
            VALUES (gen_random_uuid(), 'scheduled', 'r1', 'l1', 'm1', now(), 'hes.tasks.r1')
            """)
    }

    @Test func theAuditLogIsAppendOnly() async throws {
        let database = try await migratedDatabase("audit")
        try await SQL.execute(database, "INSERT INTO audit_log (actor, action, subject) VALUES ('a', 'config.apply', 'v1')")
        await expectSQLState("42501", database, "UPDATE audit_log SET actor = 'b'")
        await expectSQLState("42501", database, "DELETE FROM audit_log")
    }

    @Test func readModelsRebuildInOneTransaction() async throws {
        let database = try await migratedDatabase("read_models")
        let version = try await insertVersion(database, status: "active")
        // Deferred foreign keys: children may be inserted before their parents.
        try await SQL.withConnection(database) { connection in
            try await connection.withTransaction(logger: SQL.logger) { connection in
                for sql in [
                    "INSERT INTO meters (id, serial_number, line_id, protocol, hdlc_address, config_version_id) VALUES ('m1', 'S1', 'l1', 'dlms-hdlc', 17, \(version))",
                    "INSERT INTO lines (id, region_id, kind, address, config_version_id) VALUES ('l1', 'r1', 'serial', '/dev/ttyUSB0', \(version))",
                    "INSERT INTO regions (id, config_version_id) VALUES ('r1', \(version))",
                ] {
                    try await connection.query(PostgresQuery(unsafeSQL: sql), logger: SQL.logger)
                }
            }
        }
        // Two meters on one line cannot share an HDLC address.
        await expectSQLState("23505", database, "INSERT INTO meters (id, serial_number, line_id, protocol, hdlc_address, config_version_id) VALUES ('m2', 'S2', 'l1', 'dlms-hdlc', 17, \(version))")
        // A dangling reference fails at commit.
        await expectSQLState("23503", database, "INSERT INTO meters (id, serial_number, line_id, protocol, config_version_id) VALUES ('m3', 'S3', 'nowhere', 'dlms-hdlc', \(version))")
        // Deleting a region removes its lines and meters.
        try await SQL.execute(database, "DELETE FROM regions")
        #expect(try await SQL.rows(database, "SELECT count(*)::text FROM meters") == ["0"])
    }
}
