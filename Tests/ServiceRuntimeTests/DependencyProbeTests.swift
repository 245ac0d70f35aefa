import Foundation
import Logging
import Synchronization
import Testing
@testable import ServiceRuntime

@Suite
struct DependencyProbeTests {
    struct Refused: Error, CustomStringConvertible { var description: String { "connection refused" } }

    @Test
    func stateLogsChangesOnlyAndBacksOffWhileAway() {
        let check = DependencyCheck(name: "database", interval: .seconds(2), initialRetryDelay: .milliseconds(500),
                                    maximumRetryDelay: .seconds(3)) {}
        var state = DependencyProbeState(configuration: check)
        let ok: Result<Void, any Error> = .success(())
        let failed: Result<Void, any Error> = .failure(Refused())
        let steps = [failed, failed, failed, ok, ok, failed, failed, failed, failed, ok].map { state.checked($0) }
        #expect(steps == [
            // Starting: checked again soon, however long the dependency takes to come up.
            .init(changed: true, first: true, nextCheckIn: .milliseconds(500)),
            .init(changed: false, nextCheckIn: .milliseconds(500)),
            .init(changed: false, nextCheckIn: .milliseconds(500)),
            .init(changed: true, nextCheckIn: .seconds(2)),
            .init(changed: false, nextCheckIn: .seconds(2)),
            // Lost after it answered: backing off, at most maximumRetryDelay.
            .init(changed: true, nextCheckIn: .milliseconds(500)),
            .init(changed: false, nextCheckIn: .seconds(1)),
            .init(changed: false, nextCheckIn: .seconds(2)),
            .init(changed: false, nextCheckIn: .seconds(3)),
            .init(changed: true, nextCheckIn: .seconds(2)),
        ])
    }

    /// A real probe over a dependency that answers, goes away, hangs and comes back: readiness
    /// follows it each time, and a check that hangs counts as failed at its deadline.
    @Test(.timeLimit(.minutes(1)))
    func readinessFollowsTheDependency() async throws {
        enum Behaviour { case answer, refuse, hang }
        let behaviour = Mutex(Behaviour.refuse)
        let readiness = Readiness()
        let probe = DependencyProbe(
            DependencyCheck(name: "kafka", interval: .milliseconds(20), initialRetryDelay: .milliseconds(10),
                            maximumRetryDelay: .milliseconds(20), checkTimeout: .milliseconds(200)) {
                switch behaviour.withLock({ $0 }) {
                case .answer: return
                case .refuse: throw Refused()
                case .hang: try await Task.sleep(for: .seconds(30))
                }
            },
            readiness: readiness, logger: Logger(label: "test"))
        #expect(readiness.status.pending["kafka"] == "not checked yet")
        let running = Task { try await probe.run() }
        defer { running.cancel() }

        func waitFor(_ condition: @escaping () -> Bool) async throws -> Bool {
            for _ in 0..<500 {
                if condition() { return true }
                try await Task.sleep(for: .milliseconds(10))
            }
            return false
        }
        #expect(try await waitFor { readiness.status.pending["kafka"] == "connection refused" })
        behaviour.withLock { $0 = .answer }
        #expect(try await waitFor { readiness.status.isReady })
        behaviour.withLock { $0 = .hang }
        #expect(try await waitFor { readiness.status.pending["kafka"]?.contains("no answer within") == true })
        behaviour.withLock { $0 = .answer }
        #expect(try await waitFor { readiness.status.isReady })
    }
}
