import Foundation
import Logging
import NIOCore
import PostgresNIO
import Synchronization

extension PostgresConnection {
    /// Runs `body` on this (dedicated) connection and returns within `timeout`, or as soon as
    /// the task is cancelled, whatever the connection does; the connection is closed then.
    ///
    /// PostgresNIO does not give up on a query by itself: a query written at the moment the server
    /// went away (PostgreSQL stopped in fast mode while the query was on the wire) never completed —
    /// not on task cancellation, not even once the connection was closed. A standby scheduler then
    /// hung in its leader-lock check and crashed at shutdown (`Cancellation took longer than
    /// allowed`), found by `scripts/chaos.sh`. So `body` runs in a task of its own that this call
    /// stops waiting for; when it never finishes, that task and the closed connection are what is
    /// left behind (a few hundred bytes, once per such outage).
    ///
    /// - Throws: ``PersistenceError/unreachable(_:underlying:file:line:)`` after the deadline,
    ///   `CancellationError` when cancelled, otherwise what `body` threw.
    public func closing<Result: Sendable>(after timeout: Duration, endpoint: String, _ operation: String,
                                          _ body: @escaping @Sendable () async throws -> Result) async throws -> Result {
        let outcome = FirstOutcome<Result>()
        let work = Task {
            do { outcome.resolve(.success(try await body())) } catch { outcome.resolve(.failure(error)) }
        }
        let watchdog = Task { [self] in
            try await Task.sleep(for: timeout)
            outcome.resolve(.failure(PersistenceError.unreachable(
                "\(operation): the database at \(endpoint) did not answer within \(timeout); connection closed")))
            self.close().whenComplete { _ in }
        }
        defer { watchdog.cancel() }
        return try await withTaskCancellationHandler {
            try await outcome.value
        } onCancel: {
            outcome.resolve(.failure(CancellationError()))
            work.cancel()
            self.close().whenComplete { _ in }
        }
    }
}

/// The first of several racing outcomes, handed to the one waiter (before or after it arrives).
private final class FirstOutcome<Value: Sendable>: Sendable {
    private enum State {
        case pending(CheckedContinuation<Value, any Error>?)
        case resolved(Result<Value, any Error>)
        case delivered
    }

    private let state = Mutex<State>(.pending(nil))

    func resolve(_ result: Result<Value, any Error>) {
        let waiter: CheckedContinuation<Value, any Error>? = state.withLock { state in
            switch state {
            case .pending(let continuation?):
                state = .delivered
                return continuation
            case .pending(nil):
                state = .resolved(result)
                return nil
            case .resolved, .delivered:
                return nil
            }
        }
        waiter?.resume(with: result)
    }

    var value: Value {
        get async throws {
            try await withCheckedThrowingContinuation { continuation in
                let ready: Result<Value, any Error>? = state.withLock { state in
                    switch state {
                    case .pending:
                        state = .pending(continuation)
                        return nil
                    case .resolved(let result):
                        state = .delivered
                        return result
                    case .delivered:
                        return .failure(CancellationError())
                    }
                }
                if let ready { continuation.resume(with: ready) }
            }
        }
    }
}
