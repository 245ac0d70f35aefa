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
}
