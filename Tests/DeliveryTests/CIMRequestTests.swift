import Contracts
import Foundation
import Testing
@testable import IMSSim

/// The CIM request the uploader writes (``CIMMeterReadings``) byte for byte, and ims-sim's SAX
/// reading of it back into the same batches.
@Suite("CIM MeterReadings: the writer's bytes and ims-sim's parser")
struct CIMRequestTests {
    static let t0 = Date(timeIntervalSince1970: 1_764_547_200)  // 2025-12-01T00:00:00Z

    static let batch = ReadingBatch(
        batchID: "t1#readings", taskID: "t1", region: "north", meterID: "MTR<1>&\"x\"", collectedAt: t0.addingTimeInterval(3600),
        readings: [
            Reading(obis: "1.0.1.8.0.255", classID: 3, attribute: 2, captureTime: t0, valueType: .number, value: "12345.678", unit: "Wh", status: 8,
                    profile: "1.0.99.1.0.255"),
            Reading(obis: "0.0.96.1.0.255", classID: 1, attribute: 2, captureTime: t0.addingTimeInterval(0.5), valueType: .text, value: "a<b & 'c'\r\n\t]]>"),
        ])

    @Test("a request message is the documented bytes: header, one MeterReading per batch, escaped text, quality and type refs")
    func goldenBytes() {
        let bytes = CIMMeterReadings.requestMessage(messageID: "readings-k\"1\"", timestamp: Self.t0.addingTimeInterval(7200), batches: [Self.batch])
        let expected = """
            <?xml version="1.0" encoding="UTF-8"?>
            <RequestMessage xmlns="http://iec.ch/TC57/2011/schema/message"><Header><Verb>created</Verb><Noun>MeterReadings</Noun>\
            <Timestamp>2025-12-01T02:00:00.000Z</Timestamp><Source>SwiftHES</Source><MessageID>readings-k&quot;1&quot;</MessageID></Header>\
            <Payload><m:MeterReadings xmlns:m="http://iec.ch/TC57/2011/MeterReadings#">
            <m:MeterReading><m:mRID>t1#readings</m:mRID>\
            <m:Names><m:name>t1</m:name><m:NameType><m:name>HES.taskID</m:name></m:NameType></m:Names>\
            <m:Names><m:name>north</m:name><m:NameType><m:name>HES.region</m:name></m:NameType></m:Names>\
            <m:Names><m:name>2025-12-01T01:00:00.000Z</m:name><m:NameType><m:name>HES.collectedAt</m:name></m:NameType></m:Names>\
            <m:Meter><m:mRID>MTR&lt;1&gt;&amp;&quot;x&quot;</m:mRID></m:Meter>\
            <m:Readings><m:timeStamp>2025-12-01T00:00:00.000Z</m:timeStamp><m:value>12345.678</m:value>\
            <m:ReadingQualities><m:ReadingQualityType ref="1.1000.8"/></m:ReadingQualities>\
            <m:ReadingType ref="obis=1.0.1.8.0.255;class=3;attribute=2;type=number;unit=Wh;profile=1.0.99.1.0.255"/></m:Readings>\
            <m:Readings><m:timeStamp>2025-12-01T00:00:00.500Z</m:timeStamp><m:value>a&lt;b &amp; &apos;c&apos;&#13;&#10;&#9;]]&gt;</m:value>\
            <m:ReadingType ref="obis=0.0.96.1.0.255;class=1;attribute=2;type=text"/></m:Readings></m:MeterReading>
            </m:MeterReadings></Payload></RequestMessage>

            """
        #expect(String(decoding: bytes, as: UTF8.self) == expected)
    }

    @Test("what the writer writes, the parser reads back as the same batches, odd characters and all")
    func roundTrip() throws {
        var odd = Self.batch
        odd.batchID = "b2 <&>\"'\u{00E9}\u{1F600}"
        odd.taskID = "task;=%"
        odd.region = "s\u{00FC}d"
        odd.readings = [
            Reading(obis: "1.0.32.7.0.255", classID: 3, attribute: 2, captureTime: Self.t0.addingTimeInterval(0.25), valueType: .number, value: "-0.000",
                    unit: "m3;x=%25", status: 0, profile: "1.0.99.1.0.255"),
            Reading(obis: "0.0.42.0.0.255", classID: 1, attribute: 2, captureTime: Self.t0, valueType: .octets, value: "", status: 255),
            Reading(obis: "0.0.1.0.0.255", classID: 8, attribute: 2, captureTime: Self.t0, valueType: .dateTime, value: "2025-12-01T00:00:00Z"),
            Reading(obis: "0.0.96.3.10.255", classID: 70, attribute: 3, captureTime: Self.t0, valueType: .boolean, value: "true"),
        ]
        var empty = Self.batch
        empty.batchID = "empty"
        empty.readings = []
        let batches = [Self.batch, odd, empty]
        let bytes = CIMMeterReadings.requestMessage(messageID: "key-1", timestamp: Self.t0, batches: batches)
        let request = try CIMMeterReadingsRequest.parse(Data(bytes))
        #expect(request.verb == "created" && request.noun == "MeterReadings" && request.messageID == "key-1")
        #expect(request.items == batches.map { .valid($0) })
    }

