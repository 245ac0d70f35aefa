import NIOCore

/// A COSEM attribute value in its A-XDR form (Blue Book §4.1.5, `Data ::= CHOICE`).
///
/// Octet strings and strings are slices of the buffer they were decoded from, so decoding a
/// large profile buffer does not copy them.
public enum DLMSData: Hashable, Sendable {
    case null
    case array(DLMSDataList)
    case structure(DLMSDataList)
    case boolean(Bool)
    case bitString(DLMSBitString)
    /// `double-long`
    case int32(Int32)
    /// `double-long-unsigned`
    case uint32(UInt32)
    case octetString(ByteBuffer)
    case visibleString(ByteBuffer)
    case utf8String(ByteBuffer)
    case bcd(Int8)
    /// `integer`
    case int8(Int8)
    /// `long`
    case int16(Int16)
    /// `unsigned`
    case uint8(UInt8)
    /// `long-unsigned`
    case uint16(UInt16)
    case compactArray(DLMSCompactArray)
    /// `long64`
    case int64(Int64)
    /// `long64-unsigned`
    case uint64(UInt64)
    case enumerated(UInt8)
    case float32(Float)
    case float64(Double)
    case dateTime(CosemDateTime)
    case date(CosemDate)
    case time(CosemTime)
    case dontCare

    /// The tag this value is encoded with.
    public var type: DLMSDataType {
        switch self {
        case .null: .nullData
        case .array: .array
        case .structure: .structure
        case .boolean: .boolean
        case .bitString: .bitString
        case .int32: .doubleLong
        case .uint32: .doubleLongUnsigned
        case .octetString: .octetString
        case .visibleString: .visibleString
        case .utf8String: .utf8String
        case .bcd: .bcd
        case .int8: .integer
        case .int16: .long
        case .uint8: .unsigned
        case .uint16: .longUnsigned
        case .compactArray: .compactArray
        case .int64: .long64
        case .uint64: .long64Unsigned
        case .enumerated: .enumerated
        case .float32: .float32
        case .float64: .float64
        case .dateTime: .dateTime
        case .date: .date
        case .time: .time
        case .dontCare: .dontCare
        }
    }
}

/// A bit string: `bitCount` bits, most significant bit of the first byte first.
public struct DLMSBitString: Hashable, Sendable, CustomStringConvertible {
    public private(set) var bitCount: Int
    public private(set) var bytes: [UInt8]

    /// - Precondition: `bytes.count == (bitCount + 7) / 8`.
    public init(bitCount: Int, bytes: [UInt8]) {
        precondition(bytes.count == (bitCount + 7) / 8, "bit string byte count does not match bit count")
        self.bitCount = bitCount
        self.bytes = bytes
    }

    public init(bits: [Bool]) {
        var bytes = [UInt8](repeating: 0, count: (bits.count + 7) / 8)
        for (i, bit) in bits.enumerated() where bit { bytes[i / 8] |= 0x80 >> UInt8(i % 8) }
        self.init(bitCount: bits.count, bytes: bytes)
    }

    public subscript(bit index: Int) -> Bool { bytes[index / 8] & (0x80 >> UInt8(index % 8)) != 0 }

    /// `0` and `1` characters, first bit first.
    public var description: String { String((0..<bitCount).map { self[bit: $0] ? "1" : "0" }) }
}

/// A compact array: a type description followed by untagged elements (Blue Book §4.1.5).
public struct DLMSCompactArray: Hashable, Sendable {
    public var typeDescription: DLMSTypeDescription
    public var elements: [DLMSData]

    public init(typeDescription: DLMSTypeDescription, elements: [DLMSData]) {
        self.typeDescription = typeDescription
        self.elements = elements
    }
}

// MARK: - Decoding


/// A bounds-checked cursor over the readable bytes of a buffer. Decoding through a raw pointer
/// instead of `ByteBuffer`'s per-read bookkeeping makes large profile buffers about twice as
/// fast; every read still checks the bytes left first.
@usableFromInline
struct AXDRReader {
    let bytes: UnsafeRawBufferPointer
    var position: Int
    var end: Int
    /// The buffer `bytes` belongs to, with the same reader index, for zero-copy string slices.
    let owner: ByteBuffer

