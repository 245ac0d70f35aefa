import COSEM
import NIOCore

/// `Set-Request` (Green Book 9.3.6, tag 0xC1).
public enum SetRequest: Hashable, Sendable, Codable {
    case normal(invokeID: InvokeIDAndPriority, attribute: CosemAttributeDescriptor, accessSelection: AccessSelection?, value: DLMSData)
    /// First block of a value too long for one APDU.
    case withFirstDataBlock(invokeID: InvokeIDAndPriority, attribute: CosemAttributeDescriptor, accessSelection: AccessSelection?, block: DataBlockSA)
    case withDataBlock(invokeID: InvokeIDAndPriority, block: DataBlockSA)
    case withList(invokeID: InvokeIDAndPriority, attributes: [AttributeWithSelection], values: [DLMSData])
    case withListAndFirstDataBlock(invokeID: InvokeIDAndPriority, attributes: [AttributeWithSelection], block: DataBlockSA)

    public static let tag: UInt8 = 0xC1

    @inlinable
    public static func decode(from buffer: inout ByteBuffer) throws -> SetRequest {
        try decode(from: &buffer, limits: .default)
    }

    public static func decode(from buffer: inout ByteBuffer, limits: DLMSDecodingLimits) throws -> SetRequest {
        let tag: UInt8 = try buffer.readDLMSInteger("set-request tag")
        guard tag == Self.tag else { throw DLMSError.unexpectedTag(tag, in: "set-request") }
        let choice: UInt8 = try buffer.readDLMSInteger("set-request choice")
        let id = try InvokeIDAndPriority.decode(from: &buffer)
        switch choice {
        case 1:
            let attribute = try CosemAttributeDescriptor.decode(from: &buffer)
            let access = try AccessSelection.decodeOptional(from: &buffer, limits: limits)
            return .normal(invokeID: id, attribute: attribute, accessSelection: access, value: try DLMSData.decode(from: &buffer, limits: limits))
        case 2:
            let attribute = try CosemAttributeDescriptor.decode(from: &buffer)
            let access = try AccessSelection.decodeOptional(from: &buffer, limits: limits)
            return .withFirstDataBlock(invokeID: id, attribute: attribute, accessSelection: access, block: try DataBlockSA.decode(from: &buffer, limits: limits))
        case 3:
            return .withDataBlock(invokeID: id, block: try DataBlockSA.decode(from: &buffer, limits: limits))
        case 4:
            let attributes = try buffer.readSequence(limits: limits, "set attribute list") { try AttributeWithSelection.decode(from: &$0, limits: limits) }
            let values = try buffer.readSequence(limits: limits, "set value list") { try DLMSData.decode(from: &$0, limits: limits) }
            return .withList(invokeID: id, attributes: attributes, values: values)
        case 5:
            let attributes = try buffer.readSequence(limits: limits, "set attribute list") { try AttributeWithSelection.decode(from: &$0, limits: limits) }
            return .withListAndFirstDataBlock(invokeID: id, attributes: attributes, block: try DataBlockSA.decode(from: &buffer, limits: limits))
        default:
            throw DLMSError.unexpectedTag(choice, in: "set-request choice")
        }
    }

    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(Self.tag)
        switch self {
        case .normal(let id, let attribute, let access, let value):
            buffer.writeInteger(UInt8(1)); buffer.writeInteger(id.rawValue)
            attribute.encode(into: &buffer)
            AccessSelection.encodeOptional(access, into: &buffer)
            value.encode(into: &buffer)
        case .withFirstDataBlock(let id, let attribute, let access, let block):
            buffer.writeInteger(UInt8(2)); buffer.writeInteger(id.rawValue)
            attribute.encode(into: &buffer)
            AccessSelection.encodeOptional(access, into: &buffer)
            block.encode(into: &buffer)
        case .withDataBlock(let id, let block):
            buffer.writeInteger(UInt8(3)); buffer.writeInteger(id.rawValue)
            block.encode(into: &buffer)
        case .withList(let id, let attributes, let values):
            buffer.writeInteger(UInt8(4)); buffer.writeInteger(id.rawValue)
            buffer.writeSequence(attributes) { $0.encode(into: &$1) }
            buffer.writeSequence(values) { $0.encode(into: &$1) }
        case .withListAndFirstDataBlock(let id, let attributes, let block):
            buffer.writeInteger(UInt8(5)); buffer.writeInteger(id.rawValue)
            buffer.writeSequence(attributes) { $0.encode(into: &$1) }
            block.encode(into: &buffer)
        }
    }
}

