import Contracts
import Metrics

/// The collector's metrics (Prometheus names on `/metrics`).
struct CollectorMetrics: Sendable {
    /// DLMS sessions running now.
    let sessionsInFlight = Meter(label: "hes_collector_sessions_in_flight")
    /// Tasks waiting in line queues.
    let queued = Gauge(label: "hes_collector_tasks_queued")
    /// Time of one task's session, connect to release.
    let sessionDuration = Timer(label: "hes_collector_session_duration_seconds", preferredDisplayUnit: .seconds)
    /// Queued tasks dropped because a rebalance moved their partition to another member.
    let revoked = Counter(label: "hes_collector_tasks_revoked_total")
    /// Messages on the task topics that are not tasks this collector can follow.
    let malformed = Counter(label: "hes_collector_tasks_malformed_total")

    /// Finished tasks by outcome and failure code.
    func results(_ result: TaskResult) -> Counter {
        Counter(label: "hes_collector_task_results_total", dimensions: [
            ("outcome", result.outcome.rawValue), ("code", result.failure?.code ?? "none"),
        ])
    }
}
