import Foundation
import Testing

@testable import Persistence

@Suite struct MigrationTests {
    @Test func sha256MatchesFIPSVectors() {
        #expect(SHA256.hexDigest("".utf8) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hexDigest("abc".utf8) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            SHA256.hexDigest("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        )
        #expect(
            SHA256.hexDigest(Array(repeating: UInt8(ascii: "a"), count: 1_000_000))
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        )
    }

    @Test func parsesFileNames() {
        #expect(Migration.parse(fileName: "0001_initial.sql")! == (1, "initial"))
        #expect(Migration.parse(fileName: "0042_add_meter_index.sql")! == (42, "add_meter_index"))
        #expect(Migration.parse(fileName: "1_x.sql")! == (1, "x"))
        for bad in ["initial.sql", "0001-initial.sql", "0001_.sql", "_initial.sql", "0001_Initial.sql", "0001_a b.sql", "0001_x.txt"] {
            #expect(Migration.parse(fileName: bad) == nil, "\(bad)")
        }
    }

    @Test func bundledMigrationsLoad() throws {
        let migrations = try Migration.bundled()
        #expect(migrations.first?.version == 1)
        #expect(migrations.first?.name == "initial")
        #expect(migrations.map(\.version) == migrations.map(\.version).sorted())
        let statements = try #require(try migrations.first?.statements())
        #expect(statements.count > 20)
        #expect(statements.contains { $0.contains("CREATE TABLE config_versions (") })
    }

    @Test func loadRejectsBadDirectories() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hes-migrations-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try "CREATE TABLE a (id int);".write(to: directory.appendingPathComponent("0001_a.sql"), atomically: true, encoding: .utf8)
        try "ignored".write(to: directory.appendingPathComponent("README.md"), atomically: true, encoding: .utf8)
        #expect(try Migration.load(from: directory).map(\.description) == ["0001_a"])

        try "SELECT 1;".write(to: directory.appendingPathComponent("001_b.sql"), atomically: true, encoding: .utf8)
        #expect(throws: PersistenceError.invalidMigration("")) { try Migration.load(from: directory) }
        try FileManager.default.removeItem(at: directory.appendingPathComponent("001_b.sql"))

        try "SELECT 1;".write(to: directory.appendingPathComponent("0002 b.sql"), atomically: true, encoding: .utf8)
        #expect(throws: PersistenceError.invalidMigration("")) { try Migration.load(from: directory) }

        #expect(throws: PersistenceError.invalidMigration("")) {
            try Migration.load(from: directory.appendingPathComponent("missing"))
        }
    }

    @Test func checksumIsOfTheExactText() {
        let a = Migration(version: 1, name: "a", sql: "CREATE TABLE a (id int);")
        let b = Migration(version: 1, name: "a", sql: "CREATE TABLE a (id int); ")
        #expect(a.checksum != b.checksum)
        #expect(a.checksum == SHA256.hexDigest("CREATE TABLE a (id int);".utf8))
    }
}

@Suite struct SQLStatementSplitterTests {
    @Test func splitsAtTopLevelSemicolons() throws {
        #expect(try SQLStatementSplitter.split("SELECT 1; SELECT 2;\nSELECT 3") == ["SELECT 1", "SELECT 2", "SELECT 3"])
    }

    @Test func dropsEmptyAndCommentOnlyStatements() throws {
        #expect(try SQLStatementSplitter.split(";;  -- nothing\n;/* also nothing */;\n") == [])
        #expect(try SQLStatementSplitter.split("-- lead\nSELECT 1; -- trailing") == ["-- lead\nSELECT 1"])
    }

    @Test func ignoresSemicolonsInQuotesAndComments() throws {
        let sql = """
            INSERT INTO t VALUES ('a;b', 'it''s; fine', E'x\\';y');
            SELECT "odd;name" FROM t; -- comment; with semicolon
            /* block; /* nested; */ still; */ SELECT 2;
            """
        let statements = try SQLStatementSplitter.split(sql)
        #expect(statements.count == 3)
        #expect(statements[0] == "INSERT INTO t VALUES ('a;b', 'it''s; fine', E'x\\';y')")
        #expect(statements[1] == "SELECT \"odd;name\" FROM t")
        #expect(statements[2].hasSuffix("SELECT 2"))
    }

    @Test func keepsDollarQuotedBodiesWhole() throws {
        let sql = """
            CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END; $$;
            CREATE FUNCTION g() RETURNS text LANGUAGE sql AS $body$ SELECT 'a;$$;b' $body$;
            SELECT $1::int;
            """
        let statements = try SQLStatementSplitter.split(sql)
        #expect(statements.count == 3)
        #expect(statements[0].hasSuffix("END; $$"))
        #expect(statements[1].hasSuffix("SELECT 'a;$$;b' $body$"))
        #expect(statements[2] == "SELECT $1::int")
    }

    @Test(arguments: ["SELECT 'open", "SELECT \"open", "SELECT 1 /* open", "SELECT $$ open", "SELECT $t$ open $$"])
    func rejectsUnterminatedInput(sql: String) {
        #expect(throws: PersistenceError.invalidMigration("")) { try SQLStatementSplitter.split(sql) }
    }

    @Test func retryBackoffGrowsAndIsCapped() {
        let policy = DatabaseService.RetryPolicy(initialBackoff: .seconds(1), maximumBackoff: .seconds(10), multiplier: 2)
        #expect(policy.backoff(afterFailures: 1) == .seconds(1))
        #expect(policy.backoff(afterFailures: 2) == .seconds(2))
        #expect(policy.backoff(afterFailures: 4) == .seconds(8))
        #expect(policy.backoff(afterFailures: 5) == .seconds(10))
        #expect(policy.backoff(afterFailures: 500) == .seconds(10))
        #expect(DatabaseService.format(.seconds(2)) == "2s")
        #expect(DatabaseService.format(.milliseconds(50)) == "0.05s")
    }
}
