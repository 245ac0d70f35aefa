import COSEM
import NIOCore
import TestSupport
import Testing
import Foundation

@Suite struct DLMSDataTests {
    /// (hex, expected value) — each must decode to the value and encode back to the same bytes.
    static let vectors: [(String, DLMSData)] = [
        ("00", .null),
        ("FF", .dontCare),
        ("0301", .boolean(true)),
        ("0300", .boolean(false)),
        ("05FFFFFFFE", .int32(-2)),
        ("0600000539", .uint32(1337)),
        ("0F85", .int8(-123)),
        ("10FF38", .int16(-200)),
        ("1105", .uint8(5)),
        ("120100", .uint16(256)),
        ("14FFFFFFFFFFFFFFFF", .int64(-1)),
        ("150000000100000000", .uint64(1 << 32)),
        ("1603", .enumerated(3)),
        ("0D12", .bcd(0x12)),
        ("173F800000", .float32(1.0)),
        ("18C000000000000000", .float64(-2.0)),
        ("09060000010000FF", .octetString(bytes: [0, 0, 1, 0, 0, 0xFF])),
        ("0A0441424344", .visibleString(text: "ABCD")),
        ("0C03C3A978", .utf8String(ByteBuffer(dlmsBytes: Array("éx".utf8)))),
        ("0900", .octetString(bytes: [])),
        ("040C5AC0", .bitString(DLMSBitString(bitCount: 12, bytes: [0x5A, 0xC0]))),
        ("0400", .bitString(DLMSBitString(bitCount: 0, bytes: []))),
        ("1907E80B1A02103900FFFFC400", .dateTime(CosemDateTime(year: 2024, month: 11, day: 26, hour: 16, minute: 57, second: 0, hundredths: 0xFF, dayOfWeek: 2, deviation: -60, clockStatus: []))),
        ("1A07E80B1A02", .date(CosemDate(year: 2024, month: 11, dayOfMonth: 26, dayOfWeek: 2))),
        ("1B10390000", .time(CosemTime(hour: 16, minute: 57, second: 0, hundredths: 0))),
        // Blue Book: structure { logical name 0.0.1.0.0.255, unsigned 5 }
        ("0202090600000100 00FF1105", .structure([.octetString(obis: .clock), .uint8(5)])),
        ("0102120001120002", .array([.uint16(1), .uint16(2)])),
        ("0100", .array([])),
        // compact-array of structure { long-unsigned, unsigned }
        ("130202121109000105000206000307", .compactArray(DLMSCompactArray(
            typeDescription: .structure([.simple(.longUnsigned), .simple(.unsigned)]),
            elements: [.structure([.uint16(1), .uint8(5)]), .structure([.uint16(2), .uint8(6)]), .structure([.uint16(3), .uint8(7)])]))),
        // compact-array of double-long-unsigned
        ("1306080000000100000002", .compactArray(DLMSCompactArray(typeDescription: .simple(.doubleLongUnsigned), elements: [.uint32(1), .uint32(2)]))),
        // compact-array of array[2] of unsigned
        ("13010002110401020304", .compactArray(DLMSCompactArray(
            typeDescription: .array(count: 2, element: .simple(.unsigned)), elements: [.array([.uint8(1), .uint8(2)]), .array([.uint8(3), .uint8(4)])]))),
        // compact-array of octet-string (lengths kept inside the contents)
        ("1309050 1AA02BBCC", .compactArray(DLMSCompactArray(
            typeDescription: .simple(.octetString), elements: [.octetString(bytes: [0xAA]), .octetString(bytes: [0xBB, 0xCC])]))),
    ]

    @Test(arguments: vectors)
    func goldenRoundTrip(hex: String, expected: DLMSData) throws {
        var input = hexBuffer(hex)
        let bytes = Array(input.readableBytesView)
        let value = try DLMSData.decode(from: &input)
        #expect(value == expected)
        #expect(input.readableBytes == 0)
        var out = ByteBuffer()
        value.encode(into: &out)
        #expect(Array(out.readableBytesView) == bytes)
    }

