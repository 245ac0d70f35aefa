import Foundation

/// Reading batches as IEC 61968-9 `MeterReadings` in an IEC 61968-100 `RequestMessage`, the
/// uploader's output with `--ims-format cim`, and the IMS's `ResponseMessage` to it; ims-sim
/// reads the one and writes the other. The mapping (docs/ims-interface.md) keeps everything the
/// native contract carries, so the IMS rebuilds the same ``ReadingBatch``:
///
/// | native                          | CIM                                                                  |
/// |---------------------------------|----------------------------------------------------------------------|
/// | request id (idempotency key)    | `Header/MessageID`                                                   |
/// | `batchID`                       | `MeterReading/mRID`                                                  |
/// | `taskID`, `region`, `collectedAt` | `MeterReading/Names` with `NameType/name` `HES.taskID`, `HES.region`, `HES.collectedAt` |
/// | `meterID`                       | `MeterReading/Meter/mRID`                                            |
/// | reading `captureTime`           | `Readings/timeStamp` (UTC, milliseconds)                             |
/// | reading `value`                 | `Readings/value`, the exact text                                     |
/// | `obis`, `classID`, `attribute`, `valueType`, `unit`, `profile` | `Readings/ReadingType/@ref` (``CIMReadingType``)        |
/// | `status`                        | `Readings/ReadingQualities/ReadingQualityType/@ref` (``CIMReadingQuality``) |
///
/// The writers append bytes by hand (no DOM): the uploader writes tens of thousands of readings
/// per second. Text is escaped for XML 1.0; characters XML 1.0 cannot carry at all (control
/// characters other than tab, line feed and carriage return, U+FFFE, U+FFFF) are written as
/// U+FFFD.
public enum CIMMeterReadings {
    /// IEC 61968-100 (2011) message envelope.
    public static let messageNamespace = "http://iec.ch/TC57/2011/schema/message"
    /// IEC 61968-9 (2011) MeterReadings message profile.
    public static let meterReadingsNamespace = "http://iec.ch/TC57/2011/MeterReadings#"
    /// ims-sim's route for CIM deliveries (the native one is ``IMSAPI/readingsPath``).
    public static let path = "/v1/cim/meter-readings"
    public static let contentType = "application/xml"
    /// `Header/Source` of what the head-end sends.
    public static let source = "SwiftHES"
    /// `Header/Verb` of a delivery and of its reply.
    public static let requestVerb = "created"
    public static let replyVerb = "reply"
    public static let noun = "MeterReadings"

    /// `NameType/name` of the `MeterReading/Names` that carry the batch's other fields.
    public enum NameType {
        public static let taskID = "HES.taskID"
        public static let region = "HES.region"
        public static let collectedAt = "HES.collectedAt"
    }

