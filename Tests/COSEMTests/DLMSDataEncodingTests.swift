import COSEM
import NIOCore
import TestSupport
import Testing

/// The A-XDR encoder writes through a raw pointer into the buffer's free capacity and, when that
/// is too small, computes the exact size and writes again. These compare it byte for byte with
/// `ReferenceAXDR` — the encoder it replaced, one `ByteBuffer` write at a time — on random values
/// of every type, into buffers of every relevant capacity, for built lists and decoded trees.
@Suite struct DLMSDataEncodingTests {
    /// Free capacities around the encoded size: none, one byte, half, one byte short (the write
    /// overflows at its very end), exact, and more than enough.
    static func capacities(for size: Int) -> [Int] {
        Array(Set([0, 1, size / 2, max(size - 1, 0), size, size + 17])).sorted()
    }

    /// Encodes `value` after `prefix` bytes into a buffer with `free` bytes of room left.
    static func encode(_ value: DLMSData, prefix: Int, free: Int) -> [UInt8] {
        var buffer = ByteBufferAllocator().buffer(capacity: prefix + free)
        buffer.writeBytes([UInt8](repeating: 0xEE, count: prefix))
        value.encode(into: &buffer)
        buffer.moveReaderIndex(forwardBy: prefix)
        return Array(buffer.readableBytesView)
    }

    @Test func randomValuesEncodeAsTheReferenceDoesAtEveryCapacity() throws {
        var generator = SeededGenerator(seed: 20)
        for _ in 0..<400 {
            let value = RandomDLMSData.value(depth: 0, using: &generator)
            var reference = ByteBuffer()
            ReferenceAXDR.encode(value, into: &reference)
            let expected = Array(reference.readableBytesView)
            #expect(value.encodedSize == expected.count)
            for free in Self.capacities(for: expected.count) {
                for prefix in [0, 3] {
                    let bytes = Self.encode(value, prefix: prefix, free: free)
                    #expect(bytes == expected, "\(value) with \(free) byte(s) free after \(prefix)")
                }
            }
            // Decoded, the same value is a node table (strings are offsets into the input); it
            // must encode to the same bytes along the same paths.
            var input = reference
            let decoded = try DLMSData.decode(from: &input)
            #expect(decoded.encodedSize == expected.count)
            for free in Self.capacities(for: expected.count) {
                #expect(Self.encode(decoded, prefix: 1, free: free) == expected)
            }
        }
    }

    /// The load profile of the `codec.decode_lp96` benchmark: 96 rows of a 12-byte date-time
    /// octet string, two double-long-unsigned and an unsigned.
    @Test func aLoadProfileEncodesAsTheReferenceDoes() throws {
        let start = CosemDateTime(year: 2024, month: 11, day: 26, hour: 0, minute: 0, second: 0, hundredths: 0, dayOfWeek: 2, deviation: -60, clockStatus: [])
        let rows: [DLMSData] = (0..<96).map { i in
            let t = CosemDateTime(unixTime: start.unixTime! + Int64(i) * 900, utcOffsetMinutes: 60)
            return .structure([.octetString(dateTime: t), .uint32(UInt32(1_000_000 + i * 250)), .uint32(UInt32(500_000 + i * 10)), .uint8(0)])
        }
        let profile = DLMSData.array(DLMSDataList(rows))
        var reference = ByteBuffer()
        ReferenceAXDR.encode(profile, into: &reference)
        #expect(reference.readableBytes == 2 + 96 * 28)
        #expect(profile.encodedSize == reference.readableBytes)
        for free in Self.capacities(for: reference.readableBytes) {
            #expect(Self.encode(profile, prefix: 4, free: free) == Array(reference.readableBytesView))
        }
        // The first row, by hand: structure of 4, octet-string 12 (2024-11-26 00:00:00, deviation −60, status 0), 1,000,000, 500,000, 0.
        #expect(Array(reference.readableBytesView.prefix(30)) == hexBytes("0160 0204 090C07E80B1A0200000000FFC400 06000F4240 060007A120 1100"))
    }