    @inline(__always)
    var remaining: Int { end - position }

    @inline(__always)
    mutating func u8(_ context: StaticString) throws -> UInt8 {
        guard position < end else { throw DLMSError.truncated("\(context): need 1 byte, have 0") }
        defer { position += 1 }
        return bytes[position]
    }

    @inline(__always)
    mutating func integer<T: FixedWidthInteger>(_ type: T.Type, _ context: StaticString) throws -> T {
        let size = MemoryLayout<T>.size
        guard end - position >= size else { throw DLMSError.truncated("\(context): need \(size) byte(s), have \(end - position)") }
        defer { position += size }
        return T(bigEndian: bytes.loadUnaligned(fromByteOffset: position, as: T.self))
    }

    /// An A-XDR length, checked like `ByteBuffer.readAXDRLength`.
    @inline(__always)
    mutating func length(limit: Int, bytesPerUnit: Int, _ context: StaticString) throws -> Int {
        let first = try u8(context)
        var length: Int
        if first < 0x80 {
            length = Int(first)
        } else {
            let count = Int(first & 0x7F)
            guard count >= 1, count <= 4 else {
                throw DLMSError.lengthLimitExceeded("\(context): length of length \(count) is outside 1...4")
            }
            guard remaining >= count else { throw DLMSError.truncated("\(context): length needs \(count) more byte(s)") }
            length = 0
            for _ in 0..<count { length = (length << 8) | Int(bytes[position]); position += 1 }
        }
        guard length <= limit else { throw DLMSError.lengthLimitExceeded("\(context): length \(length) exceeds limit \(limit)") }
        if bytesPerUnit > 0 && length > remaining / bytesPerUnit {
            throw DLMSError.lengthLimitExceeded("\(context): length \(length) exceeds the \(remaining) byte(s) left")
        }
        return length
    }

    /// `count` bytes as a slice of the owning buffer; the caller has checked `count <= remaining`.
    @inline(__always)
    mutating func slice(_ count: Int) -> ByteBuffer {
        defer { position += count }
        return owner.getSlice(at: owner.readerIndex + position, length: count)!
    }

    mutating func dateTime() throws -> CosemDateTime {
        guard remaining >= 12 else { throw DLMSError.truncated("date-time needs 12 bytes, have \(remaining)") }
        return CosemDateTime(packedDate: try integer(UInt64.self, "date-time"), trailer: try integer(UInt32.self, "date-time"))
    }

    mutating func date() throws -> CosemDate {
        guard remaining >= 5 else { throw DLMSError.truncated("date needs 5 bytes, have \(remaining)") }
        return CosemDate(year: try integer(UInt16.self, "date"), month: try u8("date"), dayOfMonth: try u8("date"), dayOfWeek: try u8("date"))
    }

    mutating func time() throws -> CosemTime {
        let v = try integer(UInt32.self, "time")
        return CosemTime(hour: UInt8(v >> 24), minute: UInt8((v >> 16) & 0xFF), second: UInt8((v >> 8) & 0xFF), hundredths: UInt8(v & 0xFF))
    }
}

extension DLMSData {
    /// Decodes one tagged value with the default limits.
    /// - Throws: `DLMSError` (`truncated`, `unexpectedTag`, `lengthLimitExceeded`, `nestingLimitExceeded`, …).
    @inlinable
    public static func decode(from buffer: inout ByteBuffer) throws -> DLMSData {
        try decode(from: &buffer, limits: .default)
    }

    /// Decodes one tagged value, checking every length against `limits` before allocating.
    public static func decode(from buffer: inout ByteBuffer, limits: DLMSDecodingLimits) throws -> DLMSData {
        let owner = buffer
        let (value, consumed) = try owner.withUnsafeReadableBytes { bytes in
            var reader = AXDRReader(bytes: bytes, position: 0, end: bytes.count, owner: owner)
            let value = try decode(&reader, depth: 0, limits: limits)
            return (value, reader.position)
        }
        buffer.moveReaderIndex(forwardBy: consumed)
        return value
    }

