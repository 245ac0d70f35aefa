import Logging

/// Log metadata keys shared by every SwiftHES process: the one registry, so no module spells a
/// key as a string literal of its own.
///
/// Using the same key everywhere lets an operator follow one meter, line or task through the
/// whole pipeline with a single log query (`meter.id="EMH-0001"`). Keys are dotted, lower case,
/// `snake_case` within a segment; a value names its unit where it has one.
public enum LogMetadataKey {
    // MARK: - Process

    public static let service = "service"
    public static let region = "region"
    /// The admin (metrics, health) server's `host:port`.
    public static let adminAddress = "admin.address"
    /// An executable's API server's `host:port` (ims-sim's IMS API, the config-service's).
    public static let apiAddress = "api.address"
    /// A failure's description (any error type: DLMS, Kafka, database, I/O).
    public static let error = "error"
    /// A typed error's code, for queries that must not parse the description.
    public static let errorCode = "error.code"
    /// How many times an operation has been tried so far.
    public static let attempt = "attempt"
    /// How long until the next try.
    public static let retryIn = "retry.in"
    /// How long an operation took.
    public static let duration = "duration"

    // MARK: - Meters, lines and tasks

    public static let meterID = "meter.id"
    /// The address a meter is reached at (`host:port`, serial device, gateway and wrapper port).
    public static let meterEndpoint = "meter.endpoint"
    public static let lineID = "line.id"
    public static let taskID = "task.id"
    public static let commandID = "command.id"
    /// A connection's remote address.
    public static let peer = "peer"
    /// How many meters a simulated fleet has.
    public static let meterCount = "meters"
    /// The simulated fleet's meter groups.
    public static let meterGroups = "groups"
    /// The faults a simulated meter injects.
    public static let meterFaults = "faults"

    // MARK: - DLMS/COSEM and the link layers

    /// An APDU's name.
    public static let dlmsAPDU = "dlms.apdu"
    /// Which repeat of a request this is.
    public static let dlmsAttempt = "dlms.attempt"
    public static let dlmsConformance = "dlms.conformance"
    public static let dlmsInvocationCounter = "dlms.invocation_counter"
    public static let dlmsInvokeID = "dlms.invoke_id"
    public static let dlmsExpectedInvokeID = "dlms.expected_invoke_id"
    public static let dlmsMaxPDU = "dlms.max_pdu"
    /// The association's security, or `none`.
    public static let dlmsSecurity = "dlms.security"
    /// The client's step (`connect`, `associate`, `get`, `release`, …).
    public static let dlmsStep = "dlms.step"
    /// Bytes left over after a complete APDU.
    public static let dlmsTrailingBytes = "dlms.trailing_bytes"
    /// A wrapper frame's destination port (IEC 62056-47).
    public static let wrapperPort = "wport"
    /// The negotiated HDLC parameters (window, information field lengths).
    public static let hdlcParameters = "hdlc.parameters"
    /// A mode E meter's identification message (manufacturer, identification).
    public static let iec21Identification = "iec21.identification"

    // MARK: - Kafka

    public static let kafkaTopic = "kafka.topic"
    public static let kafkaPartition = "kafka.partition"
    public static let kafkaOffset = "kafka.offset"
    public static let kafkaKey = "kafka.key"
    public static let kafkaGroup = "kafka.group"
    public static let kafkaClientID = "kafka.client_id"
    /// The bootstrap servers, comma separated.
    public static let kafkaBrokers = "kafka.brokers"
    /// Several partitions, as `topic[partition]` (or `…@offset`) comma separated.
    public static let kafkaPartitions = "kafka.partitions"
    /// librdkafka's log facility of a forwarded librdkafka log line.
    public static let kafkaFacility = "kafka.facility"
    public static let kafkaPartitionsPerTopic = "kafka.partitions_per_topic"
    /// The mock brokers' own addresses behind kafka-dev's fixed bootstrap port.
    public static let kafkaMockBrokers = "kafka.mock_brokers"
    /// The file a development cluster writes its bootstrap servers to.
    public static let kafkaBootstrapFile = "kafka.bootstrap_file"
    /// Messages handed out but not finished when their partition was revoked.
    public static let kafkaDroppedInFlight = "kafka.dropped_in_flight"
    /// Whether the partitions were lost rather than revoked in order (their offsets cannot be committed).
    public static let kafkaAssignmentLost = "kafka.assignment_lost"

    // MARK: - Database

    public static let databaseHost = "db.host"
    /// `host:port` of the PostgreSQL server.
    public static let databaseEndpoint = "db.endpoint"
    /// The database name.
    public static let databaseName = "db.database"
    /// A schema migration (`version name`).
    public static let migration = "migration"
    public static let migrationApplied = "migration.applied"
    public static let migrationCount = "migration.count"
    public static let migrationLatest = "migration.latest"
    public static let migrationStatements = "migration.statements"
    public static let migrationVersions = "migration.versions"

    // MARK: - IMS

    /// The IMS endpoint the uploader posts to.
    public static let imsURL = "ims.url"
    /// The port a simulated IMS listens on.
    public static let imsPort = "ims.port"
    /// The uploader's id of one IMS request (its idempotency key).
    public static let imsRequestID = "ims.request_id"
    /// How many reading batches or task results one IMS request carries.
    public static let imsItems = "ims.items"
    /// The IMS's HTTP status for a request.
    public static let imsStatus = "ims.status"
    /// The state of the uploader's circuit breaker toward the IMS.
    public static let imsCircuit = "ims.circuit"
    /// A reading batch's id.
    public static let batchID = "batch.id"

    // MARK: - HTTP and readiness

    /// The path of an HTTP request that failed.
    public static let httpPath = "http.path"
    /// The dependency (`database`, `kafka`, `ims`) a readiness line is about.
    public static let dependency = "dependency"
}