    @Test func longLengths() throws {
        let payload = [UInt8](repeating: 0xAB, count: 300)
        var out = ByteBuffer()
        DLMSData.octetString(bytes: payload).encode(into: &out)
        #expect(Array(out.readableBytesView.prefix(4)) == [0x09, 0x82, 0x01, 0x2C])
        var input = out
        #expect(try DLMSData.decode(from: &input) == .octetString(bytes: payload))
        let mid = [UInt8](repeating: 1, count: 200)
        out.clear()
        DLMSData.octetString(bytes: mid).encode(into: &out)
        #expect(Array(out.readableBytesView.prefix(3)) == [0x09, 0x81, 0xC8])
    }

    static let malformed: [(String, DLMSError)] = [
        ("", .truncated("")),
        ("06000001", .truncated("")),
        ("0201", .lengthLimitExceeded("")),
        ("0905AABB", .lengthLimitExceeded("")),
        ("0184FFFFFFFF", .lengthLimitExceeded("")),
        ("0185FFFFFFFFFF", .lengthLimitExceeded("")),
        ("0180", .lengthLimitExceeded("")),
        ("0981", .truncated("")),
        ("FE", .unexpectedTag(0, in: "")),
        ("07", .unexpectedTag(0, in: "")),
        ("190102", .truncated("")),
        ("040901", .truncated("")),
        ("130000", .invalidValue("")),
        ("1302000000", .invalidValue("")),
        ("13130600", .unsupported("")),
        ("1301FFFF1102AABB", .lengthLimitExceeded("")),
        ("130603000000", .truncated("")),
    ]

    @Test(arguments: malformed)
    func rejectsMalformed(hex: String, error: DLMSError) {
        var input = hexBuffer(hex)
        #expect(throws: error) { try DLMSData.decode(from: &input) }
    }

    @Test func rejectsDeepNesting() {
        var bytes: [UInt8] = []
        for _ in 0..<10_000 { bytes += [0x01, 0x01] }
        bytes.append(0x00)
        var input = ByteBuffer(dlmsBytes: bytes)
        #expect(throws: DLMSError.nestingLimitExceeded("")) { try DLMSData.decode(from: &input) }
        var shallow = ByteBuffer(dlmsBytes: [0x02, 0x01, 0x02, 0x01, 0x00])
        #expect(throws: DLMSError.nestingLimitExceeded("")) { try DLMSData.decode(from: &shallow, limits: .init(maxDepth: 1)) }
    }

    @Test func elementLimit() {
        var input = ByteBuffer(dlmsBytes: [0x01, 0x03, 0x00, 0x00, 0x00])
        #expect(throws: DLMSError.lengthLimitExceeded("")) { try DLMSData.decode(from: &input, limits: .init(maxElements: 2)) }
    }

    @Test func randomInputNeverTraps() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let count = Int.random(in: 0..<24, using: &generator)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if !bytes.isEmpty { bytes[0] = [1, 2, 9, 19, 4, 25][Int.random(in: 0..<6)] }
            var input = ByteBuffer(dlmsBytes: bytes)
            _ = try? DLMSData.decode(from: &input)
        }
    }

    @Test func jsonRoundTrip() throws {
        for (hex, _) in Self.vectors {
            var input = hexBuffer(hex)
            let value = try DLMSData.decode(from: &input)
            let json = try JSONEncoder().encode(value)
            let back = try JSONDecoder().decode(DLMSData.self, from: json)
            var out = ByteBuffer()
            back.encode(into: &out)
            #expect(out == hexBuffer(hex), "\(hex) → \(String(decoding: json, as: UTF8.self))")
        }
    }

    @Test func accessors() {
        #expect(DLMSData.uint32(7).integerValue == 7)
        #expect(DLMSData.float32(1.5).doubleValue == 1.5)
        #expect(DLMSData.octetString(obis: .clock).obisValue == .clock)
        #expect(DLMSData.visibleString(text: "abc").stringValue == "abc")
        let dt = CosemDateTime(year: 2024, month: 1, day: 1, hour: 0, minute: 0, second: 0)
        #expect(DLMSData.octetString(dateTime: dt).dateTimeValue == dt)
    }
}