    static func decode(_ r: inout AXDRReader, depth: Int, limits: DLMSDecodingLimits) throws -> DLMSData {
        let tag = try r.u8("data type tag")
        switch tag {
        case 0: return .null
        case 1, 2:
            r.position -= 1
            return try decodeTree(&r, depth: depth, limits: limits)
        case 3: return .boolean(try r.u8("boolean") != 0)
        case 4: return .bitString(try decodeBitString(&r, limits: limits))
        case 5: return .int32(try r.integer(Int32.self, "double-long"))
        case 6: return .uint32(try r.integer(UInt32.self, "double-long-unsigned"))
        case 9, 10, 12:
            let length = try r.length(limit: limits.maxByteLength, bytesPerUnit: 1, "string length")
            let slice = r.slice(length)
            return tag == 9 ? .octetString(slice) : tag == 10 ? .visibleString(slice) : .utf8String(slice)
        case 13: return .bcd(Int8(bitPattern: try r.u8("bcd")))
        case 15: return .int8(Int8(bitPattern: try r.u8("integer")))
        case 16: return .int16(try r.integer(Int16.self, "long"))
        case 17: return .uint8(try r.u8("unsigned"))
        case 18: return .uint16(try r.integer(UInt16.self, "long-unsigned"))
        case 19:
            guard depth < limits.maxDepth else { throw DLMSError.nestingLimitExceeded("data nested deeper than \(limits.maxDepth)") }
            return .compactArray(try decodeCompactArray(&r, depth: depth + 1, limits: limits))
        case 20: return .int64(try r.integer(Int64.self, "long64"))
        case 21: return .uint64(try r.integer(UInt64.self, "long64-unsigned"))
        case 22: return .enumerated(try r.u8("enum"))
        case 23: return .float32(Float(bitPattern: try r.integer(UInt32.self, "float32")))
        case 24: return .float64(Double(bitPattern: try r.integer(UInt64.self, "float64")))
        case 25: return .dateTime(try r.dateTime())
        case 26: return .date(try r.date())
        case 27: return .time(try r.time())
        case 255: return .dontCare
        default: throw DLMSError.unexpectedTag(tag, in: "data")
        }
    }

    /// Decodes an array or structure and everything in it into one `DecodedDLMSTree`: a node
    /// table grown as elements are found, instead of an array per row.
    static func decodeTree(_ r: inout AXDRReader, depth: Int, limits: DLMSDecodingLimits) throws -> DLMSData {
        // A node takes at least one byte (its tag); most take four or more.
        var builder = DLMSTreeBuilder(estimatedNodes: r.remaining / 4 + 8, owner: r.owner)
        let root = builder.reserve(1)
        do {
            try decodeNode(&r, into: &builder, slot: root, depth: depth, limits: limits)
        } catch {
            builder.discard()
            throw error
        }
        return builder.finish().value(at: root)
    }

    /// Decodes the value at the reader into `slot`.
    static func decodeNode(_ r: inout AXDRReader, into builder: inout DLMSTreeBuilder, slot: Int, depth: Int, limits: DLMSDecodingLimits) throws {
        let tag = try r.u8("data type tag")
        switch tag {
        case 1, 2: try decodeList(tag: tag, &r, into: &builder, slot: slot, depth: depth, limits: limits)
        case 4, 19: builder.set(slot, try decodeBoxed(tag: tag, &r, into: &builder, depth: depth, limits: limits))
        default: builder.set(slot, try decodeLeaf(tag: tag, &r, limits: limits))
        }
    }

