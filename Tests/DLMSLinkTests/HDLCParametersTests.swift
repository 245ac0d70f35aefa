import COSEM
import NIOCore
import TestSupport
import Testing
@testable import DLMSLink

@Suite struct HDLCParametersTests {
    @Test(arguments: [
        // Green Book style: 1-byte lengths, 4-byte windows (meter SNRM capture, dlms-cosem UA).
        ("818012050180060180070400000001080400000007", HDLCParameters(windowSizeReceive: 7), HDLCParameters.EncodingOptions()),
        ("81801205019A06019A070400000001080400000001",
         HDLCParameters(maximumInformationLengthTransmit: 154, maximumInformationLengthReceive: 154), .init()),
        // Gurux: defaults omitted, 2-byte lengths above 255.
        ("8180080502020006020200",
         HDLCParameters(maximumInformationLengthTransmit: 512, maximumInformationLengthReceive: 512), .init(omitDefaults: true)),
        // 1-byte windows.
        ("81800D05020400060180070103080101",
         HDLCParameters(maximumInformationLengthTransmit: 1024, windowSizeTransmit: 3), .init(windowSizeLength: 1)),
    ])
    func roundTrip(_ hex: String, _ parameters: HDLCParameters, _ options: HDLCParameters.EncodingOptions) throws {
        var input = hexBuffer(hex)
        #expect(try HDLCParameters.decode(from: &input) == parameters)
        #expect(parameters.encoded(options: options).dlmsHex == hex)
    }

    @Test func twoByteValuesFromJDLMSCapture() throws {
        var input = hexBuffer("8180140502008006020080070400000001080400000001")
        #expect(try HDLCParameters.decode(from: &input) == .defaults)
    }

    @Test func emptyFieldMeansDefaults() throws {
        var empty = ByteBuffer()
        #expect(try HDLCParameters.decode(from: &empty) == .defaults)
        #expect(HDLCParameters.defaults.encoded(options: .init(omitDefaults: true)).readableBytes == 0)
        var emptyGroup = hexBuffer("818000")
        #expect(try HDLCParameters.decode(from: &emptyGroup) == .defaults)
    }

    @Test func partialAndUnknownParameters() throws {
        var input = hexBuffer("81800A 0602 0100 0901FF 0801 02")
        let p = try HDLCParameters.decode(from: &input)
        #expect(p == HDLCParameters(maximumInformationLengthReceive: 256, windowSizeReceive: 2))
    }

    @Test(arguments: [
        ("8280 00", DLMSLinkError.Code.malformedFrame),       // format identifier
        ("8181 00", .malformedFrame),                         // group identifier
        ("81", .truncated),
        ("8180", .truncated),
        ("8180 05 050180", .truncated),                       // group longer than input
        ("8180 03 050280", .truncated),                       // value longer than group
        ("8180 05 0503000080", .invalidParameter),             // 3-byte value
        ("8180 03 050100", .invalidParameter),                 // info length 0
        ("8180 04 05020800", .invalidParameter),               // info length 2048
        ("8180 06 070400000008", .invalidParameter),           // window 8
        ("8180 03 050180 00", .malformedFrame),               // trailing byte
    ])
    func malformed(_ hex: String, _ code: DLMSLinkError.Code) {
        var input = hexBuffer(hex)
        do {
            let p = try HDLCParameters.decode(from: &input)
            Issue.record("\(hex) decoded to \(p)")
        } catch {
            #expect(linkCode(error) == code, "\(hex): \(error)")
        }
    }

    @Test func negotiation() {
        let proposal = HDLCParameters(maximumInformationLengthTransmit: 512, maximumInformationLengthReceive: 512,
                                      windowSizeTransmit: 1, windowSizeReceive: 7)
        // The server states its own view: it transmits 128-byte fields and accepts 256.
        let ua = HDLCParameters(maximumInformationLengthTransmit: 128, maximumInformationLengthReceive: 256,
                                windowSizeTransmit: 1, windowSizeReceive: 1)
        let n = HDLCParameters.negotiated(proposal: proposal, response: ua)
        #expect(n == HDLCParameters(maximumInformationLengthTransmit: 256, maximumInformationLengthReceive: 128,
                                    windowSizeTransmit: 1, windowSizeReceive: 1))
        #expect(HDLCParameters.negotiated(proposal: proposal, response: nil) == .defaults)
        // A server answering with more than proposed is held to the proposal.
        let greedy = HDLCParameters(maximumInformationLengthTransmit: 2030, maximumInformationLengthReceive: 2030)
        #expect(HDLCParameters.negotiated(proposal: .defaults, response: greedy) == .defaults)
        #expect(proposal.mirrored.mirrored == proposal)
    }
}
