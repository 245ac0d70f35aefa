import Metrics
import Synchronization

/// What `/readyz` reports: a process is ready when every registered component is.
///
/// Components (the database, the Kafka producer, …) register when they are created and report
/// themselves ready once their dependency answers; a lost dependency makes them not ready again.
public final class Readiness: Sendable {
    private struct State {
        var pending: [String: String] = [:]
        var ready: Set<String> = []
    }
    private let state = Mutex(State())
    private let gauge = Gauge(label: "hes_ready")

    public init() { gauge.record(1) }

    /// Adds a component that starts out not ready.
    public func register(_ component: String, reason: String = "starting") {
        update { $0.ready.remove(component); $0.pending[component] = reason }
    }

    public func markReady(_ component: String) {
        update { $0.pending[component] = nil; $0.ready.insert(component) }
    }

    public func markNotReady(_ component: String, reason: String) {
        update { $0.ready.remove(component); $0.pending[component] = reason }
    }

    /// Whether every component is ready, and the reasons of those that are not.
    public var status: (isReady: Bool, pending: [String: String]) {
        state.withLock { ($0.pending.isEmpty, $0.pending) }
    }

    private func update(_ change: (inout State) -> Void) {
        let ready = state.withLock { state -> Bool in
            change(&state)
            return state.pending.isEmpty
        }
        gauge.record(ready ? 1 : 0)
    }
}
