import COSEM
import NIOCore

/// `Get-Request` (Green Book 9.3.6, tag 0xC0).
public enum GetRequest: Hashable, Sendable, Codable {
    /// Reads one attribute, optionally with selective access.
    case normal(invokeID: InvokeIDAndPriority, attribute: CosemAttributeDescriptor, accessSelection: AccessSelection?)
    /// Asks for the next block of a long response.
    case next(invokeID: InvokeIDAndPriority, blockNumber: UInt32)
    /// Reads several attributes in one request.
    case withList(invokeID: InvokeIDAndPriority, attributes: [AttributeWithSelection])

    public static let tag: UInt8 = 0xC0

    public var invokeID: InvokeIDAndPriority {
        switch self {
        case .normal(let id, _, _), .next(let id, _), .withList(let id, _): id
        }
    }

    @inlinable
    public static func decode(from buffer: inout ByteBuffer) throws -> GetRequest {
        try decode(from: &buffer, limits: .default)
    }

    public static func decode(from buffer: inout ByteBuffer, limits: DLMSDecodingLimits) throws -> GetRequest {
        let tag: UInt8 = try buffer.readDLMSInteger("get-request tag")
        guard tag == Self.tag else { throw DLMSError.unexpectedTag(tag, in: "get-request") }
        let choice: UInt8 = try buffer.readDLMSInteger("get-request choice")
        let id = try InvokeIDAndPriority.decode(from: &buffer)
        switch choice {
        case 1:
            let attribute = try CosemAttributeDescriptor.decode(from: &buffer)
            return .normal(invokeID: id, attribute: attribute, accessSelection: try AccessSelection.decodeOptional(from: &buffer, limits: limits))
        case 2:
            return .next(invokeID: id, blockNumber: try buffer.readDLMSInteger("block-number"))
        case 3:
            return .withList(invokeID: id, attributes: try buffer.readSequence(limits: limits, "attribute list") {
                try AttributeWithSelection.decode(from: &$0, limits: limits)
            })
        default:
            throw DLMSError.unexpectedTag(choice, in: "get-request choice")
        }
    }

    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(Self.tag)
        switch self {
        case .normal(let id, let attribute, let access):
            buffer.writeInteger(UInt8(1))
            buffer.writeInteger(id.rawValue)
            attribute.encode(into: &buffer)
            AccessSelection.encodeOptional(access, into: &buffer)
        case .next(let id, let block):
            buffer.writeInteger(UInt8(2))
            buffer.writeInteger(id.rawValue)
            buffer.writeInteger(block)
        case .withList(let id, let attributes):
            buffer.writeInteger(UInt8(3))
            buffer.writeInteger(id.rawValue)
            buffer.writeSequence(attributes) { $0.encode(into: &$1) }
        }
    }
}

/// `Get-Response` (Green Book 9.3.6, tag 0xC4).
public enum GetResponse: Hashable, Sendable, Codable {
    case normal(invokeID: InvokeIDAndPriority, result: GetDataResult)
    /// One block of a long response; the blocks' raw data concatenated is one encoded `Data`.
    case withDataBlock(invokeID: InvokeIDAndPriority, block: DataBlockG)
    case withList(invokeID: InvokeIDAndPriority, results: [GetDataResult])

    public static let tag: UInt8 = 0xC4

    public var invokeID: InvokeIDAndPriority {
        switch self {
        case .normal(let id, _), .withDataBlock(let id, _), .withList(let id, _): id
        }
    }

    @inlinable
    public static func decode(from buffer: inout ByteBuffer) throws -> GetResponse {
        try decode(from: &buffer, limits: .default)
    }

    public static func decode(from buffer: inout ByteBuffer, limits: DLMSDecodingLimits) throws -> GetResponse {
        let tag: UInt8 = try buffer.readDLMSInteger("get-response tag")
        guard tag == Self.tag else { throw DLMSError.unexpectedTag(tag, in: "get-response") }
        let choice: UInt8 = try buffer.readDLMSInteger("get-response choice")
        let id = try InvokeIDAndPriority.decode(from: &buffer)
        switch choice {
        case 1: return .normal(invokeID: id, result: try GetDataResult.decode(from: &buffer, limits: limits))
        case 2: return .withDataBlock(invokeID: id, block: try DataBlockG.decode(from: &buffer, limits: limits))
        case 3:
            return .withList(invokeID: id, results: try buffer.readSequence(limits: limits, "get-response list") {
                try GetDataResult.decode(from: &$0, limits: limits)
            })
        default: throw DLMSError.unexpectedTag(choice, in: "get-response choice")
        }
    }

    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(Self.tag)
        switch self {
        case .normal(let id, let result):
            buffer.writeInteger(UInt8(1))
            buffer.writeInteger(id.rawValue)
            result.encode(into: &buffer)
        case .withDataBlock(let id, let block):
            buffer.writeInteger(UInt8(2))
            buffer.writeInteger(id.rawValue)
            block.encode(into: &buffer)
        case .withList(let id, let results):
            buffer.writeInteger(UInt8(3))
            buffer.writeInteger(id.rawValue)
            buffer.writeSequence(results) { $0.encode(into: &$1) }
        }
    }
}