    /// Every length form of A-XDR: one byte, 0x81, 0x82 and 0x83 prefixes, in strings, bit
    /// strings, arrays and compact-array contents.
    @Test(arguments: [0, 1, 127, 128, 255, 256, 65_535, 65_536, 70_000])
    func lengthForms(count: Int) throws {
        let bytes = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let values: [DLMSData] = [
            .octetString(bytes: bytes),
            .visibleString(ByteBuffer(dlmsBytes: bytes)),
            .bitString(DLMSBitString(bitCount: count, bytes: Array(bytes.prefix((count + 7) / 8)))),
            .array(DLMSDataList([DLMSData](repeating: .uint8(9), count: min(count, 2_000)))),
            .compactArray(DLMSCompactArray(typeDescription: .simple(.unsigned), elements: bytes.prefix(300).map { .uint8($0) })),
        ]
        for value in values {
            var reference = ByteBuffer()
            ReferenceAXDR.encode(value, into: &reference)
            #expect(value.encodedSize == reference.readableBytes)
            #expect(Self.encode(value, prefix: 0, free: 0) == Array(reference.readableBytesView))
            #expect(Self.encode(value, prefix: 2, free: reference.readableBytes) == Array(reference.readableBytesView))
            var input = reference
            let decoded = try DLMSData.decode(from: &input)
            #expect(Self.encode(decoded, prefix: 0, free: 0) == Array(reference.readableBytesView))
        }
    }

    /// A buffer whose storage is shared with another copy is copied before it is written, so the
    /// copy keeps its bytes; the free capacity the optimistic write uses is the new storage's.
    @Test func aSharedBufferIsCopiedBeforeTheWrite() {
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        buffer.writeBytes([1, 2, 3])
        let copy = buffer
        DLMSData.structure([.uint32(7), .visibleString(text: "AB")]).encode(into: &buffer)
        #expect(Array(copy.readableBytesView) == [1, 2, 3])
        #expect(Array(buffer.readableBytesView) == hexBytes("010203 0202 0600000007 0A024142"))
    }
}

/// Random values of every A-XDR type, nested up to three levels, with compact arrays whose
/// elements follow their type description.
enum RandomDLMSData {
    static func value(depth: Int, using g: inout SeededGenerator) -> DLMSData {
        let choice = Int.random(in: 0..<(depth < 3 ? 28 : 25), using: &g)
        switch choice {
        case 0: return .null
        case 1: return .dontCare
        case 2: return .boolean(Bool.random(using: &g))
        case 3: return .int8(Int8.random(in: .min ... .max, using: &g))
        case 4: return .int16(Int16.random(in: .min ... .max, using: &g))
        case 5: return .int32(Int32.random(in: .min ... .max, using: &g))
        case 6: return .int64(Int64.random(in: .min ... .max, using: &g))
        case 7: return .uint8(UInt8.random(in: .min ... .max, using: &g))
        case 8: return .uint16(UInt16.random(in: .min ... .max, using: &g))
        case 9: return .uint32(UInt32.random(in: .min ... .max, using: &g))
        case 10: return .uint64(UInt64.random(in: .min ... .max, using: &g))
        case 11: return .enumerated(UInt8.random(in: .min ... .max, using: &g))
        case 12: return .bcd(Int8.random(in: .min ... .max, using: &g))
        case 13: return .float32(Float(bitPattern: UInt32.random(in: 0 ... 0x7F00_0000, using: &g)))
        case 14: return .float64(Double(Int32.random(in: .min ... .max, using: &g)) / 7)
        case 15: return .octetString(bytes: bytes(using: &g))
        case 16: return .visibleString(ByteBuffer(dlmsBytes: bytes(using: &g)))
        case 17: return .utf8String(ByteBuffer(dlmsBytes: bytes(using: &g)))
        case 18:
            let bits = Int.random(in: 0...40, using: &g)
            return .bitString(DLMSBitString(bitCount: bits, bytes: (0..<((bits + 7) / 8)).map { _ in UInt8.random(in: 0...255, using: &g) }))
        case 19:
            return .dateTime(CosemDateTime(packedDate: UInt64.random(in: .min ... .max, using: &g), trailer: UInt32.random(in: .min ... .max, using: &g)))
        case 20:
            return .date(CosemDate(year: UInt16.random(in: .min ... .max, using: &g), month: UInt8.random(in: 0...255, using: &g),
                                   dayOfMonth: UInt8.random(in: 0...255, using: &g), dayOfWeek: UInt8.random(in: 0...255, using: &g)))
        case 21:
            return .time(CosemTime(hour: UInt8.random(in: 0...255, using: &g), minute: UInt8.random(in: 0...255, using: &g),
                                   second: UInt8.random(in: 0...255, using: &g), hundredths: UInt8.random(in: 0...255, using: &g)))
        case 22: return .octetString(dateTime: CosemDateTime(unixTime: Int64.random(in: 0...4_000_000_000, using: &g), utcOffsetMinutes: 60))
        case 23: return .uint32(UInt32.random(in: 0...200, using: &g))
        case 24: return .octetString(bytes: [])
        case 25: return .array(list(depth: depth, using: &g))
        case 26: return .structure(list(depth: depth, using: &g))
        default: return compactArray(using: &g)
        }
    }