    /// A `RequestMessage` (verb `created`, noun `MeterReadings`) with one `MeterReading` per batch,
    /// in the order given: the reply's errors name them by that position.
    /// - Parameters:
    ///   - messageID: the request's idempotency key (also sent as `Idempotency-Key`).
    ///   - timestamp: `Header/Timestamp`, when the message was made.
    public static func requestMessage(messageID: String, timestamp: Date, batches: [ReadingBatch]) -> [UInt8] {
        var writer = CIMXMLWriter(capacity: batches.reduce(512) { $0 + 400 + $1.readings.count * 200 })
        writer.raw(#"<?xml version="1.0" encoding="UTF-8"?>"#)
        writer.raw("\n<RequestMessage xmlns=\"\(messageNamespace)\"><Header><Verb>\(requestVerb)</Verb><Noun>\(noun)</Noun><Timestamp>")
        writer.date(timestamp)
        writer.raw("</Timestamp><Source>\(source)</Source><MessageID>")
        writer.text(messageID)
        writer.raw("</MessageID></Header><Payload><m:MeterReadings xmlns:m=\"\(meterReadingsNamespace)\">")
        for batch in batches {
            writer.raw("\n<m:MeterReading><m:mRID>")
            writer.text(batch.batchID)
            writer.raw("</m:mRID>")
            writer.name(batch.taskID, type: NameType.taskID)
            writer.name(batch.region, type: NameType.region)
            writer.name(ContractDate.format(batch.collectedAt), type: NameType.collectedAt)
            writer.raw("<m:Meter><m:mRID>")
            writer.text(batch.meterID)
            writer.raw("</m:mRID></m:Meter>")
            for reading in batch.readings {
                writer.raw("<m:Readings><m:timeStamp>")
                writer.date(reading.captureTime)
                writer.raw("</m:timeStamp><m:value>")
                writer.text(reading.value)
                writer.raw("</m:value>")
                if let status = reading.status {
                    writer.raw("<m:ReadingQualities><m:ReadingQualityType ref=\"")
                    writer.raw(CIMReadingQuality.ref(status: status))
                    writer.raw("\"/></m:ReadingQualities>")
                }
                writer.raw("<m:ReadingType ref=\"")
                CIMReadingType.writeRef(of: reading, into: &writer)
                writer.raw("\"/></m:Readings>")
            }
            writer.raw("</m:MeterReading>")
        }
        writer.raw("\n</m:MeterReadings></Payload></RequestMessage>\n")
        return writer.bytes
    }

    /// The `ResponseMessage` to a delivery: `Reply/Result` OK, PARTIAL or FAILED and one `Error`
    /// per rejected item, naming it by position (`xpath`, 1-based) and by `mRID` (`ID`).
    /// - Parameters:
    ///   - reply: what the IMS decided (``IMSDeliveryReply``); its `requestID` is the `CorrelationID`.
    ///   - source: `Header/Source`, the IMS's name.
    public static func responseMessage(_ reply: IMSDeliveryReply, timestamp: Date, source: String) -> [UInt8] {
        var writer = CIMXMLWriter(capacity: 512 + reply.rejected.count * 300)
        writer.raw(#"<?xml version="1.0" encoding="UTF-8"?>"#)
        writer.raw("\n<ResponseMessage xmlns=\"\(messageNamespace)\"><Header><Verb>\(replyVerb)</Verb><Noun>\(noun)</Noun><Timestamp>")
        writer.date(timestamp)
        writer.raw("</Timestamp><Source>")
        writer.text(source)
        writer.raw("</Source>")
        if !reply.requestID.isEmpty {
            writer.raw("<CorrelationID>")
            writer.text(reply.requestID)
            writer.raw("</CorrelationID>")
        }
        writer.raw("</Header><Reply><Result>")
        writer.raw(reply.status.rawValue)
        writer.raw("</Result>")
        for rejection in reply.rejected {
            writer.raw("\n<Error><code>")
            writer.text(rejection.code)
            writer.raw("</code><level>FATAL</level><details>")
            writer.text(rejection.reason)
            writer.raw("</details>")
            if rejection.index >= 0 {
                writer.raw("<xpath>\(itemXPath(index: rejection.index))</xpath>")
            }
            if let id = rejection.id {
                writer.raw("<ID kind=\"name\" objectType=\"MeterReading\">")
                writer.text(id)
                writer.raw("</ID>")
            }
            writer.raw("</Error>")
        }
        writer.raw("</Reply></ResponseMessage>\n")
        return writer.bytes
    }

    /// `/RequestMessage/Payload/MeterReadings/MeterReading[n]` for the item at `index` (0-based).
    public static func itemXPath(index: Int) -> String {
        "/RequestMessage/Payload/MeterReadings/MeterReading[\(index + 1)]"
    }

    /// The 0-based item position an ``itemXPath(index:)`` names; `nil` for any other path.
    public static func itemIndex(xpath: String) -> Int? {
        guard let open = xpath.range(of: "MeterReading[", options: .backwards), xpath.hasSuffix("]") else { return nil }
        guard let position = Int(xpath[open.upperBound..<xpath.index(before: xpath.endIndex)]), position >= 1 else { return nil }
        return position - 1
    }
}

/// The `ReadingType/@ref` of a reading: what the value is, derived from its DLMS/COSEM address,
/// value type, unit and profile, stable across batches and reversible (the IMS rebuilds the
/// reading's natural key from it):
///
/// `obis=<A.B.C.D.E.F>;class=<class id>;attribute=<n>;type=<number|text|boolean|octets|date-time>[;unit=<symbol>][;profile=<OBIS>]`
///
/// e.g. `obis=1.0.1.8.0.255;class=3;attribute=2;type=number;unit=Wh;profile=1.0.99.1.0.255`.
/// `%`, `;` and `=` inside a part are written `%25`, `%3B`, `%3D`. This is SwiftHES's own
/// reference, not one of 61968-9's 18-part ReadingType codes: those cannot carry the OBIS code
/// and attribute the natural key needs (a translation table to them is an IMS-side concern).
public struct CIMReadingType: Hashable, Sendable {
    public var obis: String
    public var classID: Int
    public var attribute: Int
    public var valueType: Reading.ValueType
    public var unit: String?
    public var profile: String?

    public init(obis: String, classID: Int, attribute: Int, valueType: Reading.ValueType, unit: String?, profile: String?) {
        self.obis = obis
        self.classID = classID
        self.attribute = attribute
        self.valueType = valueType
        self.unit = unit
        self.profile = profile
    }

    public init(of reading: Reading) {
        self.init(obis: reading.obis, classID: reading.classID, attribute: reading.attribute, valueType: reading.valueType, unit: reading.unit,
                  profile: reading.profile)
    }

    /// The reference text (before XML escaping).
    public var ref: String {
        var parts = "obis=\(Self.escape(obis));class=\(classID);attribute=\(attribute);type=\(valueType.rawValue)"
        if let unit { parts += ";unit=\(Self.escape(unit))" }
        if let profile { parts += ";profile=\(Self.escape(profile))" }
        return parts
    }

    /// Reads a reference ``ref`` wrote; `nil` when a part is missing, unknown or malformed.
    public init?(ref: String) {
        var obis: String?, classID: Int?, attribute: Int?, valueType: Reading.ValueType?, unit: String?, profile: String?
        for part in ref.split(separator: ";", omittingEmptySubsequences: false) {
            guard let equals = part.firstIndex(of: "=") else { return nil }
            guard let value = Self.unescape(part[part.index(after: equals)...]) else { return nil }
            switch part[..<equals] {
            case "obis": obis = value
            case "class": classID = Int(value)
            case "attribute": attribute = Int(value)
            case "type": valueType = Reading.ValueType(rawValue: value)
            case "unit": unit = value
            case "profile": profile = value
            default: return nil
            }
        }
        guard let obis, !obis.isEmpty, let classID, let attribute, let valueType else { return nil }
        self.init(obis: obis, classID: classID, attribute: attribute, valueType: valueType, unit: unit, profile: profile)
    }

    /// Writes ``ref`` for `reading`, XML-escaped, without building the string.
    static func writeRef(of reading: Reading, into writer: inout CIMXMLWriter) {
        writer.raw("obis=")
        writer.refPart(reading.obis)
        writer.raw(";class=")
        writer.int(reading.classID)
        writer.raw(";attribute=")
        writer.int(reading.attribute)
        writer.raw(";type=")
        writer.raw(reading.valueType.rawValue)
        if let unit = reading.unit {
            writer.raw(";unit=")
            writer.refPart(unit)
        }
        if let profile = reading.profile {
            writer.raw(";profile=")
            writer.refPart(profile)
        }
    }

    static func escape(_ part: String) -> String {
        guard part.utf8.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: ";") || $0 == UInt8(ascii: "=") }) else { return part }
        return part.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: ";", with: "%3B").replacingOccurrences(of: "=", with: "%3D")
    }

    static func unescape(_ part: Substring) -> String? {
        guard part.contains("%") else { return String(part) }
        var bytes: [UInt8] = []
        var utf8 = part.utf8.makeIterator()
        while let byte = utf8.next() {
            guard byte == UInt8(ascii: "%") else { bytes.append(byte); continue }
            guard let high = utf8.next().flatMap(Self.hexValue), let low = utf8.next().flatMap(Self.hexValue) else { return nil }
            bytes.append(high << 4 | low)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        default: nil
        }
    }
}

