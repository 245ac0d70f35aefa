import COSEM
import NIOCore
import TestSupport
import Testing
@testable import DLMSLink

private func ascii(_ s: String) -> ByteBuffer { ByteBuffer(string: s) }

@Suite struct IEC21Tests {
    @Test func signOn() throws {
        var out = ByteBuffer()
        try IEC21SignOnRequest().encode(into: &out)
        #expect(out == ascii("/?!\r\n"))
        out.clear()
        try IEC21SignOnRequest(address: "12345678").encode(into: &out)
        #expect(out.dlmsHex == "2F3F3132333435363738210D0A")
        #expect(throws: DLMSLinkError.invalidParameter("")) { try IEC21SignOnRequest(address: "12!4") }
        #expect(throws: DLMSLinkError.invalidParameter("")) { try IEC21SignOnRequest(address: String(repeating: "1", count: 33)) }
    }

    @Test func identificationModeE() throws {
        var input = ascii("/ISK5\\2MT382-1000\r\n")
        let id = try #require(try IEC21Identification.decode(from: &input))
        #expect(id.manufacturer == "ISK")
        #expect(id.baudRate == 9600)
        #expect(id.supportsModeE)
        #expect(id.identification == "MT382-1000")
        #expect(!id.respondsWithin20ms)
        #expect(input.readableBytes == 0)
    }

    @Test func identificationModeCByteByByte() throws {
        let text = Array("/LGz4ZMF100AC.M29\r\n".utf8)
        var input = ByteBuffer()
        var result: IEC21Identification?
        for byte in text {
            input.writeInteger(byte)
            if let id = try IEC21Identification.decode(from: &input) { result = id }
        }
        let id = try #require(result)
        #expect(id.manufacturer == "LGz" && id.respondsWithin20ms)
        #expect(id.baudRate == 4800 && !id.supportsModeE)
        #expect(id.identification == "ZMF100AC.M29")
    }

    @Test(arguments: ["ISK5MT382\r\n", "/I5K5MT382\r\n", "/ISK5MT\u{01}382\r\n", "/ISK\r\n"])
    func malformedIdentification(_ text: String) {
        var input = ascii(text)
        #expect(throws: DLMSLinkError.malformedFrame("")) { try IEC21Identification.decode(from: &input) }
    }

    @Test func identificationWithoutLineEndIsBounded() throws {
        var input = ascii(String(repeating: "A", count: 65))
        #expect(throws: DLMSLinkError.lengthLimitExceeded("")) { try IEC21Identification.decode(from: &input) }
    }

    @Test func optionSelect() {
        var out = ByteBuffer()
        IEC21OptionSelect(baudRateCharacter: UInt8(ascii: "5"), mode: .dataReadout).encode(into: &out)
        #expect(out.dlmsHex == "063035300D0A")   // ACK 0 5 0 CR LF
        out.clear()
        IEC21OptionSelect(baudRateCharacter: UInt8(ascii: "5"), mode: .programming).encode(into: &out)
        #expect(out.dlmsHex == "063035310D0A")
        out.clear()
        IEC21OptionSelect.modeE(baudRateCharacter: UInt8(ascii: "5")).encode(into: &out)
        #expect(out.dlmsHex == "063235320D0A")   // ACK 2 5 2: switch to HDLC
        #expect(IEC21BaudRate.rate(for: UInt8(ascii: "0")) == 300)
        #expect(IEC21BaudRate.rate(for: UInt8(ascii: "6")) == 19200)
        #expect(IEC21BaudRate.rate(for: UInt8(ascii: "C")) == 2400)
        #expect(IEC21BaudRate.rate(for: UInt8(ascii: "9")) == nil)
    }

    /// STX, four lines with five data sets, `!`, ETX, BCC (computed independently).
    static let readout = "02302E302E30283132333435363738290D0A312E382E30283030313233342E3536372A6B5768290D0A312E382E3128"
        + "3030303938372E3030312A6B576829302E392E3128313233343536292830290D0A462E46283030290D0A210D0A033A"

