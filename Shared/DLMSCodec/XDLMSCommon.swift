import COSEM
import NIOCore

// MARK: - Invoke id

/// `Invoke-Id-And-Priority` (Green Book 9.3.6): invoke id in bits 0–3, service class in
/// bit 6 (1 = confirmed), priority in bit 7 (1 = high).
public struct InvokeIDAndPriority: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public init(invokeID: UInt8, confirmed: Bool = true, highPriority: Bool = false) {
        rawValue = (invokeID & 0x0F) | (confirmed ? 0x40 : 0) | (highPriority ? 0x80 : 0)
    }

    public var invokeID: UInt8 { rawValue & 0x0F }
    public var isConfirmed: Bool { rawValue & 0x40 != 0 }
    public var isHighPriority: Bool { rawValue & 0x80 != 0 }

    public var description: String { "id=\(invokeID)\(isConfirmed ? " confirmed" : "")\(isHighPriority ? " high" : "")" }

    @inlinable
    static func decode(from buffer: inout ByteBuffer) throws -> InvokeIDAndPriority {
        InvokeIDAndPriority(rawValue: try buffer.readDLMSInteger("invoke-id-and-priority"))
    }
}

// MARK: - Results as values

/// `Data-Access-Result` (Green Book 9.3.6): the outcome a meter reports for one attribute.
public struct DataAccessResult: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let success = DataAccessResult(rawValue: 0)
    public static let hardwareFault = DataAccessResult(rawValue: 1)
    public static let temporaryFailure = DataAccessResult(rawValue: 2)
    public static let readWriteDenied = DataAccessResult(rawValue: 3)
    public static let objectUndefined = DataAccessResult(rawValue: 4)
    public static let objectClassInconsistent = DataAccessResult(rawValue: 9)
    public static let objectUnavailable = DataAccessResult(rawValue: 11)
    public static let typeUnmatched = DataAccessResult(rawValue: 12)
    public static let scopeOfAccessViolated = DataAccessResult(rawValue: 13)
    public static let dataBlockUnavailable = DataAccessResult(rawValue: 14)
    public static let longGetAborted = DataAccessResult(rawValue: 15)
    public static let noLongGetInProgress = DataAccessResult(rawValue: 16)
    public static let longSetAborted = DataAccessResult(rawValue: 17)
    public static let noLongSetInProgress = DataAccessResult(rawValue: 18)
    public static let dataBlockNumberInvalid = DataAccessResult(rawValue: 19)
    public static let otherReason = DataAccessResult(rawValue: 250)

    public var name: String? {
        switch rawValue {
        case 0: "success"
        case 1: "hardware-fault"
        case 2: "temporary-failure"
        case 3: "read-write-denied"
        case 4: "object-undefined"
        case 9: "object-class-inconsistent"
        case 11: "object-unavailable"
        case 12: "type-unmatched"
        case 13: "scope-of-access-violated"
        case 14: "data-block-unavailable"
        case 15: "long-get-aborted"
        case 16: "no-long-get-in-progress"
        case 17: "long-set-aborted"
        case 18: "no-long-set-in-progress"
        case 19: "data-block-number-invalid"
        case 250: "other-reason"
        default: nil
        }
    }

    /// Whether asking again later may succeed.
    public var isRetriable: Bool { self == .temporaryFailure || self == .longGetAborted || self == .longSetAborted }
    public var description: String { name ?? "data-access-result(\(rawValue))" }
}