/// The `ReadingQualityType/@ref` of a reading's status: `1.1000.<status>`, 61968-9's
/// `system.category.subCategory` form with system 1 (the end device reported it) and category
/// 1000, SwiftHES's own for "the DLMS/COSEM status of the profile row or register as the meter
/// gave it"; the sub-category is the status as a decimal integer. A reading without a status has
/// no `ReadingQualities`.
public enum CIMReadingQuality {
    static let prefix = "1.1000."

    public static func ref(status: Int) -> String {
        prefix + String(status)
    }

    /// The status a ``ref(status:)`` carries; `nil` for any other reference.
    public static func status(ref: String) -> Int? {
        guard ref.hasPrefix(prefix) else { return nil }
        return Int(ref.dropFirst(prefix.count))
    }
}

/// Appends XML 1.0 to a byte array: markup as given, text and attribute values escaped.
struct CIMXMLWriter {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int) {
        bytes.reserveCapacity(capacity)
    }

    /// Markup, or text known to need no escaping.
    mutating func raw(_ markup: String) {
        var markup = markup
        markup.withUTF8 { bytes.append(contentsOf: $0) }
    }

    mutating func int(_ value: Int) {
        raw(String(value))
    }

    mutating func date(_ date: Date) {
        ContractDate.write(date, into: &bytes)
    }

    /// Text content or a double-quoted attribute value, escaped.
    mutating func text(_ text: String) {
        var utf8Text = text
        let copied = utf8Text.withUTF8 { utf8 -> Bool in
            // Ids, numbers and OBIS codes need no escaping: copy them whole.
            guard !utf8.contains(where: Self.mayNeedEscape) else { return false }
            bytes.append(contentsOf: utf8)
            return true
        }
        if !copied { appendEscaped(text) }
    }

    /// A part of a ``CIMReadingType`` reference: percent-escaped, then XML-escaped.
    mutating func refPart(_ part: String) {
        text(CIMReadingType.escape(part))
    }

    /// `<m:Names><m:name>…</m:name><m:NameType><m:name>…</m:name></m:NameType></m:Names>`
    mutating func name(_ value: String, type: String) {
        raw("<m:Names><m:name>")
        text(value)
        raw("</m:name><m:NameType><m:name>")
        raw(type)
        raw("</m:name></m:NameType></m:Names>")
    }

    /// Bytes that are markup, whitespace XML would normalize, or may start U+FFFE/U+FFFF.
    @inline(__always)
    private static func mayNeedEscape(_ byte: UInt8) -> Bool {
        byte < 0x20 || byte == UInt8(ascii: "<") || byte == UInt8(ascii: ">") || byte == UInt8(ascii: "&") || byte == UInt8(ascii: "\"")
            || byte == UInt8(ascii: "'") || byte == 0xEF
    }

    private mutating func appendEscaped(_ text: String) {
        for scalar in text.unicodeScalars {
            switch scalar {
            case "<": raw("&lt;")
            case ">": raw("&gt;")
            case "&": raw("&amp;")
            case "\"": raw("&quot;")
            case "'": raw("&apos;")
            // Kept as references: a parser would turn a raw CR into LF, and tab or LF in an
            // attribute value into a space.
            case "\t": raw("&#9;")
            case "\n": raw("&#10;")
            case "\r": raw("&#13;")
            case "\u{0}"..."\u{1F}", "\u{FFFE}", "\u{FFFF}": raw("\u{FFFD}")
            default: bytes.append(contentsOf: String(scalar).utf8)
            }
        }
    }
}