    @Test("characters XML 1.0 cannot carry become U+FFFD; the document stays well-formed")
    func unrepresentableCharacters() throws {
        var batch = Self.batch
        batch.readings = [Reading(obis: "0.0.96.1.0.255", classID: 1, attribute: 2, captureTime: Self.t0, valueType: .text, value: "a\u{1}b\u{FFFF}c\u{7F}")]
        let request = try CIMMeterReadingsRequest.parse(Data(CIMMeterReadings.requestMessage(messageID: "k", timestamp: Self.t0, batches: [batch])))
        guard case .valid(let parsed) = request.items.first else { Issue.record("the batch must parse"); return }
        #expect(parsed.readings.first?.value == "a\u{FFFD}b\u{FFFD}c\u{7F}")
    }

    @Test("ReadingType refs name OBIS, class, attribute, type, unit and profile, and read back; others are refused")
    func readingTypeRefs() {
        let type = CIMReadingType(obis: "1.0.1.8.0.255", classID: 3, attribute: 2, valueType: .number, unit: "Wh", profile: nil)
        #expect(type.ref == "obis=1.0.1.8.0.255;class=3;attribute=2;type=number;unit=Wh")
        #expect(CIMReadingType(ref: type.ref) == type)
        let escaped = CIMReadingType(obis: "1.0.1.8.0.255", classID: 3, attribute: 2, valueType: .text, unit: "a;b=c%", profile: "1.0.99.1.0.255")
        #expect(escaped.ref == "obis=1.0.1.8.0.255;class=3;attribute=2;type=text;unit=a%3Bb%3Dc%25;profile=1.0.99.1.0.255")
        #expect(CIMReadingType(ref: escaped.ref) == escaped)
        for bad in ["", "obis=1.0.1.8.0.255", "obis=1.0.1.8.0.255;class=x;attribute=2;type=number", "obis=1;class=3;attribute=2;type=float",
                    "obis=1;class=3;attribute=2;type=number;colour=red", "obis=1;class=3;attribute=2;type=number;unit=%G1"] {
            #expect(CIMReadingType(ref: bad) == nil, "\(bad)")
        }
        #expect(CIMReadingQuality.ref(status: 8) == "1.1000.8")
        #expect(CIMReadingQuality.status(ref: "1.1000.128") == 128)
        #expect(CIMReadingQuality.status(ref: "1.4.5") == nil)
    }

    @Test("an unreadable MeterReading is rejected on its own; its neighbours are read")
    func invalidItems() throws {
        let good = String(decoding: CIMMeterReadings.requestMessage(messageID: "k", timestamp: Self.t0, batches: [Self.batch]), as: UTF8.self)
        let text = good
            .replacingOccurrences(of: "</m:MeterReadings>", with: """
                <m:MeterReading><m:mRID>bad-type</m:mRID><m:Meter><m:mRID>M</m:mRID></m:Meter><m:Readings><m:timeStamp>2025-12-01T00:00:00.000Z</m:timeStamp>\
                <m:value>1</m:value><m:ReadingType ref="kWh"/></m:Readings></m:MeterReading>
                <m:MeterReading><m:Meter><m:mRID>M</m:mRID></m:Meter></m:MeterReading>
                <m:MeterReading><m:mRID>no-names</m:mRID><m:Meter><m:mRID>M</m:mRID></m:Meter></m:MeterReading>
                </m:MeterReadings>
                """)
        let request = try CIMMeterReadingsRequest.parse(Data(text.utf8))
        #expect(request.items.count == 4)
        #expect(request.items[0] == .valid(Self.batch))
        guard case .invalid(let id1, let reason1) = request.items[1], case .invalid(let id2, _) = request.items[2], case .invalid(let id3, let reason3) = request.items[3] else {
            Issue.record("items 2…4 must be invalid: \(request.items)")
            return
        }
        #expect(id1 == "bad-type" && reason1.contains("kWh"))
        #expect(id2 == nil)
        #expect(id3 == "no-names" && reason3.contains("HES.taskID"))
    }

    @Test("bodies that are not a RequestMessage with MeterReadings are malformed, never a crash", arguments: [
        "", "not xml", "<RequestMessage xmlns=\"http://iec.ch/TC57/2011/schema/message\"><Header>", "<a/>",
        "<RequestMessage><Header/></RequestMessage>",
        "<RequestMessage xmlns=\"http://iec.ch/TC57/2011/schema/message\"><Header><Verb>created</Verb></Header></RequestMessage>",
        "<RequestMessage xmlns=\"http://iec.ch/TC57/2011/schema/message\"><Header/><Payload><MeterReadings/></Payload></RequestMessage>",
        "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><RequestMessage xmlns=\"http://iec.ch/TC57/2011/schema/message\">&e;</RequestMessage>",
    ])
    func malformed(body: String) {
        #expect(throws: IMSSimError.self) { try CIMMeterReadingsRequest.parse(Data(body.utf8)) }
    }

    @Test("a request that is not UTF-8 is a malformed request, not a crash")
    func notUTF8() throws {
        let body = Data(#"<?xml version="1.0" encoding="UTF-8"?><Request"#.utf8) + Data([0xC3, 0x28]) + Data("Message/>".utf8)
        #expect {
            try CIMMeterReadingsRequest.parse(body)
        } throws: { error in
            (error as? IMSSimError)?.reason.contains("not UTF-8") == true
        }
    }
}
