import Contracts
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// A CIM delivery as ims-sim reads it: the 61968-100 header's fields and one item per
/// `MeterReading`, each the ``ReadingBatch`` it maps to (``CIMMeterReadings``) or why it could
/// not be read (rejected on its own, like an unreadable item of a native request).
struct CIMMeterReadingsRequest: Sendable {
    var verb: String
    var noun: String
    var messageID: String
    var items: [IMSItem<ReadingBatch>]

    /// Parses a `RequestMessage` with SAX (FoundationXML's `XMLParser`, libxml2 underneath; no
    /// DOM, no external entities).
    /// - Throws: ``IMSSimError/Code/malformedRequest`` when the body is not well-formed XML or
    ///   not a 61968-100 `RequestMessage` carrying `MeterReadings`.
    static func parse(_ body: Data) throws -> CIMMeterReadingsRequest {
        if let refusal = CIMMeterReadings.refusalBeforeParsing(body) { throw IMSSimError.malformedRequest(refusal) }
        let handler = CIMRequestHandler()
        let parser = XMLParser(data: body)
        parser.shouldProcessNamespaces = true
        parser.shouldResolveExternalEntities = false
        parser.delegate = handler
        let parsed = parser.parse()
        if let failure = handler.failure { throw IMSSimError.malformedRequest(failure) }
        guard parsed else {
            let error = parser.parserError.map { "\($0.localizedDescription) at line \(parser.lineNumber), column \(parser.columnNumber)" } ?? "unknown error"
            throw IMSSimError.malformedRequest("the body is not well-formed XML: \(error)")
        }
        guard handler.sawRoot else { throw IMSSimError.malformedRequest("the body is not a \(CIMMeterReadings.messageNamespace) RequestMessage") }
        guard handler.sawPayload else { throw IMSSimError.malformedRequest("the RequestMessage has no Payload/MeterReadings") }
        return CIMMeterReadingsRequest(verb: handler.verb, noun: handler.noun, messageID: handler.messageID, items: handler.items)
    }
}

/// The SAX handler behind ``CIMMeterReadingsRequest/parse(_:)``: a stack of the open elements'
/// local names (namespaces checked) and the batch being built.
private final class CIMRequestHandler: NSObject, XMLParserDelegate {
    private struct BatchBuilder {
        var index: Int
        var mRID: String?
        var meterID: String?
        var names: [String: String] = [:]
        var readings: [Reading] = []
        var problem: String?
        // The `Readings` element being read.
        var timeStamp: String?
        var value: String?
        var status: Int?
        var readingType: CIMReadingType?
        // The `Names` element being read.
        var name: String?
        var nameType: String?

        mutating func fail(_ reason: String) {
            if problem == nil { problem = reason }
        }
    }

    var verb = "", noun = "", messageID = ""
    var items: [IMSItem<ReadingBatch>] = []
    var failure: String?
    var sawRoot = false, sawPayload = false

    private var path: [String] = []
    private var text = ""
    private var batch: BatchBuilder?
    /// Bounds what one request may build, beyond the body size ims-sim accepts.
    private static let maxDepth = 16