/// `Action-Result` (Green Book 9.3.6).
public struct ActionResult: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let success = ActionResult(rawValue: 0)
    public static let hardwareFault = ActionResult(rawValue: 1)
    public static let temporaryFailure = ActionResult(rawValue: 2)
    public static let readWriteDenied = ActionResult(rawValue: 3)
    public static let objectUndefined = ActionResult(rawValue: 4)
    public static let objectClassInconsistent = ActionResult(rawValue: 9)
    public static let objectUnavailable = ActionResult(rawValue: 11)
    public static let typeUnmatched = ActionResult(rawValue: 12)
    public static let scopeOfAccessViolated = ActionResult(rawValue: 13)
    public static let dataBlockUnavailable = ActionResult(rawValue: 14)
    public static let longActionAborted = ActionResult(rawValue: 15)
    public static let noLongActionInProgress = ActionResult(rawValue: 16)
    public static let otherReason = ActionResult(rawValue: 250)

    public var name: String? {
        switch rawValue {
        case 0: "success"
        case 1: "hardware-fault"
        case 2: "temporary-failure"
        case 3: "read-write-denied"
        case 4: "object-undefined"
        case 9: "object-class-inconsistent"
        case 11: "object-unavailable"
        case 12: "type-unmatched"
        case 13: "scope-of-access-violated"
        case 14: "data-block-unavailable"
        case 15: "long-action-aborted"
        case 16: "no-long-action-in-progress"
        case 250: "other-reason"
        default: nil
        }
    }

    public var description: String { name ?? "action-result(\(rawValue))" }
}

/// `Get-Data-Result ::= CHOICE { data [0] Data, data-access-result [1] Data-Access-Result }`.
public enum GetDataResult: Hashable, Sendable, Codable {
    case data(DLMSData)
    case dataAccessResult(DataAccessResult)

    static func decode(from buffer: inout ByteBuffer, limits: DLMSDecodingLimits) throws -> GetDataResult {
        let choice: UInt8 = try buffer.readDLMSInteger("get-data-result choice")
        switch choice {
        case 0: return .data(try DLMSData.decode(from: &buffer, limits: limits))
        case 1: return .dataAccessResult(DataAccessResult(rawValue: try buffer.readDLMSInteger("data-access-result")))
        default: throw DLMSError.unexpectedTag(choice, in: "get-data-result")
        }
    }

    func encode(into buffer: inout ByteBuffer) {
        switch self {
        case .data(let d):
            buffer.writeInteger(UInt8(0))
            d.encode(into: &buffer)
        case .dataAccessResult(let r):
            buffer.writeInteger(UInt8(1))
            buffer.writeInteger(r.rawValue)
        }
    }
}

// MARK: - Selective access

/// `Selective-Access-Descriptor` (Green Book 9.3.6): an access selector and its parameters.
/// Typed forms for profile generic buffers: `RangeDescriptor` (selector 1), `EntryDescriptor` (selector 2).
public struct AccessSelection: Hashable, Sendable, Codable {
    public var selector: UInt8
    public var parameters: DLMSData

    public init(selector: UInt8, parameters: DLMSData) {
        self.selector = selector
        self.parameters = parameters
    }

    public init(_ range: RangeDescriptor) { self.init(selector: 1, parameters: range.data) }
    public init(_ entry: EntryDescriptor) { self.init(selector: 2, parameters: entry.data) }

    /// The range descriptor, when `selector` is 1 and the parameters are well formed.
    public var range: RangeDescriptor? { selector == 1 ? try? RangeDescriptor(data: parameters) : nil }
    /// The entry descriptor, when `selector` is 2 and the parameters are well formed.
    public var entry: EntryDescriptor? { selector == 2 ? try? EntryDescriptor(data: parameters) : nil }

    /// Reads the A-XDR OPTIONAL form: 0x00 (absent) or 0x01, selector, data.
    static func decodeOptional(from buffer: inout ByteBuffer, limits: DLMSDecodingLimits) throws -> AccessSelection? {
        let present: UInt8 = try buffer.readDLMSInteger("access-selection presence")
        switch present {
        case 0: return nil
        case 1:
            let selector: UInt8 = try buffer.readDLMSInteger("access-selector")
            return AccessSelection(selector: selector, parameters: try DLMSData.decode(from: &buffer, limits: limits))
        default: throw DLMSError.invalidValue("access-selection presence flag is \(present), expected 0 or 1")
        }
    }

