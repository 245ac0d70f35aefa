import Contracts
import Foundation
import Testing
@testable import Uploader

/// The IMS's 61968-100 `ResponseMessage` byte for byte, and what the uploader makes of it.
@Suite("CIM replies: the ResponseMessage and the uploader's classification")
struct CIMReplyTests {
    static let t0 = Date(timeIntervalSince1970: 1_764_547_200)

    static let partial = IMSDeliveryReply(requestID: "readings-1", status: .partial, accepted: 1, stored: 96, duplicates: 0, rejected: [
        .init(index: 1, id: "t2#readings", code: "meter.unknown", reason: "meter <ghost> is not registered"),
    ])

    @Test("a PARTIAL reply names each rejected item by xpath and mRID")
    func goldenBytes() {
        let bytes = CIMMeterReadings.responseMessage(Self.partial, timestamp: Self.t0, source: "ims-sim")
        let expected = """
            <?xml version="1.0" encoding="UTF-8"?>
            <ResponseMessage xmlns="http://iec.ch/TC57/2011/schema/message"><Header><Verb>reply</Verb><Noun>MeterReadings</Noun>\
            <Timestamp>2025-12-01T00:00:00.000Z</Timestamp><Source>ims-sim</Source><CorrelationID>readings-1</CorrelationID></Header>\
            <Reply><Result>PARTIAL</Result>
            <Error><code>meter.unknown</code><level>FATAL</level><details>meter &lt;ghost&gt; is not registered</details>\
            <xpath>/RequestMessage/Payload/MeterReadings/MeterReading[2]</xpath><ID kind="name" objectType="MeterReading">t2#readings</ID></Error>\
            </Reply></ResponseMessage>

            """
        #expect(String(decoding: bytes, as: UTF8.self) == expected)
    }

    @Test("the uploader reads result and per-item errors back; errors naming no item are not rejections")
    func parse() throws {
        let reply = try #require(CIMReplyParser.parse(CIMMeterReadings.responseMessage(Self.partial, timestamp: Self.t0, source: "ims-sim")))
        #expect(reply.status == .partial && reply.requestID == "readings-1")
        #expect(reply.rejected == Self.partial.rejected)
        let whole = IMSDeliveryReply(requestID: "", status: .failed, accepted: 0, stored: 0, duplicates: 0,
                                     rejected: [.init(index: -1, id: nil, code: "request.malformed", reason: "not XML")])
        let failed = try #require(CIMReplyParser.parse(CIMMeterReadings.responseMessage(whole, timestamp: Self.t0, source: "ims-sim")))
        #expect(failed.status == .failed && failed.rejected.isEmpty)
        #expect(CIMReplyParser.parse(Array("{\"schema\":\"ims-reply/v1\"}".utf8)) == nil)
        #expect(CIMReplyParser.parse(Array("<ResponseMessage><Reply><Result>OK</Result></Reply></ResponseMessage>".utf8)) == nil, "wrong namespace")
        #expect(CIMReplyParser.parse(Array("<ResponseMessage xmlns=\"http://iec.ch/TC57/2011/schema/message\"><Reply>".utf8)) == nil)
        #expect(CIMMeterReadings.itemIndex(xpath: "/RequestMessage/Payload/MeterReadings/MeterReading[12]") == 11)
        #expect(CIMMeterReadings.itemIndex(xpath: "MeterReading[0]") == nil)
        #expect(CIMMeterReadings.itemIndex(xpath: "/RequestMessage/Header") == nil)
    }

