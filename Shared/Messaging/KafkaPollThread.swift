import Foundation
import Synchronization

/// A dedicated OS thread that serves one librdkafka handle: it runs `pollOnce` in a loop (each
/// call may block up to its poll timeout) and, between polls, the blocking operations others
/// hand it with ``execute(_:)``. Keeps librdkafka's blocking calls off Swift's cooperative pool.
final class KafkaPollThread: Sendable {
    private struct State {
        var commands: [@Sendable () -> Void] = []
        var stopRequested = false
        var stopped = false
        var exitWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private final class SharedState: Sendable {
        let mutex = Mutex(State())
    }

    private let shared = SharedState()
    let name: String

    /// Starts the thread.
    /// - Parameters:
    ///   - pollOnce: one poll step; returns `false` to end the loop.
    ///   - onExit: runs on the thread after the loop ended (final blocking calls such as close).
    init(name: String, pollOnce: @escaping @Sendable () -> Bool, onExit: @escaping @Sendable () -> Void = {}) {
        self.name = name
        let thread = Thread { [shared] in
            while true {
                let (commands, stop) = shared.mutex.withLock { state in
                    defer { state.commands.removeAll() }
                    return (state.commands, state.stopRequested)
                }
                for command in commands { command() }
                if stop || !pollOnce() { break }
            }
            onExit()
            let (leftovers, waiters) = shared.mutex.withLock { state in
                state.stopped = true
                defer { state.commands.removeAll(); state.exitWaiters.removeAll() }
                return (state.commands, state.exitWaiters)
            }
            // Commands that raced with the stop still run, so no continuation is left hanging.
            for command in leftovers { command() }
            for waiter in waiters { waiter.resume() }
        }
        thread.name = name
        thread.start()
    }

    /// Runs `body` on the thread between two polls and returns its result.
    /// - Throws: ``KafkaError/Code/shutdown`` if the thread has stopped.
    func execute<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let accepted = shared.mutex.withLock { state in
                guard !state.stopped else { return false }
                state.commands.append { continuation.resume(with: Result { try body() }) }
                return true
            }
            if !accepted { continuation.resume(throwing: KafkaError.shutdown("\(name) has stopped")) }
        }
    }

    /// Asks the loop to end after the current poll; `onExit` then runs on the thread.
    func requestStop() {
        shared.mutex.withLock { $0.stopRequested = true }
    }

    var isStopped: Bool { shared.mutex.withLock { $0.stopped } }

    /// Waits until the thread has run `onExit` and ended.
    func waitForExit() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = shared.mutex.withLock { state in
                if state.stopped { return true }
                state.exitWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }
}