    /// Decodes the elements of an array or structure (`tag`, already read) into consecutive
    /// slots. Elements that are not lists themselves are decoded right here, in the loop: a call
    /// per value was a large part of decoding a profile.
    @inline(never)
    static func decodeList(tag: UInt8, _ r: inout AXDRReader, into builder: inout DLMSTreeBuilder, slot: Int, depth: Int, limits: DLMSDecodingLimits) throws {
        guard depth < limits.maxDepth else { throw DLMSError.nestingLimitExceeded("data nested deeper than \(limits.maxDepth)") }
        let count = try r.length(limit: limits.maxElements, bytesPerUnit: 1, "array/structure element count")
        // Every element takes at least its tag byte: a count beyond the input is refused before allocating.
        guard count <= r.remaining else {
            throw DLMSError.truncated("array/structure of \(count) element(s) in \(r.remaining) byte(s)")
        }
        let first = builder.reserve(count)
        builder.set(slot, DecodedDLMSTree.Node(tag: tag, small: UInt32(count), large: UInt64(first)))
        for i in 0..<count {
            let element = try r.u8("data type tag")
            switch element {
            case 1, 2: try decodeList(tag: element, &r, into: &builder, slot: first + i, depth: depth + 1, limits: limits)
            case 4, 19: builder.set(first + i, try decodeBoxed(tag: element, &r, into: &builder, depth: depth + 1, limits: limits))
            default: builder.set(first + i, try decodeLeaf(tag: element, &r, limits: limits))
            }
        }
    }

    /// The node of a bit string (4) or compact array (19), tag already read: the value decoded
    /// and kept beside the node table.
    @inline(never)
    static func decodeBoxed(tag: UInt8, _ r: inout AXDRReader, into builder: inout DLMSTreeBuilder, depth: Int, limits: DLMSDecodingLimits) throws -> DecodedDLMSTree.Node {
        if tag == 4 {
            return DecodedDLMSTree.Node(tag: tag, small: builder.box(.bitString(try decodeBitString(&r, limits: limits))), large: 0)
        }
        guard depth < limits.maxDepth else { throw DLMSError.nestingLimitExceeded("data nested deeper than \(limits.maxDepth)") }
        return DecodedDLMSTree.Node(tag: tag, small: builder.box(.compactArray(try decodeCompactArray(&r, depth: depth + 1, limits: limits))), large: 0)
    }

    /// The node of a value held in the node itself (not a list, bit string or compact array),
    /// its tag already read.
    @inline(__always)
    static func decodeLeaf(tag: UInt8, _ r: inout AXDRReader, limits: DLMSDecodingLimits) throws -> DecodedDLMSTree.Node {
        var small: UInt32 = 0
        var large: UInt64 = 0
        switch tag {
        case 0, 255: break
        case 3: small = try r.u8("boolean") != 0 ? 1 : 0
        case 5: large = UInt64(bitPattern: Int64(try r.integer(Int32.self, "double-long")))
        case 6: large = UInt64(try r.integer(UInt32.self, "double-long-unsigned"))
        case 9, 10, 12:
            let length = try r.length(limit: limits.maxByteLength, bytesPerUnit: 1, "string length")
            small = UInt32(length)
            large = UInt64(r.position)
            r.position += length
        case 13: small = UInt32(try r.u8("bcd"))
        case 15: small = UInt32(try r.u8("integer"))
        case 16: small = UInt32(try r.integer(UInt16.self, "long"))
        case 17: small = UInt32(try r.u8("unsigned"))
        case 18: small = UInt32(try r.integer(UInt16.self, "long-unsigned"))
        case 20, 21: large = try r.integer(UInt64.self, tag == 20 ? "long64" : "long64-unsigned")
        case 22: small = UInt32(try r.u8("enum"))
        case 23: small = try r.integer(UInt32.self, "float32")
        case 24: large = try r.integer(UInt64.self, "float64")
        case 25:
            guard r.remaining >= 12 else { throw DLMSError.truncated("date-time needs 12 bytes, have \(r.remaining)") }
            large = try r.integer(UInt64.self, "date-time")
            small = try r.integer(UInt32.self, "date-time")
        case 26:
            guard r.remaining >= 5 else { throw DLMSError.truncated("date needs 5 bytes, have \(r.remaining)") }
            large = UInt64(try r.integer(UInt32.self, "date")) << 8 | UInt64(try r.u8("date"))
        case 27: small = try r.integer(UInt32.self, "time")
        default: throw DLMSError.unexpectedTag(tag, in: "data")
        }
        return DecodedDLMSTree.Node(tag: tag, small: small, large: large)
    }