    @Test("CIM answers: OK and PARTIAL decide, FAILED with items decides them rejected, FAILED as a whole refuses or waits by status")
    func classify() throws {
        func body(_ status: IMSDeliveryReply.Status, _ rejected: [IMSDeliveryReply.Rejection]) -> [UInt8] {
            CIMMeterReadings.responseMessage(IMSDeliveryReply(requestID: "k", status: status, accepted: 0, stored: 0, duplicates: 0, rejected: rejected),
                                             timestamp: Self.t0, source: "ims-sim")
        }
        let item = IMSDeliveryReply.Rejection(index: 0, id: "b", code: "meter.unknown", reason: "no")
        let whole = IMSDeliveryReply.Rejection(index: -1, id: nil, code: "request.malformed", reason: "bad")
        guard case .decided(200, let ok?) = IMSClient.classify(status: 200, body: body(.ok, []), format: .cim) else { Issue.record("200 OK decides"); return }
        #expect(ok.status == .ok && ok.rejected.isEmpty)
        guard case .decided(200, let partial?) = IMSClient.classify(status: 200, body: body(.partial, [item]), format: .cim) else { Issue.record("PARTIAL decides"); return }
        #expect(partial.rejected == [item])
        guard case .decided(422, let failed?) = IMSClient.classify(status: 422, body: body(.failed, [item]), format: .cim) else { Issue.record("itemised 422 decides"); return }
        #expect(failed.rejected == [item])
        if case .refused = IMSClient.classify(status: 400, body: body(.failed, [whole]), format: .cim) {} else { Issue.record("400 FAILED refuses") }
        if case .refused = IMSClient.classify(status: 422, body: body(.failed, [whole]), format: .cim) {} else { Issue.record("422 without items refuses") }
        if case .undecided = IMSClient.classify(status: 503, body: body(.failed, [whole]), format: .cim) {} else { Issue.record("503 FAILED is undecided") }
        // A JSON reply is not read as CIM, nor the other way round.
        let json = try ContractCoder.encode(IMSDeliveryReply(requestID: "k", status: .partial, accepted: 0, stored: 0, duplicates: 0, rejected: [item]))
        #expect(IMSClient.classify(status: 200, body: json, format: .cim) == .decided(status: 200, reply: nil))
        #expect(IMSClient.classify(status: 200, body: body(.partial, [item])) == .decided(status: 200, reply: nil))
    }

    @Test("a reply whose element names are not UTF-8, or with a NUL, is refused before FoundationXML (which crashed on it)")
    func notUTF8() throws {
        // FuzzContracts' find: a PARTIAL reply with bytes 0xEE and 0x01 0x00… inside element names.
        var bytes = Array(#"<?xml version="1.0" encoding="UTF-8"?><Respo"#.utf8) + [0xEE]
        bytes += Array(#"seMessage xmlns="http://iec.ch/TC57/2011/schema/message"><Reply><Result>OK</Result></Reply></Respo"#.utf8) + [0xEE]
        bytes += Array("seMessage>".utf8)
        #expect(CIMReplyParser.parse(bytes) == nil)
        #expect(CIMMeterReadings.refusalBeforeParsing(bytes)?.contains("not UTF-8") == true)
        let withNUL = Array("<ResponseMessage>\u{0}</ResponseMessage>".utf8)
        #expect(CIMMeterReadings.refusalBeforeParsing(withNUL) == "the body holds a NUL byte")
        // A processing instruction without data crashed XMLParser (strlen of a null pointer).
        let instruction = Array(#"<?xm?><ResponseMessage xmlns="http://iec.ch/TC57/2011/schema/message"/>"#.utf8)
        #expect(CIMReplyParser.parse(instruction) == nil)
        #expect(CIMMeterReadings.refusalBeforeParsing(instruction)?.contains("processing instruction") == true)
        #expect(CIMMeterReadings.refusalBeforeParsing(Array("<?xml version=\"1.0\"?><a><?pi x?></a>".utf8))?.contains("processing instruction") == true)
        #expect(CIMMeterReadings.refusalBeforeParsing(Array("<!DOCTYPE a [<!ENTITY b \"c\">]><a>&b;</a>".utf8))?.contains("document type") == true)
        #expect(CIMMeterReadings.refusalBeforeParsing(Array([0xEF, 0xBB, 0xBF]) + Array("<?xml version=\"1.0\"?><a/>".utf8)) == nil)
        // Well-formed UTF-8, non-ASCII included, still reaches the parser.
        let valid = try #require(CIMReplyParser.parse(CIMMeterReadings.responseMessage(Self.partial, timestamp: Self.t0, source: "ims-sim-é")))
        #expect(valid.status == .partial)
    }
}