    static func encodeOptional(_ selection: AccessSelection?, into buffer: inout ByteBuffer) {
        guard let selection else { buffer.writeInteger(UInt8(0)); return }
        buffer.writeInteger(UInt8(1))
        buffer.writeInteger(selection.selector)
        selection.parameters.encode(into: &buffer)
    }
}

/// Range descriptor (Blue Book §4.3.6, profile generic `buffer` access selector 1).
public struct RangeDescriptor: Hashable, Sendable, Codable {
    public var restrictingObject: CaptureObjectDefinition
    public var from: DLMSData
    public var to: DLMSData
    /// Empty selects all columns.
    public var selectedValues: [CaptureObjectDefinition]

    public init(restrictingObject: CaptureObjectDefinition, from: DLMSData, to: DLMSData, selectedValues: [CaptureObjectDefinition] = []) {
        self.restrictingObject = restrictingObject
        self.from = from
        self.to = to
        self.selectedValues = selectedValues
    }

    /// A clock range over the usual restricting object (the clock's time attribute).
    public init(from: CosemDateTime, to: CosemDateTime, selectedValues: [CaptureObjectDefinition] = []) {
        self.init(restrictingObject: CaptureObjectDefinition(classID: .clock, logicalName: .clock, attributeIndex: 2),
                  from: .octetString(dateTime: from), to: .octetString(dateTime: to), selectedValues: selectedValues)
    }

    public var data: DLMSData {
        .structure([restrictingObject.data, from, to, .array(DLMSDataList(selectedValues.map(\.data)))])
    }

    public init(data: DLMSData) throws {
        guard case .structure(let e) = data, e.count == 4, case .array(let selected) = e[3] else {
            throw DLMSError.invalidValue("range descriptor is structure { restricting object, from, to, array of selected values }")
        }
        self.init(restrictingObject: try CaptureObjectDefinition(data: e[0]), from: e[1], to: e[2],
                  selectedValues: try selected.map(CaptureObjectDefinition.init(data:)))
    }
}

/// Entry descriptor (Blue Book §4.3.6, profile generic `buffer` access selector 2). Entries and
/// values count from 1; 0 as an upper bound means "to the last".
public struct EntryDescriptor: Hashable, Sendable, Codable {
    public var fromEntry: UInt32
    public var toEntry: UInt32
    public var fromSelectedValue: UInt16
    public var toSelectedValue: UInt16

    public init(fromEntry: UInt32, toEntry: UInt32, fromSelectedValue: UInt16 = 1, toSelectedValue: UInt16 = 0) {
        self.fromEntry = fromEntry
        self.toEntry = toEntry
        self.fromSelectedValue = fromSelectedValue
        self.toSelectedValue = toSelectedValue
    }

    public var data: DLMSData {
        .structure([.uint32(fromEntry), .uint32(toEntry), .uint16(fromSelectedValue), .uint16(toSelectedValue)])
    }

    public init(data: DLMSData) throws {
        guard case .structure(let e) = data, e.count == 4,
              case .uint32(let a) = e[0], case .uint32(let b) = e[1], case .uint16(let c) = e[2], case .uint16(let d) = e[3] else {
            throw DLMSError.invalidValue("entry descriptor is structure { double-long-unsigned ×2, long-unsigned ×2 }")
        }
        self.init(fromEntry: a, toEntry: b, fromSelectedValue: c, toSelectedValue: d)
    }
}

/// `Cosem-Attribute-Descriptor-With-Selection`.
public struct AttributeWithSelection: Hashable, Sendable, Codable {
    public var attribute: CosemAttributeDescriptor
    public var accessSelection: AccessSelection?

    public init(_ attribute: CosemAttributeDescriptor, accessSelection: AccessSelection? = nil) {
        self.attribute = attribute
        self.accessSelection = accessSelection
    }

    static func decode(from buffer: inout ByteBuffer, limits: DLMSDecodingLimits) throws -> AttributeWithSelection {
        let attribute = try CosemAttributeDescriptor.decode(from: &buffer)
        return AttributeWithSelection(attribute, accessSelection: try AccessSelection.decodeOptional(from: &buffer, limits: limits))
    }