    static func decodeBitString(_ r: inout AXDRReader, limits: DLMSDecodingLimits) throws -> DLMSBitString {
        let bits = try r.length(limit: limits.maxByteLength * 8, bytesPerUnit: 0, "bit-string length")
        let byteCount = (bits + 7) / 8
        guard byteCount <= r.remaining else { throw DLMSError.truncated("bit-string: need \(byteCount) byte(s), have \(r.remaining)") }
        let bytes = Array(UnsafeRawBufferPointer(rebasing: r.bytes[r.position..<(r.position + byteCount)]))
        r.position += byteCount
        return DLMSBitString(bitCount: bits, bytes: bytes)
    }

    static func decodeCompactArray(_ r: inout AXDRReader, depth: Int, limits: DLMSDecodingLimits) throws -> DLMSCompactArray {
        // The type description is short; decode it through a ByteBuffer view of the same bytes.
        var header = r.owner.getSlice(at: r.owner.readerIndex + r.position, length: r.remaining)!
        let before = header.readableBytes
        let description = try DLMSTypeDescription.decode(from: &header, depth: depth, limits: limits)
        r.position += before - header.readableBytes
        let minimum = description.minimumSize
        guard minimum > 0 else { throw DLMSError.invalidValue("compact-array element type has no encoded size") }
        let length = try r.length(limit: limits.maxByteLength, bytesPerUnit: 1, "compact-array contents length")
        guard length / minimum <= limits.maxElements else {
            throw DLMSError.lengthLimitExceeded("compact-array may hold \(length / minimum) elements, limit \(limits.maxElements)")
        }
        var contents = r
        contents.end = r.position + length
        r.position += length
        var elements: [DLMSData] = []
        elements.reserveCapacity(length / minimum)
        while contents.remaining > 0 {
            elements.append(try decodeUntagged(description, &contents, depth: depth, limits: limits))
        }
        return DLMSCompactArray(typeDescription: description, elements: elements)
    }

    static func decodeUntagged(_ description: DLMSTypeDescription, _ r: inout AXDRReader, depth: Int, limits: DLMSDecodingLimits) throws -> DLMSData {
        guard depth < limits.maxDepth else { throw DLMSError.nestingLimitExceeded("compact-array nested deeper than \(limits.maxDepth)") }
        switch description {
        case .simple(let type):
            switch type {
            case .nullData: return .null
            case .dontCare: return .dontCare
            case .boolean: return .boolean(try r.u8("boolean") != 0)
            case .bitString: return .bitString(try decodeBitString(&r, limits: limits))
            case .doubleLong: return .int32(try r.integer(Int32.self, "double-long"))
            case .doubleLongUnsigned: return .uint32(try r.integer(UInt32.self, "double-long-unsigned"))
            case .octetString, .visibleString, .utf8String:
                let length = try r.length(limit: limits.maxByteLength, bytesPerUnit: 1, "string length")
                let slice = r.slice(length)
                return type == .octetString ? .octetString(slice) : type == .visibleString ? .visibleString(slice) : .utf8String(slice)
            case .bcd: return .bcd(Int8(bitPattern: try r.u8("bcd")))
            case .integer: return .int8(Int8(bitPattern: try r.u8("integer")))
            case .long: return .int16(try r.integer(Int16.self, "long"))
            case .unsigned: return .uint8(try r.u8("unsigned"))
            case .longUnsigned: return .uint16(try r.integer(UInt16.self, "long-unsigned"))
            case .long64: return .int64(try r.integer(Int64.self, "long64"))
            case .long64Unsigned: return .uint64(try r.integer(UInt64.self, "long64-unsigned"))
            case .enumerated: return .enumerated(try r.u8("enum"))
            case .float32: return .float32(Float(bitPattern: try r.integer(UInt32.self, "float32")))
            case .float64: return .float64(Double(bitPattern: try r.integer(UInt64.self, "float64")))
            case .dateTime: return .dateTime(try r.dateTime())
            case .date: return .date(try r.date())
            case .time: return .time(try r.time())
            case .array, .structure, .compactArray:
                throw DLMSError.invalidValue("\(type) cannot be a simple type description")
            }
        case .array(let count, let element):
            guard Int(count) <= r.remaining / max(element.minimumSize, 1) else {
                throw DLMSError.lengthLimitExceeded("compact-array element of \(count) items exceeds the \(r.remaining) byte(s) left")
            }
            var items: [DLMSData] = []
            items.reserveCapacity(Int(count))
            for _ in 0..<count { items.append(try decodeUntagged(element, &r, depth: depth + 1, limits: limits)) }
            return .array(DLMSDataList(items))
        case .structure(let members):
            var items: [DLMSData] = []
            items.reserveCapacity(members.count)
            for m in members { items.append(try decodeUntagged(m, &r, depth: depth + 1, limits: limits)) }
            return .structure(DLMSDataList(items))
        }
    }
}

