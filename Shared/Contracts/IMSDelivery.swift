import Foundation

/// The IMS's native JSON API as the uploader speaks it and ims-sim serves it.
///
/// `POST /v1/readings` carries an ``IMSReadingsRequest``, `POST /v1/results` an
/// ``IMSResultsRequest``; both carry the request's idempotency key in the body and in the
/// `Idempotency-Key` header, and are answered with an ``IMSDeliveryReply``:
/// - 200 `OK`: every item stored (or already held: duplicates are not errors);
/// - 200 `PARTIAL`: some items rejected permanently, listed with their position and reason;
/// - 422 `FAILED`: every item rejected permanently, each listed;
/// - any other status: nothing was decided; the request may be sent again as it was.
public enum IMSAPI {
    public static let readingsPath = "/v1/readings"
    public static let resultsPath = "/v1/results"
    public static let idempotencyKeyHeader = "Idempotency-Key"
}

/// Reading batches for the IMS, each as the collector published it.
public struct IMSReadingsRequest: VersionedContract {
    public static let schemaName = "ims-readings"
    public static let supportedMajorVersions = 1...1
    public static let currentMajorVersion = 1

    public var schema: String
    /// The idempotency key: the same request sent again carries the same id.
    public var requestID: String
    public var batches: [IMSItem<ReadingBatch>]

    public init(requestID: String, batches: [ReadingBatch]) {
        self.schema = Self.currentSchema
        self.requestID = requestID
        self.batches = batches.map { .valid($0) }
    }
}

/// Task results (command outcomes among them) for the IMS.
public struct IMSResultsRequest: VersionedContract {
    public static let schemaName = "ims-results"
    public static let supportedMajorVersions = 1...1
    public static let currentMajorVersion = 1

    public var schema: String
    public var requestID: String
    public var results: [IMSItem<TaskResult>]

    public init(requestID: String, results: [TaskResult]) {
        self.schema = Self.currentSchema
        self.requestID = requestID
        self.results = results.map { .valid($0) }
    }
}

/// The raw bodies the uploader sends: the messages' JSON as consumed from Kafka, placed in the
/// request without decoding and re-encoding them (they are contracts already).
public enum IMSRequestBody {
    /// `{"schema":"ims-readings/v1","requestID":…,"batches":[…]}` around `rawBatches`.
    public static func readings(requestID: String, rawBatches: [[UInt8]]) -> [UInt8] {
        body(schema: IMSReadingsRequest.currentSchema, requestID: requestID, member: "batches", items: rawBatches)
    }

    /// `{"schema":"ims-results/v1","requestID":…,"results":[…]}` around `rawResults`.
    public static func results(requestID: String, rawResults: [[UInt8]]) -> [UInt8] {
        body(schema: IMSResultsRequest.currentSchema, requestID: requestID, member: "results", items: rawResults)
    }