    func encode(into buffer: inout ByteBuffer) {
        attribute.encode(into: &buffer)
        AccessSelection.encodeOptional(accessSelection, into: &buffer)
    }
}

// MARK: - Data blocks

/// `DataBlock-G` (GET with block transfer).
public struct DataBlockG: Hashable, Sendable, Codable {
    public enum Result: Hashable, Sendable, Codable {
        case rawData(DLMSBytes)
        case dataAccessResult(DataAccessResult)
    }

    public var lastBlock: Bool
    public var blockNumber: UInt32
    public var result: Result

    public init(lastBlock: Bool, blockNumber: UInt32, result: Result) {
        self.lastBlock = lastBlock
        self.blockNumber = blockNumber
        self.result = result
    }

    static func decode(from buffer: inout ByteBuffer, limits: DLMSDecodingLimits) throws -> DataBlockG {
        let last: UInt8 = try buffer.readDLMSInteger("last-block")
        let number: UInt32 = try buffer.readDLMSInteger("block-number")
        let choice: UInt8 = try buffer.readDLMSInteger("DataBlock-G result choice")
        switch choice {
        case 0:
            let length = try buffer.readAXDRLength(limit: limits.maxByteLength, "raw-data length")
            return DataBlockG(lastBlock: last != 0, blockNumber: number, result: .rawData(DLMSBytes(buffer.readBytes(length: length)!)))
        case 1:
            return DataBlockG(lastBlock: last != 0, blockNumber: number, result: .dataAccessResult(DataAccessResult(rawValue: try buffer.readDLMSInteger("data-access-result"))))
        default:
            throw DLMSError.unexpectedTag(choice, in: "DataBlock-G result")
        }
    }

    func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(lastBlock ? 1 : 0))
        buffer.writeInteger(blockNumber)
        switch result {
        case .rawData(let bytes):
            buffer.writeInteger(UInt8(0))
            buffer.writeAXDROctetString(bytes.bytes)
        case .dataAccessResult(let r):
            buffer.writeInteger(UInt8(1))
            buffer.writeInteger(r.rawValue)
        }
    }
}

/// `DataBlock-SA` (SET and ACTION with block transfer).
public struct DataBlockSA: Hashable, Sendable, Codable {
    public var lastBlock: Bool
    public var blockNumber: UInt32
    public var rawData: DLMSBytes

    public init(lastBlock: Bool, blockNumber: UInt32, rawData: DLMSBytes) {
        self.lastBlock = lastBlock
        self.blockNumber = blockNumber
        self.rawData = rawData
    }

    static func decode(from buffer: inout ByteBuffer, limits: DLMSDecodingLimits) throws -> DataBlockSA {
        let last: UInt8 = try buffer.readDLMSInteger("last-block")
        let number: UInt32 = try buffer.readDLMSInteger("block-number")
        let length = try buffer.readAXDRLength(limit: limits.maxByteLength, "raw-data length")
        return DataBlockSA(lastBlock: last != 0, blockNumber: number, rawData: DLMSBytes(buffer.readBytes(length: length)!))
    }

    func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(lastBlock ? 1 : 0))
        buffer.writeInteger(blockNumber)
        buffer.writeAXDROctetString(rawData.bytes)
    }
}

// MARK: - Sequences

extension ByteBuffer {
    /// Reads an A-XDR `SEQUENCE OF` with a count bounded by the limits and the bytes left.
    mutating func readSequence<T>(limits: DLMSDecodingLimits, _ context: StaticString, _ element: (inout ByteBuffer) throws -> T) throws -> [T] {
        let count = try readAXDRLength(limit: limits.maxElements, bytesPerUnit: 1, context)
        var out: [T] = []
        out.reserveCapacity(count)
        for _ in 0..<count { out.append(try element(&self)) }
        return out
    }

    mutating func writeSequence<T>(_ items: [T], _ element: (T, inout ByteBuffer) -> Void) {
        writeAXDRLength(items.count)
        for item in items { element(item, &self) }
    }
}
