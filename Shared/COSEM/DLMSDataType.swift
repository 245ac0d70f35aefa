import NIOCore

/// The A-XDR data type tags (Blue Book §4.1.5, `Data ::= CHOICE`).
public enum DLMSDataType: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case nullData = 0
    case array = 1
    case structure = 2
    case boolean = 3
    case bitString = 4
    case doubleLong = 5
    case doubleLongUnsigned = 6
    case octetString = 9
    case visibleString = 10
    case utf8String = 12
    case bcd = 13
    case integer = 15
    case long = 16
    case unsigned = 17
    case longUnsigned = 18
    case compactArray = 19
    case long64 = 20
    case long64Unsigned = 21
    case enumerated = 22
    case float32 = 23
    case float64 = 24
    case dateTime = 25
    case date = 26
    case time = 27
    case dontCare = 255

    /// The Blue Book name, e.g. `double-long-unsigned`; used as the JSON key.
    public var name: String {
        switch self {
        case .nullData: "null-data"
        case .array: "array"
        case .structure: "structure"
        case .boolean: "boolean"
        case .bitString: "bit-string"
        case .doubleLong: "double-long"
        case .doubleLongUnsigned: "double-long-unsigned"
        case .octetString: "octet-string"
        case .visibleString: "visible-string"
        case .utf8String: "utf8-string"
        case .bcd: "bcd"
        case .integer: "integer"
        case .long: "long"
        case .unsigned: "unsigned"
        case .longUnsigned: "long-unsigned"
        case .compactArray: "compact-array"
        case .long64: "long64"
        case .long64Unsigned: "long64-unsigned"
        case .enumerated: "enum"
        case .float32: "float32"
        case .float64: "float64"
        case .dateTime: "date-time"
        case .date: "date"
        case .time: "time"
        case .dontCare: "dont-care"
        }
    }

    public init?(name: String) {
        guard let match = Self.allCases.first(where: { $0.name == name }) else { return nil }
        self = match
    }

    public var description: String { name }

    /// The encoded size of a value of this type when it is fixed, without the tag.
    public var fixedSize: Int? {
        switch self {
        case .nullData, .dontCare: 0
        case .boolean, .bcd, .integer, .unsigned, .enumerated: 1
        case .long, .longUnsigned: 2
        case .doubleLong, .doubleLongUnsigned, .float32, .time: 4
        case .date: 5
        case .long64, .long64Unsigned, .float64: 8
        case .dateTime: 12
        case .array, .structure, .bitString, .octetString, .visibleString, .utf8String, .compactArray: nil
        }
    }
}

/// The type of the elements of a compact array (Blue Book §4.1.5, `TypeDescription`).
public indirect enum DLMSTypeDescription: Hashable, Sendable {
    case simple(DLMSDataType)
    case array(count: UInt16, element: DLMSTypeDescription)
    case structure([DLMSTypeDescription])

    static func decode(from buffer: inout ByteBuffer, depth: Int, limits: DLMSDecodingLimits) throws -> DLMSTypeDescription {
        guard depth < limits.maxDepth else { throw DLMSError.nestingLimitExceeded("type description nested deeper than \(limits.maxDepth)") }
        let tag: UInt8 = try buffer.readDLMSInteger("type description tag")
        guard let type = DLMSDataType(rawValue: tag) else { throw DLMSError.unexpectedTag(tag, in: "type description") }
        switch type {
        case .array:
            let count: UInt16 = try buffer.readDLMSInteger("type description array count")
            return .array(count: count, element: try decode(from: &buffer, depth: depth + 1, limits: limits))
        case .structure:
            let count = try buffer.readAXDRLength(limit: limits.maxElements, bytesPerUnit: 1, "type description structure count")
            var elements: [DLMSTypeDescription] = []
            elements.reserveCapacity(count)
            for _ in 0..<count { elements.append(try decode(from: &buffer, depth: depth + 1, limits: limits)) }
            return .structure(elements)
        case .compactArray:
            throw DLMSError.unsupported("compact-array nested in a compact-array type description")
        default:
            return .simple(type)
        }
    }

    private static func saturating(_ r: (partialValue: Int, overflow: Bool)) -> Int {
        r.overflow ? Int.max / 2 : min(r.partialValue, Int.max / 2)
    }

    /// A lower bound on the encoded size of one value of this type, used to bound element counts.
    var minimumSize: Int {
        switch self {
        case .simple(let type): type.fixedSize ?? 1
        case .array(let count, let element):
            Self.saturating(Int(count).multipliedReportingOverflow(by: element.minimumSize))
        case .structure(let elements):
            elements.reduce(0) { Self.saturating($0.addingReportingOverflow($1.minimumSize)) }
        }
    }
}

/// Bounds applied while decoding untrusted input. Lengths are checked against them — and
/// against the bytes actually left — before anything is allocated.
public struct DLMSDecodingLimits: Hashable, Sendable {
    /// Deepest nesting of arrays and structures. Default: 32.
    public var maxDepth: Int
    /// Most elements in one array, structure or compact array. Default: 65,535.
    public var maxElements: Int
    /// Longest octet string, string or bit string in bytes. Default: 1 MiB.
    public var maxByteLength: Int

    public init(maxDepth: Int = 32, maxElements: Int = 65_535, maxByteLength: Int = 1 << 20) {
        self.maxDepth = maxDepth
        self.maxElements = maxElements
        self.maxByteLength = maxByteLength
    }

    public static let `default` = DLMSDecodingLimits()
}
