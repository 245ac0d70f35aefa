import Testing

@testable import Persistence

@Suite struct DatabaseConfigurationTests {
    @Test func parsesFullURL() throws {
        let configuration = try DatabaseConfiguration(
            url: "postgres://hes:s3cret@db.example.com:6543/hes_prod?sslmode=disable&application_name=scheduler&connect_timeout=3&pool_size=7"
        )
        #expect(configuration.host == "db.example.com")
        #expect(configuration.port == 6543)
        #expect(configuration.username == "hes")
        #expect(configuration.password == "s3cret")
        #expect(configuration.database == "hes_prod")
        #expect(configuration.tls == .disable)
        #expect(configuration.applicationName == "scheduler")
        #expect(configuration.connectTimeout == .seconds(3))
        #expect(configuration.poolSize == 7)
    }

    @Test func appliesDocumentedDefaults() throws {
        let configuration = try DatabaseConfiguration(url: "postgresql://localhost")
        #expect(configuration.port == 5432)
        #expect(configuration.username == "postgres")
        #expect(configuration.password == nil)
        #expect(configuration.database == "postgres")
        #expect(configuration.tls == .prefer)
        #expect(configuration.poolSize == DatabaseConfiguration.defaultPoolSize)
        #expect(configuration.connectTimeout == .seconds(10))
        #expect(configuration.minimumConnections == 0)
        try configuration.validate()
    }

    @Test func databaseDefaultsToUserName() throws {
        #expect(try DatabaseConfiguration(url: "postgres://meter@localhost:5432").database == "meter")
        #expect(try DatabaseConfiguration(url: "postgres://meter@localhost:5432/").database == "meter")
    }

    @Test func decodesPercentEncodingAndIPv6() throws {
        let configuration = try DatabaseConfiguration(url: "postgres://us%40er:p%40ss%3Aw%2Fd@[::1]:5433/my%20db")
        #expect(configuration.username == "us@er")
        #expect(configuration.password == "p@ss:w/d")
        #expect(configuration.host == "::1")
        #expect(configuration.endpoint == "[::1]:5433")
        #expect(configuration.database == "my db")
    }

    @Test func mapsSSLModes() throws {
        for (mode, expected) in [
            ("disable", DatabaseConfiguration.TLSMode.disable), ("allow", .prefer), ("prefer", .prefer),
            ("require", .require), ("verify-ca", .verifyCA), ("verify-full", .verifyFull),
        ] {
            #expect(try DatabaseConfiguration(url: "postgres://h/db?sslmode=\(mode)").tls == expected)
        }
    }

    @Test(arguments: [
        "",
        "   ",
        "mysql://user@host/db",
        "host:5432/db",
        "postgres:///db",
        "postgres://user:pw@host:0/db",
        "postgres://user:pw@host:70000/db",
        "postgres://user:pw@host:port/db",
        "postgres://host/db/extra",
        "postgres://host/db?sslmode=sometimes",
        "postgres://host/db?connect_timeout=-1",
        "postgres://host/db?pool_size=0",
        "postgres://host/db?search_path=x",
    ])
    func rejectsBadURLs(url: String) {
        #expect(throws: PersistenceError.invalidURL("")) {
            try DatabaseConfiguration(url: url)
        }
    }

    @Test func errorsAndDescriptionsNeverShowThePassword() throws {
        do {
            _ = try DatabaseConfiguration(url: "postgres://hes:topsecret@host:5432/db?bogus=1")
            Issue.record("expected an error")
        } catch {
            #expect(!error.reason.contains("topsecret"))
            #expect(!error.isRetriable)
        }
        do {
            _ = try DatabaseConfiguration(url: "postgres://hes:topsecret@:5432/db")
            Issue.record("expected an error")
        } catch {
            #expect(!error.reason.contains("topsecret"))
        }
        let configuration = try DatabaseConfiguration(url: "postgres://hes:topsecret@host:5432/db")
        #expect(!"\(configuration)".contains("topsecret"))
        #expect("\(configuration)".contains("hes:***@host:5432/db"))
    }

    @Test func urlRoundTrips() throws {
        let original = try DatabaseConfiguration(url: "postgres://a%40b:p%40ss@host:5433/db?sslmode=require&application_name=x")
        let copy = try DatabaseConfiguration(url: original.url)
        #expect(copy == original)
    }

    @Test func validateRejectsOutOfRangeSettings() {
        var configuration = DatabaseConfiguration(host: "localhost")
        configuration.poolSize = 0
        #expect(throws: PersistenceError.invalidConfiguration("")) { try configuration.validate() }
        configuration.poolSize = 2
        configuration.minimumConnections = 3
        #expect(throws: PersistenceError.invalidConfiguration("")) { try configuration.validate() }
    }

    @Test func buildsPostgresNIOConfigurations() throws {
        let configuration = try DatabaseConfiguration(url: "postgres://u:p@h:1234/d?sslmode=disable&pool_size=3&connect_timeout=2")
        let client = configuration.makeClientConfiguration()
        #expect(client.host == "h")
        #expect(client.port == 1234)
        #expect(client.username == "u")
        #expect(client.password == "p")
        #expect(client.database == "d")
        #expect(client.options.maximumConnections == 3)
        #expect(client.options.connectTimeout == .seconds(2))
        let connection = try configuration.makeConnectionConfiguration()
        #expect(connection.host == "h")
        #expect(connection.options.connectTimeout == .seconds(2))
    }
}

@Suite struct PersistenceErrorTests {
    @Test func equalityComparesCodeOnly() {
        #expect(PersistenceError.unreachable("a") == PersistenceError.unreachable("b"))
        #expect(PersistenceError.unreachable("a") != PersistenceError.checksumMismatch("a"))
    }

    @Test func retriabilityFollowsTheCode() {
        #expect(PersistenceError.unreachable("x").isRetriable)
        #expect(PersistenceError.connectionLost("x").isRetriable)
        #expect(!PersistenceError.checksumMismatch("x").isRetriable)
        #expect(!PersistenceError.invalidURL("x").isRetriable)
    }

    @Test func classifiesSQLStates() {
        #expect(PersistenceError.classify(sqlState: "40001") == (.queryFailed, true))
        #expect(PersistenceError.classify(sqlState: "57P03") == (.connectionLost, true))
        #expect(PersistenceError.classify(sqlState: "08006") == (.connectionLost, true))
        #expect(PersistenceError.classify(sqlState: "28P01") == (.authenticationFailed, false))
        #expect(PersistenceError.classify(sqlState: "23505") == (.queryFailed, false))
    }

    @Test func recordsWhereItWasCreated() {
        let error = PersistenceError.invalidMigration("x")
        #expect(error.file.hasSuffix("DatabaseConfigurationTests.swift"))
        #expect(error.line > 0)
    }
}
