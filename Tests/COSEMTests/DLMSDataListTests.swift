import COSEM
import NIOCore
import TestSupport
import Testing

/// Arrays and structures decode into one flat tree; these check that the tree stands for the
/// same values, byte for byte and by equality, as lists built from Swift arrays.
@Suite struct DLMSDataListTests {
    static let vectors = DLMSDataTests.vectors

    @Test(arguments: vectors)
    func everyTypeInsideAStructureAndAnArray(hex: String, expected: DLMSData) throws {
        let element = hex
        // structure { value, array [ value, structure { value } ] }
        let nested = "0202" + element + "0102" + element + "0201" + element
        var input = hexBuffer(nested)
        let bytes = Array(input.readableBytesView)
        let value = try DLMSData.decode(from: &input)
        let built: DLMSData = .structure([expected, .array([expected, .structure([expected])])])
        #expect(value == built)
        #expect(value.hashValue == built.hashValue)
        #expect(input.readableBytes == 0)
        var reencoded = ByteBuffer()
        value.encode(into: &reencoded)
        #expect(Array(reencoded.readableBytesView) == bytes)
        var fromBuilt = ByteBuffer()
        built.encode(into: &fromBuilt)
        #expect(Array(fromBuilt.readableBytesView) == bytes)
    }

    @Test func decodingFromTheMiddleOfABufferKeepsStringOffsets() throws {
        var input = hexBuffer("AABBCC" + "0202" + "0903010203" + "0A024142" + "DD")
        input.moveReaderIndex(forwardBy: 3)
        let value = try DLMSData.decode(from: &input)
        #expect(value == .structure([.octetString(bytes: [1, 2, 3]), .visibleString(text: "AB")]))
        #expect(input.readableBytes == 1)
        // The decoded strings stay valid when the source buffer is changed afterwards.
        input.clear()
        input.writeBytes([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
        #expect(value.elements?[0].bytes == [1, 2, 3])
        #expect(value.elements?[1].stringValue == "AB")
    }

    @Test func aTreeLargerThanItsFirstGuessGrows() throws {
        // 3,000 one-byte elements: more nodes than the decoder first reserves (a quarter of the bytes).
        var bytes: [UInt8] = [0x01, 0x82, 0x0B, 0xB8]
        bytes += (0..<3000).map { $0 % 2 == 0 ? 0x00 : 0xFF }
        var input = ByteBuffer(dlmsBytes: bytes)
        let value = try DLMSData.decode(from: &input)
        let expected = DLMSData.array(DLMSDataList((0..<3000).map { $0 % 2 == 0 ? DLMSData.null : .dontCare }))
        #expect(value == expected)
        var out = ByteBuffer()
        value.encode(into: &out)
        #expect(Array(out.readableBytesView) == bytes)
    }

    @Test func decodedAndBuiltListsAreInterchangeable() throws {
        var input = hexBuffer("0103" + "1101" + "1102" + "1103")
        let decoded = try #require(try DLMSData.decode(from: &input).elements)
        let built: DLMSDataList = [.uint8(1), .uint8(2), .uint8(3)]
        #expect(decoded == built)
        #expect(Set([decoded, built]).count == 1)
        #expect(decoded.array == [.uint8(1), .uint8(2), .uint8(3)])
        #expect(decoded.map(\.integerValue) == [1, 2, 3])
        #expect(Array(decoded.dropFirst()) == [.uint8(2), .uint8(3)])
        #expect(decoded.description == built.description)
        #expect(decoded != [.uint8(1), .uint8(2)])
        #expect(decoded != [.uint8(1), .uint8(2), .uint8(4)])
    }

    @Test func mutatingADecodedListCopiesItsElementsOut() throws {
        var input = hexBuffer("0202" + "1101" + "0102" + "1102" + "1103")
        let original = try DLMSData.decode(from: &input)
        guard case .structure(var list) = original else { Issue.record("not a structure"); return }
        list[0] = .uint16(7)
        list.append(.null)
        list.remove(at: 1)
        #expect(list == [.uint16(7), .null])
        // The decoded value itself is unchanged.
        #expect(original == .structure([.uint8(1), .array([.uint8(2), .uint8(3)])]))
    }

    @Test func truncatedOrMalformedContainersAreRefusedAtAnyDepth() {
        let malformed = [
            "0202" + "1101",              // second element missing
            "0201" + "0102" + "1101",     // inner array short
            "0201" + "0201" + "09051122", // string longer than the input
            "0201" + "0201" + "63",       // unknown tag
            "0201" + "19" + "07E80B1A02", // date-time cut short
            "0201" + "1A" + "07E80B1A",   // date cut short
        ]
        for hex in malformed {
            var input = hexBuffer(hex)
            #expect(throws: DLMSError.self, "\(hex)") { try DLMSData.decode(from: &input) }
        }
    }
}