    private func abort(_ parser: XMLParser, _ reason: String) {
        if failure == nil { failure = reason }
        parser.abortParsing()
    }

    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        text = ""
        let depth = path.count
        if depth == 0 {
            guard elementName == "RequestMessage", namespaceURI == CIMMeterReadings.messageNamespace else {
                return abort(parser, "the root is {\(namespaceURI ?? "")}\(elementName), not {\(CIMMeterReadings.messageNamespace)}RequestMessage")
            }
            sawRoot = true
        }
        guard depth < Self.maxDepth else { return abort(parser, "elements nest deeper than \(Self.maxDepth)") }
        path.append(elementName)
        // Payload/MeterReadings/MeterReading/…: the 61968-9 profile's namespace.
        if depth >= 2, path[1] == "Payload" {
            guard namespaceURI == CIMMeterReadings.meterReadingsNamespace else {
                return abort(parser, "\(elementName) in the Payload is in namespace \(namespaceURI ?? "none"), not \(CIMMeterReadings.meterReadingsNamespace)")
            }
            if depth == 2 {
                guard elementName == "MeterReadings" else { return abort(parser, "the Payload holds \(elementName), not MeterReadings") }
                sawPayload = true
            }
        }
        guard depth >= 3, path[1] == "Payload", path[2] == "MeterReadings" else { return }
        if depth == 3 {
            if elementName == "MeterReading" { batch = BatchBuilder(index: items.count) }
            return
        }
        guard batch != nil else { return }
        switch (depth, elementName) {
        case (4, "Readings"):
            batch!.timeStamp = nil; batch!.value = nil; batch!.status = nil; batch!.readingType = nil
        case (4, "Names"):
            batch!.name = nil; batch!.nameType = nil
        case (5, "ReadingType") where path[4] == "Readings":
            guard let ref = attributes["ref"] else { return batch!.fail("a ReadingType has no ref") }
            guard let type = CIMReadingType(ref: ref) else { return batch!.fail("ReadingType ref \(ref) is not one this IMS reads (obis=…;class=…;attribute=…;type=…)") }
            batch!.readingType = type
        case (6, "ReadingQualityType") where path[4] == "Readings":
            guard let ref = attributes["ref"], let status = CIMReadingQuality.status(ref: ref) else {
                return batch!.fail("ReadingQualityType ref \(attributes["ref"] ?? "(none)") is not a status this IMS reads (1.1000.<status>)")
            }
            batch!.status = status
        default:
            break
        }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        text += string
    }

    func parser(_ parser: XMLParser, foundCDATA CDATABlock: Data) {
        text += String(decoding: CDATABlock, as: UTF8.self)
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
        defer {
            path.removeLast()
            text = ""
        }
        let depth = path.count - 1
        if depth == 2, path[1] == "Header" {
            switch elementName {
            case "Verb": verb = text
            case "Noun": noun = text
            case "MessageID": messageID = text
            default: break
            }
            return
        }
        guard depth >= 3, path[1] == "Payload", batch != nil else { return }
        switch (depth, elementName) {
        case (3, "MeterReading"):
            items.append(finish(batch!))
            batch = nil
        case (4, "mRID"):
            batch!.mRID = text
        case (5, "mRID") where path[4] == "Meter":
            batch!.meterID = text
        case (5, "name") where path[4] == "Names":
            batch!.name = text
        case (6, "name") where path[5] == "NameType":
            batch!.nameType = text
        case (4, "Names"):
            if let type = batch!.nameType, let name = batch!.name { batch!.names[type] = name }
        case (5, "timeStamp") where path[4] == "Readings":
            batch!.timeStamp = text
        case (5, "value") where path[4] == "Readings":
            batch!.value = text
        case (4, "Readings"):
            guard let timeStamp = batch!.timeStamp, let value = batch!.value, let type = batch!.readingType else {
                return batch!.fail("reading \(batch!.readings.count + 1) needs a timeStamp, a value and a ReadingType")
            }
            guard let captureTime = ContractDate.parse(timeStamp) else { return batch!.fail("timeStamp \(timeStamp) is not an ISO 8601 date-time") }
            batch!.readings.append(Reading(obis: type.obis, classID: type.classID, attribute: type.attribute, captureTime: captureTime,
                                           valueType: type.valueType, value: value, unit: type.unit, status: batch!.status, profile: type.profile))
        default:
            break
        }
    }

    private func finish(_ builder: BatchBuilder) -> IMSItem<ReadingBatch> {
        if let problem = builder.problem { return .invalid(id: builder.mRID, reason: problem) }
        guard let mRID = builder.mRID, !mRID.isEmpty else { return .invalid(id: nil, reason: "a MeterReading needs an mRID (the batch id)") }
        guard let meterID = builder.meterID, !meterID.isEmpty else { return .invalid(id: mRID, reason: "a MeterReading needs Meter/mRID") }
        guard let taskID = builder.names[CIMMeterReadings.NameType.taskID], let region = builder.names[CIMMeterReadings.NameType.region],
              let collectedText = builder.names[CIMMeterReadings.NameType.collectedAt] else {
            return .invalid(id: mRID, reason: "a MeterReading needs Names of the types \(CIMMeterReadings.NameType.taskID), \(CIMMeterReadings.NameType.region) and \(CIMMeterReadings.NameType.collectedAt)")
        }
        guard let collectedAt = ContractDate.parse(collectedText) else { return .invalid(id: mRID, reason: "\(CIMMeterReadings.NameType.collectedAt) \(collectedText) is not an ISO 8601 date-time") }
        return .valid(ReadingBatch(batchID: mRID, taskID: taskID, region: region, meterID: meterID, collectedAt: collectedAt, readings: builder.readings))
    }

    func parser(_ parser: XMLParser, parseErrorOccurred parseError: any Error) {
        if failure == nil, let message = (parseError as NSError?)?.localizedDescription {
            failure = "the body is not well-formed XML: \(message) at line \(parser.lineNumber), column \(parser.columnNumber)"
        }
    }
}
