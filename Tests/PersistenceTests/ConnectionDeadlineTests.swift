import Foundation
import Logging
import Persistence
import PostgresNIO
import TestSupport
import Testing

/// `PostgresConnection.closing(after:…)`: a query on a dedicated connection returns by its
/// deadline or on cancellation, whatever the server does.
@Suite(.timeLimit(.minutes(2)))
struct ConnectionDeadlineTests {
    @Test func aQueryThatOutlivesItsDeadlineEndsItAsUnreachable() async throws {
        let database = try await PostgresTestCluster.shared.createDatabase(prefix: "deadline")
        let logger = Logger(label: "deadline-test")
        let connection = try await database.configuration.connect(logger: logger)
        let clock = ContinuousClock()
        let started = clock.now
        do {
            try await connection.closing(after: .milliseconds(500), endpoint: database.configuration.endpoint, "sleeping") {
                _ = try await connection.query("SELECT pg_sleep(30)", logger: logger)
            }
            Issue.record("a 30 s query returned within a 500 ms deadline")
        } catch let error as PersistenceError {
            #expect(error.code == .unreachable)
            #expect(error.reason.contains("did not answer within"), "\(error)")
        }
        #expect(clock.now - started < .seconds(10))
        for _ in 0..<100 where !connection.isClosed { try await Task.sleep(for: .milliseconds(20)) }
        #expect(connection.isClosed, "the deadline closes the connection")
    }

    @Test func anAnswerBeforeTheDeadlineIsReturned() async throws {
        let database = try await PostgresTestCluster.shared.createDatabase(prefix: "deadline_ok")
        let logger = Logger(label: "deadline-test")
        let connection = try await database.configuration.connect(logger: logger)
        let value = try await connection.closing(after: .seconds(10), endpoint: database.configuration.endpoint, "adding") {
            var sum = 0
            for try await value in try await connection.query("SELECT 40 + 2", logger: logger).decode(Int.self) { sum = value }
            return sum
        }
        #expect(value == 42)
        #expect(!connection.isClosed)
        try await connection.close()
    }

    @Test func cancellationEndsTheWaitAtOnce() async throws {
        let database = try await PostgresTestCluster.shared.createDatabase(prefix: "deadline_cancel")
        let logger = Logger(label: "deadline-test")
        let connection = try await database.configuration.connect(logger: logger)
        let endpoint = database.configuration.endpoint
        let clock = ContinuousClock()
        let waiting = Task {
            try await connection.closing(after: .seconds(60), endpoint: endpoint, "sleeping") {
                _ = try await connection.query("SELECT pg_sleep(60)", logger: logger)
            }
        }
        try await Task.sleep(for: .milliseconds(300))
        let cancelled = clock.now
        waiting.cancel()
        let result = await waiting.result
        #expect(clock.now - cancelled < .seconds(5))
        #expect(throws: CancellationError.self) { try result.get() }
    }
}
