import Foundation

/// All readings one task obtained from one meter, published by the collector on `hes.readings`
/// keyed by meter id and delivered to the IMS by the uploader.
public struct ReadingBatch: VersionedContract, Hashable {
    public static let schemaName = "reading-batch"
    public static let supportedMajorVersions = 1...1
    public static let currentMajorVersion = 1

    public var schema: String
    /// The idempotency key the IMS deduplicates redelivered batches by. Derived from the task id
    /// so a re-executed task produces the same key.
    public var batchID: String
    public var taskID: String
    public var region: String
    public var meterID: String
    public var collectedAt: Date
    public var readings: [Reading]

    public init(batchID: String, taskID: String, region: String, meterID: String, collectedAt: Date, readings: [Reading]) {
        self.schema = Self.currentSchema
        self.batchID = batchID
        self.taskID = taskID
        self.region = region
        self.meterID = meterID
        self.collectedAt = collectedAt
        self.readings = readings
    }
}

/// One value read from a meter, with what identifies it.
///
/// The natural key (meter id, OBIS code, attribute, capture time) is what the IMS deduplicates
/// single readings by.
public struct Reading: Codable, Sendable, Hashable {
    /// How `value` is to be read.
    public enum ValueType: String, Codable, Sendable, Hashable {
        /// An exact decimal number with the scaler applied (`"12345.678"`): never a binary float.
        case number
        case text
        case boolean
        /// Hexadecimal octets.
        case octets
        /// An ISO 8601 date-time.
        case dateTime = "date-time"
    }

    public var obis: String
    public var classID: Int
    public var attribute: Int
    /// When the meter captured the value (profile row time, or read time for registers).
    public var captureTime: Date
    public var valueType: ValueType
    public var value: String
    /// The unit symbol (`Wh`, `V`), absent for unitless values.
    public var unit: String?
    /// The profile row's status byte or register status, where the meter supplies one.
    public var status: Int?
    /// The profile (its OBIS code) whose row held the value; absent for values read on their own.
    /// Confirmed progress (`meter_progress`) is kept per profile.
    public var profile: String?

    public init(obis: String, classID: Int, attribute: Int, captureTime: Date, valueType: ValueType, value: String, unit: String? = nil, status: Int? = nil,
                profile: String? = nil) {
        self.obis = obis
        self.classID = classID
        self.attribute = attribute
        self.captureTime = captureTime
        self.valueType = valueType
        self.value = value
        self.unit = unit
        self.status = status
        self.profile = profile
    }

    /// `meter|obis|attribute|captureTime`: stable across redeliveries.
    public func naturalKey(meterID: String) -> String {
        "\(meterID)|\(obis)|\(attribute)|\(ContractDate.format(captureTime))"
    }
}