/// `Set-Response` (Green Book 9.3.6, tag 0xC5).
public enum SetResponse: Hashable, Sendable, Codable {
    case normal(invokeID: InvokeIDAndPriority, result: DataAccessResult)
    /// Acknowledges a block and asks for the next.
    case dataBlock(invokeID: InvokeIDAndPriority, blockNumber: UInt32)
    case lastDataBlock(invokeID: InvokeIDAndPriority, result: DataAccessResult, blockNumber: UInt32)
    case lastDataBlockWithList(invokeID: InvokeIDAndPriority, results: [DataAccessResult], blockNumber: UInt32)
    case withList(invokeID: InvokeIDAndPriority, results: [DataAccessResult])

    public static let tag: UInt8 = 0xC5

    @inlinable
    public static func decode(from buffer: inout ByteBuffer) throws -> SetResponse {
        try decode(from: &buffer, limits: .default)
    }

    public static func decode(from buffer: inout ByteBuffer, limits: DLMSDecodingLimits) throws -> SetResponse {
        let tag: UInt8 = try buffer.readDLMSInteger("set-response tag")
        guard tag == Self.tag else { throw DLMSError.unexpectedTag(tag, in: "set-response") }
        let choice: UInt8 = try buffer.readDLMSInteger("set-response choice")
        let id = try InvokeIDAndPriority.decode(from: &buffer)
        func result(_ b: inout ByteBuffer) throws -> DataAccessResult { DataAccessResult(rawValue: try b.readDLMSInteger("data-access-result")) }
        switch choice {
        case 1: return .normal(invokeID: id, result: try result(&buffer))
        case 2: return .dataBlock(invokeID: id, blockNumber: try buffer.readDLMSInteger("block-number"))
        case 3:
            let r = try result(&buffer)
            return .lastDataBlock(invokeID: id, result: r, blockNumber: try buffer.readDLMSInteger("block-number"))
        case 4:
            let rs = try buffer.readSequence(limits: limits, "set results") { try result(&$0) }
            return .lastDataBlockWithList(invokeID: id, results: rs, blockNumber: try buffer.readDLMSInteger("block-number"))
        case 5:
            return .withList(invokeID: id, results: try buffer.readSequence(limits: limits, "set results") { try result(&$0) })
        default:
            throw DLMSError.unexpectedTag(choice, in: "set-response choice")
        }
    }

    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(Self.tag)
        switch self {
        case .normal(let id, let r):
            buffer.writeInteger(UInt8(1)); buffer.writeInteger(id.rawValue); buffer.writeInteger(r.rawValue)
        case .dataBlock(let id, let n):
            buffer.writeInteger(UInt8(2)); buffer.writeInteger(id.rawValue); buffer.writeInteger(n)
        case .lastDataBlock(let id, let r, let n):
            buffer.writeInteger(UInt8(3)); buffer.writeInteger(id.rawValue); buffer.writeInteger(r.rawValue); buffer.writeInteger(n)
        case .lastDataBlockWithList(let id, let rs, let n):
            buffer.writeInteger(UInt8(4)); buffer.writeInteger(id.rawValue)
            buffer.writeSequence(rs) { $1.writeInteger($0.rawValue) }
            buffer.writeInteger(n)
        case .withList(let id, let rs):
            buffer.writeInteger(UInt8(5)); buffer.writeInteger(id.rawValue)
            buffer.writeSequence(rs) { $1.writeInteger($0.rawValue) }
        }
    }
}