    static func bytes(using g: inout SeededGenerator) -> [UInt8] {
        let count = [0, 1, 5, 12, 127, 128, 300][Int.random(in: 0..<7, using: &g)]
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &g) }
    }

    static func list(depth: Int, using g: inout SeededGenerator) -> DLMSDataList {
        let count = [0, 1, 2, 4, 9, 130][Int.random(in: 0..<6, using: &g)]
        return DLMSDataList((0..<count).map { _ in value(depth: depth + 1, using: &g) })
    }

    static let compactSimpleTypes: [DLMSDataType] = [
        .boolean, .doubleLong, .doubleLongUnsigned, .octetString, .visibleString, .integer, .long, .unsigned,
        .longUnsigned, .long64, .enumerated, .float32, .dateTime, .date, .time, .bitString,
    ]

    /// A compact array of a simple type, of an array of one, or of a structure of simple types.
    static func compactArray(using g: inout SeededGenerator) -> DLMSData {
        func pick(_ g: inout SeededGenerator) -> DLMSTypeDescription {
            .simple(compactSimpleTypes[Int.random(in: 0..<compactSimpleTypes.count, using: &g)])
        }
        let description: DLMSTypeDescription = switch Int.random(in: 0..<3, using: &g) {
        case 0: pick(&g)
        case 1: .array(count: UInt16.random(in: 1...3, using: &g), element: pick(&g))
        default: .structure((0..<Int.random(in: 1...4, using: &g)).map { _ in pick(&g) })
        }
        let elements = (0..<Int.random(in: 1...6, using: &g)).map { _ in element(of: description, using: &g) }
        return .compactArray(DLMSCompactArray(typeDescription: description, elements: elements))
    }

    /// A value of the type `description` describes.
    static func element(of description: DLMSTypeDescription, using g: inout SeededGenerator) -> DLMSData {
        switch description {
        case .array(let count, let element):
            return .array(DLMSDataList((0..<Int(count)).map { _ in Self.element(of: element, using: &g) }))
        case .structure(let members):
            return .structure(DLMSDataList(members.map { Self.element(of: $0, using: &g) }))
        case .simple(let type):
            switch type {
            case .boolean: return .boolean(Bool.random(using: &g))
            case .doubleLong: return .int32(Int32.random(in: .min ... .max, using: &g))
            case .doubleLongUnsigned: return .uint32(UInt32.random(in: .min ... .max, using: &g))
            case .octetString: return .octetString(bytes: bytes(using: &g))
            case .visibleString: return .visibleString(ByteBuffer(dlmsBytes: bytes(using: &g)))
            case .integer: return .int8(Int8.random(in: .min ... .max, using: &g))
            case .long: return .int16(Int16.random(in: .min ... .max, using: &g))
            case .unsigned: return .uint8(UInt8.random(in: 0...255, using: &g))
            case .longUnsigned: return .uint16(UInt16.random(in: .min ... .max, using: &g))
            case .long64: return .int64(Int64.random(in: .min ... .max, using: &g))
            case .enumerated: return .enumerated(UInt8.random(in: 0...255, using: &g))
            case .float32: return .float32(Float(Int16.random(in: .min ... .max, using: &g)))
            case .dateTime: return .dateTime(CosemDateTime(unixTime: Int64.random(in: 0...4_000_000_000, using: &g)))
            case .date: return .date(CosemDate(year: 2026, month: 12, dayOfMonth: UInt8.random(in: 1...31, using: &g)))
            case .time: return .time(CosemTime(hour: UInt8.random(in: 0...23, using: &g), minute: 30, second: 0))
            default: return .bitString(DLMSBitString(bitCount: 9, bytes: [0xA5, 0x80]))
            }
        }
    }
}

