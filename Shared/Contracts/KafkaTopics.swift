/// The topic names of DESIGN.md §2, in one place.
public enum KafkaTopics {
    /// Scheduled tasks of a region, keyed by line id.
    public static func tasks(region: String) -> String { "hes.tasks.\(region)" }
    /// On-demand commands and gap recovery of a region, served before scheduled tasks.
    public static func priorityTasks(region: String) -> String { "hes.tasks.\(region).priority" }
    /// Both task topics of a region, the priority topic first (the order collectors serve them in).
    public static func taskTopics(region: String) -> [String] { [priorityTasks(region: region), tasks(region: region)] }
    /// The consumer group of a region's collectors; its lag on ``taskTopics(region:)`` is the
    /// region's outstanding work.
    public static func collectorGroup(region: String) -> String { "hes-collector-\(region)" }
    /// Reading batches, keyed by meter id.
    public static let readings = "hes.readings"
    /// Task results, keyed by task id.
    public static let results = "hes.results"
    /// Batches the IMS rejected permanently, with the reason.
    public static let readingsDeadLetter = "hes.readings.dlq"

    /// Every topic a deployment of `regions` needs.
    public static func all(regions: [String]) -> [String] {
        regions.flatMap { [tasks(region: $0), priorityTasks(region: $0)] } + [readings, results, readingsDeadLetter]
    }
}
