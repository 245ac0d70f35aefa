import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// Reads the IMS's 61968-100 `ResponseMessage` to a CIM delivery into the ``IMSDeliveryReply``
/// the native path gets: `Reply/Result` is the status, each `Error` that names an item (its
/// `xpath` ends in `MeterReading[n]`) is a rejection of that item; errors naming no item (the
/// request as a whole was refused) are not rejections, the HTTP status decides then.
///
/// It reads what the IMS sends back, so it is fuzzed (Fuzz/Sources/FuzzContracts) and lives here
/// rather than in the uploader.
public enum CIMReplyParser {
    /// - Returns: the reply, or `nil` when `body` is not a `ResponseMessage` with a `Reply/Result`.
    public static func parse(_ body: [UInt8]) -> IMSDeliveryReply? {
        guard CIMMeterReadings.refusalBeforeParsing(body) == nil else { return nil }
        let handler = CIMReplyHandler()
        let parser = XMLParser(data: Data(body))
        parser.shouldProcessNamespaces = true
        parser.shouldResolveExternalEntities = false
        parser.delegate = handler
        guard parser.parse(), handler.isResponse, let result = handler.result, let status = IMSDeliveryReply.Status(rawValue: result) else { return nil }
        let rejected = handler.errors.compactMap { error -> IMSDeliveryReply.Rejection? in
            guard let index = error.xpath.flatMap(CIMMeterReadings.itemIndex(xpath:)) else { return nil }
            return .init(index: index, id: error.id, code: error.code, reason: error.details ?? error.reason ?? error.code)
        }
        return IMSDeliveryReply(requestID: handler.correlationID, status: status, accepted: 0, stored: 0, duplicates: 0, rejected: rejected)
    }
}

private final class CIMReplyHandler: NSObject, XMLParserDelegate {
    struct ErrorEntry {
        var code = ""
        var reason: String?
        var details: String?
        var xpath: String?
        var id: String?
    }

    var isResponse = false
    var result: String?
    var correlationID = ""
    var errors: [ErrorEntry] = []
    private var path: [String] = []
    private var text = ""

    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        if path.isEmpty {
            isResponse = elementName == "ResponseMessage" && namespaceURI == CIMMeterReadings.messageNamespace
            if !isResponse { parser.abortParsing() }
        }
        path.append(elementName)
        text = ""
        if path.count == 3, path[1] == "Reply", elementName == "Error" { errors.append(ErrorEntry()) }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        text += string
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
        defer {
            path.removeLast()
            text = ""
        }
        switch (path.count, path.count >= 2 ? path[1] : "") {
        case (3, "Header") where elementName == "CorrelationID":
            correlationID = text
        case (3, "Reply") where elementName == "Result":
            result = text
        case (4, "Reply") where path[2] == "Error" && !errors.isEmpty:
            switch elementName {
            case "code": errors[errors.count - 1].code = text
            case "reason": errors[errors.count - 1].reason = text
            case "details": errors[errors.count - 1].details = text
            case "xpath": errors[errors.count - 1].xpath = text
            case "ID": errors[errors.count - 1].id = text
            default: break
            }
        default:
            break
        }
    }
}

extension CIMMeterReadings {
    /// Why `body` must not reach FoundationXML's `XMLParser`, or `nil` when it may. Our CIM
    /// documents are UTF-8 without NUL bytes, a processing instruction or a document type
    /// (docs/ims-interface.md); swift-corelibs-foundation's parser crashes the process on some of
    /// what falls outside that, found by FuzzContracts: an element name that is not UTF-8 (a
    /// force unwrap in `_NSXMLParserStartElementNs`; libxml2 hands such names on while
    /// recovering), and a processing instruction without data (`<?xm?>`: `strlen` of a null
    /// pointer in `_NSXMLParserProcessingInstruction`). A document type is refused too: no
    /// entity definitions reach the parser at all.
    public static func refusalBeforeParsing<Bytes: Collection<UInt8>>(_ body: Bytes) -> String? {
        let bytes = Array(body)
        if bytes.contains(0) { return "the body holds a NUL byte" }
        var decoder = UTF8()
        var iterator = bytes.makeIterator()
        var offset = 0
        decoding: while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar): offset += UTF8.width(scalar)
            case .emptyInput: break decoding
            case .error: return "the body is not UTF-8 (an invalid sequence near byte \(offset))"
            }
        }
        // The XML declaration may open the document (after a byte order mark); nothing else
        // starting with "<?" or "<!DOCTYPE" may follow.
        let start = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        let declaration = Array("<?xml".utf8)
        var index = bytes.startIndex
        while let found = bytes[index...].firstIndex(of: UInt8(ascii: "<")) {
            let rest = bytes[(found + 1)...]
            if rest.first == UInt8(ascii: "?") {
                let isDeclaration = found == start && bytes[found...].starts(with: declaration)
                    && bytes.count > found + 5 && [0x20, 0x09, 0x0D, 0x0A].contains(bytes[found + 5])
                if !isDeclaration { return "the body holds a processing instruction (byte \(found)); CIM documents have none" }
            } else if rest.starts(with: Array("!DOCTYPE".utf8)) {
                return "the body declares a document type (byte \(found)); CIM documents have none"
            }
            index = found + 1
        }
        return nil
    }
}