    private static func body(schema: String, requestID: String, member: String, items: [[UInt8]]) -> [UInt8] {
        var writer = ContractJSONWriter(capacity: items.reduce(96) { $0 + $1.count + 1 })
        writer.raw(#"{"schema":"#.utf8)
        writer.string(schema)
        writer.raw(#","requestID":"#.utf8)
        writer.string(requestID)
        writer.raw(",\"\(member)\":[".utf8)
        for (index, item) in items.enumerated() {
            if index > 0 { writer.raw(CollectionOfOne(UInt8(ascii: ","))) }
            writer.raw(item)
        }
        writer.raw("]}".utf8)
        return writer.bytes
    }
}

/// One item of a request as the IMS reads it: the contract, or why it could not be read (an
/// unknown version, a missing field). An unreadable item is rejected on its own; it does not
/// fail the items beside it.
public enum IMSItem<Payload: VersionedContract & Hashable>: Codable, Sendable, Hashable {
    case valid(Payload)
    /// `id` is the item's `batchID` or `taskID` where it had one.
    case invalid(id: String?, reason: String)

    private struct Header: Decodable {
        var schema: String?
        var batchID: String?
        var taskID: String?
    }

    public init(from decoder: any Decoder) throws {
        let header = try? Header(from: decoder)
        let id = header?.batchID ?? header?.taskID
        guard let schema = header?.schema else {
            self = .invalid(id: id, reason: "no \"schema\" field; expected \(Payload.currentSchema)")
            return
        }
        do {
            let (name, major) = try ContractCoder.parse(schema)
            guard name == Payload.schemaName, Payload.supportedMajorVersions.contains(major) else {
                self = .invalid(id: id, reason: "\(schema) is not accepted here (expected \(Payload.currentSchema))")
                return
            }
            self = .valid(try Payload(from: decoder))
        } catch {
            self = .invalid(id: id, reason: "\(error)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .valid(let payload):
            try payload.encode(to: encoder)
        case .invalid(let id, let reason):
            throw EncodingError.invalidValue(self, .init(codingPath: encoder.codingPath, debugDescription: "an invalid item (\(id ?? "no id")) cannot be sent: \(reason)"))
        }
    }
}

/// The IMS's answer to a delivery request.
public struct IMSDeliveryReply: VersionedContract, Hashable {
    public static let schemaName = "ims-reply"
    public static let supportedMajorVersions = 1...1
    public static let currentMajorVersion = 1

    public enum Status: String, Codable, Sendable, Hashable {
        case ok = "OK"
        case partial = "PARTIAL"
        case failed = "FAILED"
    }

    /// A permanent rejection of one item: sending it again will not help.
    public struct Rejection: Codable, Sendable, Hashable {
        /// The item's position in the request.
        public var index: Int
        /// Its `batchID` or `taskID`, where it had one.
        public var id: String?
        /// Machine-readable (`meter.unknown`, `item.invalid`, `capture-time.future`).
        public var code: String
        public var reason: String

        public init(index: Int, id: String?, code: String, reason: String) {
            self.index = index
            self.id = id
            self.code = code
            self.reason = reason
        }
    }

    public var schema: String
    public var requestID: String
    public var status: Status
    /// Items accepted (stored now or held already).
    public var accepted: Int
    /// Readings (or results) stored by this request.
    public var stored: Int
    /// Readings (or results) the IMS already held: redelivery, deduplicated.
    public var duplicates: Int
    public var rejected: [Rejection]
    /// Whether this reply was kept from an earlier request with the same idempotency key.
    public var replayed: Bool

    public init(requestID: String, status: Status, accepted: Int, stored: Int, duplicates: Int, rejected: [Rejection], replayed: Bool = false) {
        self.schema = Self.currentSchema
        self.requestID = requestID
        self.status = status
        self.accepted = accepted
        self.stored = stored
        self.duplicates = duplicates
        self.rejected = rejected
        self.replayed = replayed
    }
}

/// A message the uploader could not deliver and will not retry, on `hes.readings.dlq` (keyed
/// by meter id): the IMS rejected it permanently, or it was not a contract this build reads.
public struct DeadLetter: VersionedContract, Hashable {
    public static let schemaName = "dead-letter"
    public static let supportedMajorVersions = 1...1
    public static let currentMajorVersion = 1

    public var schema: String
    /// Where it was read: `topic/partition/offset`.
    public var source: String
    /// The batch or task id, where the message had one.
    public var id: String?
    public var meterID: String?
    /// `ims.<code>` for the IMS's rejections, `contract.<code>` for unreadable messages.
    public var code: String
    public var reason: String
    public var rejectedAt: Date
    /// The message as it was consumed (UTF-8 text of its JSON, or hexadecimal if it was not UTF-8).
    public var payload: String

    public init(source: String, id: String?, meterID: String?, code: String, reason: String, rejectedAt: Date, payload: [UInt8]) {
        self.schema = Self.currentSchema
        self.source = source
        self.id = id
        self.meterID = meterID
        self.code = code
        self.reason = reason
        self.rejectedAt = rejectedAt
        if let text = String(validating: payload, as: UTF8.self) {
            self.payload = text
        } else {
            let digits = Array("0123456789abcdef".utf8)
            self.payload = String(decoding: payload.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0x0F)]] }, as: UTF8.self)
        }
    }
}