/// The A-XDR encoder as it was before the raw-pointer writer, one `ByteBuffer` write at a time:
/// the model the writer is checked against.
enum ReferenceAXDR {
    static func encode(_ value: DLMSData, into buffer: inout ByteBuffer) {
        buffer.writeInteger(value.type.rawValue)
        encodeUntagged(value, into: &buffer, tagged: true)
    }

    static func encodeUntagged(_ value: DLMSData, into buffer: inout ByteBuffer, tagged: Bool) {
        switch value {
        case .null, .dontCare: break
        case .array(let elements), .structure(let elements):
            if tagged { buffer.writeAXDRLength(elements.count) }
            for e in elements {
                if tagged { encode(e, into: &buffer) } else { encodeUntagged(e, into: &buffer, tagged: false) }
            }
        case .boolean(let v): buffer.writeInteger(UInt8(v ? 1 : 0))
        case .bitString(let bits):
            buffer.writeAXDRLength(bits.bitCount)
            buffer.writeBytes(bits.bytes)
        case .int32(let v): buffer.writeInteger(v)
        case .uint32(let v): buffer.writeInteger(v)
        case .octetString(let b), .visibleString(let b), .utf8String(let b): buffer.writeAXDROctetString(b)
        case .bcd(let v): buffer.writeInteger(v)
        case .int8(let v): buffer.writeInteger(v)
        case .int16(let v): buffer.writeInteger(v)
        case .uint8(let v): buffer.writeInteger(v)
        case .uint16(let v): buffer.writeInteger(v)
        case .compactArray(let compact):
            encode(compact.typeDescription, into: &buffer)
            var contents = ByteBuffer()
            for e in compact.elements { encodeUntagged(e, into: &contents, tagged: false) }
            buffer.writeAXDROctetString(contents)
        case .int64(let v): buffer.writeInteger(v)
        case .uint64(let v): buffer.writeInteger(v)
        case .enumerated(let v): buffer.writeInteger(v)
        case .float32(let v): buffer.writeInteger(v.bitPattern)
        case .float64(let v): buffer.writeInteger(v.bitPattern)
        case .dateTime(let v): v.encode(into: &buffer)
        case .date(let v): v.encode(into: &buffer)
        case .time(let v): v.encode(into: &buffer)
        }
    }

    static func encode(_ description: DLMSTypeDescription, into buffer: inout ByteBuffer) {
        switch description {
        case .simple(let type):
            buffer.writeInteger(type.rawValue)
        case .array(let count, let element):
            buffer.writeInteger(DLMSDataType.array.rawValue)
            buffer.writeInteger(count)
            encode(element, into: &buffer)
        case .structure(let elements):
            buffer.writeInteger(DLMSDataType.structure.rawValue)
            buffer.writeAXDRLength(elements.count)
            for e in elements { encode(e, into: &buffer) }
        }
    }
}
