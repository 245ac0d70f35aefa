import Metrics

/// The scheduler's metrics (Prometheus names on `/metrics`).
struct SchedulerMetrics: Sendable {
    /// 1 while this process holds the leader lock, 0 on standby.
    let leader = Gauge(label: "hes_scheduler_leader")
    /// The configuration version the plan was built from.
    let configVersion = Gauge(label: "hes_scheduler_config_version")
    /// Meters in the active plan.
    let plannedMeters = Gauge(label: "hes_scheduler_planned_meters")
    /// Schedule slots whose tasks went out more than a minute after they were due.
    let slotsLate = Counter(label: "hes_scheduler_slots_late_total")
    /// Holes found between confirmed progress and what the schedules should have produced (pieces emitted).
    let gapsFound = Counter(label: "hes_scheduler_gaps_found_total")
    /// Tasks that could not be sent to Kafka (they are sent again at the next tick).
    let sendFailures = Counter(label: "hes_scheduler_send_failures_total")
    /// Times a leader took over.
    let takeovers = Counter(label: "hes_scheduler_takeovers_total")

    /// Tasks emitted, by origin (schedule, command, gap-recovery) and region.
    func emitted(origin: String, region: String) -> Counter {
        Counter(label: "hes_scheduler_tasks_emitted_total", dimensions: [("origin", origin), ("region", region)])
    }

    /// Tasks not emitted because the meter cannot be served (keys), by reason.
    func skipped(reason: String) -> Counter {
        Counter(label: "hes_scheduler_tasks_skipped_total", dimensions: [("reason", reason)])
    }

    /// 1 while a region's scheduled work is held back because its collectors are behind.
    func backpressure(region: String) -> Gauge {
        Gauge(label: "hes_scheduler_backpressure", dimensions: [("region", region)])
    }

    /// Tasks outstanding in a region (task-topic lag of its collector group), as last measured.
    func outstanding(region: String) -> Gauge {
        Gauge(label: "hes_scheduler_region_outstanding_tasks", dimensions: [("region", region)])
    }
}