// MARK: - Convenience

extension DLMSData {
    /// An octet string holding `bytes`.
    public static func octetString(bytes: some Sequence<UInt8>) -> DLMSData { .octetString(ByteBuffer(dlmsBytes: bytes)) }
    /// A visible string holding the ASCII of `text`.
    public static func visibleString(text: String) -> DLMSData { .visibleString(ByteBuffer(dlmsBytes: text.utf8)) }
    /// A 12-byte octet string holding a date-time, as most meters encode clock values.
    public static func octetString(dateTime: CosemDateTime) -> DLMSData { .octetString(dateTime.octetString) }
    /// An octet string holding a logical name.
    public static func octetString(obis: OBISCode) -> DLMSData { .octetString(bytes: obis.bytes) }

    /// The elements of an array, structure or compact array.
    public var elements: DLMSDataList? {
        switch self {
        case .array(let e), .structure(let e): e
        case .compactArray(let c): DLMSDataList(c.elements)
        default: nil
        }
    }

    /// Any integer or enum value widened to Int64 (nil for uint64 above Int64.max).
    @inlinable
    public var integerValue: Int64? {
        switch self {
        case .int8(let v), .bcd(let v): Int64(v)
        case .int16(let v): Int64(v)
        case .int32(let v): Int64(v)
        case .int64(let v): v
        case .uint8(let v), .enumerated(let v): Int64(v)
        case .uint16(let v): Int64(v)
        case .uint32(let v): Int64(v)
        case .uint64(let v): Int64(exactly: v)
        default: nil
        }
    }

    /// Any numeric value as a Double.
    public var doubleValue: Double? {
        switch self {
        case .float32(let v): Double(v)
        case .float64(let v): v
        case .uint64(let v): Double(v)
        default: integerValue.map(Double.init)
        }
    }

    public var boolValue: Bool? { if case .boolean(let b) = self { b } else { nil } }

    /// The bytes of an octet, visible or UTF-8 string.
    public var bytes: [UInt8]? {
        switch self {
        case .octetString(let b), .visibleString(let b), .utf8String(let b): Array(b.readableBytesView)
        default: nil
        }
    }

    /// A visible or UTF-8 string (or an octet string) as text.
    public var stringValue: String? {
        switch self {
        case .octetString(let b), .visibleString(let b), .utf8String(let b): String(decoding: b.readableBytesView, as: UTF8.self)
        default: nil
        }
    }

    /// A date-time, whether encoded as `date-time` or as a 12-byte octet string.
    public var dateTimeValue: CosemDateTime? {
        switch self {
        case .dateTime(let d): d
        case .octetString(let b) where b.readableBytes == 12: try? CosemDateTime(octetString: b)
        default: nil
        }
    }

    /// A logical name encoded as a 6-byte octet string.
    public var obisValue: OBISCode? {
        if case .octetString(let b) = self, b.readableBytes == 6 { return try? OBISCode(bytes: b.readableBytesView) }
        return nil
    }
}