    @Test(arguments: Chunking.allCases)
    func dataReadout(_ chunking: Chunking) throws {
        let bytes = Array("echo/?!\r\n".utf8) + hexBytes(Self.readout)
        let (blocks, errors, decoder) = decodeStream(IEC21DataBlockDecoder(), bytes, chunking: chunking)
        #expect(errors.isEmpty)
        #expect(blocks.count == 1)
        #expect(decoder.discardedBytes == 9)
        let sets = try blocks[0].dataSets()
        #expect(sets.map(\.address) == ["0.0.0", "1.8.0", "1.8.1", "0.9.1", "F.F"])
        #expect(sets[1].values == [.init(value: "001234.567", unit: "kWh")])
        #expect(sets[3].values == [.init(value: "123456", unit: nil), .init(value: "0", unit: nil)])
        var out = ByteBuffer()
        blocks[0].encode(into: &out)
        #expect(out.dlmsHex == Self.readout)
    }

    @Test func badBCCIsRejected() throws {
        var input = hexBuffer(String(Self.readout.dropLast(2)) + "67")
        var decoder = IEC21DataBlockDecoder()
        #expect(throws: DLMSLinkError.checksumMismatch("")) { try decoder.decode(buffer: &input) }
        #expect(input.readableBytes == 0)
    }

    @Test func blockLengthIsBounded() throws {
        var decoder = IEC21DataBlockDecoder(maximumBlockLength: 32)
        var input = ByteBuffer(dlmsBytes: [0x02] + [UInt8](repeating: 0x41, count: 40))
        #expect(throws: DLMSLinkError.lengthLimitExceeded("")) { try decoder.decode(buffer: &input) }
        #expect(input.readableBytes == 0)
    }

    @Test(arguments: ["1.8.0(12", "1.8.0", "1.8.0((1))", "1.8)0(1)"])
    func malformedDataLines(_ line: String) {
        let block = IEC21DataBlock(data: ascii(line + "\r\n!\r\n"))
        #expect(throws: DLMSLinkError.malformedFrame("")) { try block.dataSets() }
    }

    @Test func programmingCommands() throws {
        func hex(_ command: IEC21Command) -> String { var out = ByteBuffer(); command.encode(into: &out); return out.dlmsHex }
        #expect(hex(IEC21Command.exit) == "0142300371")                       // the well-known SOH B0 ETX q
        #expect(hex(try .password("12345678")) == "01503102283132333435363738290369")
        #expect(hex(try .read("1.8.0")) == "01523102312E382E302829035A")
        #expect(hex(try IEC21Command(.read, type: UInt8(ascii: "5"), data: "P.01(2411260000;2411261200)"))
                == "01523502502E303128323431313236303030303B32343131323631323030290320")
        #expect(throws: DLMSLinkError.invalidParameter("")) { try IEC21Command(.read, type: 0x41, data: nil) }
        #expect(throws: DLMSLinkError.invalidParameter("")) { try IEC21Command.password("12\u{03}4") }
    }

    @Test(arguments: Chunking.allCases)
    func programmingReplies(_ chunking: Chunking) throws {
        // Echo noise, ACK to P1, a register value, NAK.
        let value = hexBytes("02312E382E30283030313233342E3536372A6B576829035B")
        let bytes: [UInt8] = [0x7F, 0x06] + value + [0x15]
        let (replies, errors, _) = decodeStream(IEC21ReplyDecoder(), bytes, chunking: chunking)
        #expect(errors.isEmpty)
        #expect(replies.count == 3)
        #expect(replies.first == .acknowledged && replies.last == .notAcknowledged)
        guard case .data(let block) = replies[1] else { Issue.record("no data"); return }
        #expect(try block.dataSets() == [IEC21DataSet(address: "1.8.0", values: [.init(value: "001234.567", unit: "kWh")])])
    }
}
