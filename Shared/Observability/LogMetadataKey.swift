import Logging

/// Log metadata keys shared by every SwiftHES process.
///
/// Using the same key everywhere lets an operator follow one meter, line or task through the
/// whole pipeline with a single log query (`meter.id="EMH-0001"`).
public enum LogMetadataKey {
    public static let service = "service"
    public static let region = "region"
    public static let meterID = "meter.id"
    public static let lineID = "line.id"
    public static let taskID = "task.id"
    public static let commandID = "command.id"
    public static let kafkaTopic = "kafka.topic"
    public static let kafkaPartition = "kafka.partition"
    public static let kafkaOffset = "kafka.offset"
    public static let databaseHost = "db.host"
    public static let error = "error"
    // MARK: - Processes and their dependencies
    /// `host:port` the admin HTTP server listens on.
    public static let adminAddress = "admin.address"
    /// The path of an HTTP request that failed.
    public static let httpPath = "http.path"
    /// The dependency (`database`, `kafka`, `ims`) a readiness line is about.
    public static let dependency = "dependency"
    /// When the next check of an unreachable dependency runs.
    public static let retryIn = "retry.in"
    /// `host:port` of the PostgreSQL server.
    public static let databaseEndpoint = "db.endpoint"
    /// Kafka bootstrap servers.
    public static let kafkaBrokers = "kafka.brokers"
    /// Base URL of the IMS.
    public static let imsURL = "ims.url"
    /// `client.id` of a Kafka producer or consumer.
    public static let kafkaClientID = "kafka.client_id"
    /// The stable code of an error (`meter.timeout`, `unreachable`).
    public static let errorCode = "error.code"
}
