import COSEM
import NIOCore
import TestSupport
import Testing
@testable import DLMSLink

@Suite struct WrapperFrameTests {
    /// Gurux 1.0.203 `GXDLMSClient(…, 16, 1, …, InterfaceType.WRAPPER).aarqRequest()`, and the
    /// server's AARE from the Gurux captures of Tests/DLMSCodecTests.
    static let golden: [(hex: String, source: UInt16, destination: UInt16)] = [
        ("000100100001001F601DA109060760857405080101BE10040E01000000065F1F0400401E5DFFFF", 16, 1),
        ("000100010010002B6129A109060760857405080101A203020100A305A103020100BE10040E0800065F1F0400401E5D04000007", 1, 16),
        ("0001001000010005C401C10101", 16, 1),
    ]

    @Test(arguments: 0..<3)
    func datagramRoundTrip(_ index: Int) throws {
        let golden = Self.golden[index]
        let frame = try WrapperFrame.decode(datagram: hexBuffer(golden.hex))
        #expect(frame.source == golden.source && frame.destination == golden.destination)
        #expect(frame.apdu.readableBytes == hexBuffer(golden.hex).readableBytes - 8)
        #expect(frame.encoded.dlmsHex == golden.hex)
    }

    @Test(arguments: Chunking.allCases)
    func stream(_ chunking: Chunking) {
        let bytes = Self.golden.flatMap { hexBytes($0.hex) }
        let (frames, errors, _) = decodeStream(WrapperFrameDecoder(), bytes, chunking: chunking)
        #expect(errors.isEmpty)
        #expect(frames.map { $0.encoded.dlmsHex } == Self.golden.map(\.hex))
    }

    @Test(arguments: [
        ("00010010000100", DLMSLinkError.Code.truncated),            // short header
        ("0001001000010005C401C101", .truncated),                    // short APDU
        ("0001001000010005C401C1010100", .malformedFrame),           // trailing byte
        ("0002001000010005C401C10101", .malformedFrame),             // version 2
    ])
    func malformedDatagrams(_ hex: String, _ code: DLMSLinkError.Code) {
        do {
            _ = try WrapperFrame.decode(datagram: hexBuffer(hex))
            Issue.record("decoded \(hex)")
        } catch {
            #expect(linkCode(error) == code)
        }
    }

    @Test func streamRejectsBadVersionAndOverlongLength() throws {
        var decoder = WrapperFrameDecoder(maximumAPDULength: 1024)
        var badVersion = hexBuffer("0000001000010005C401C10101")
        #expect(throws: DLMSLinkError.malformedFrame("")) { try decoder.decode(buffer: &badVersion) }
        var tooLong = hexBuffer("000100100001FFFF")   // nothing buffered for 65535 bytes
        #expect(throws: DLMSLinkError.lengthLimitExceeded("")) { try decoder.decode(buffer: &tooLong) }
        var partial = hexBuffer("0001001000010005C401")
        #expect(try decoder.decode(buffer: &partial) == nil)
        #expect(throws: DLMSLinkError.truncated("")) { try decoder.decodeLast(buffer: &partial, seenEOF: true) }
    }
}
