import COSEM
import NIOCore

/// `Action-Request` (Green Book 9.3.6, tag 0xC3).
public enum ActionRequest: Hashable, Sendable, Codable {
    case normal(invokeID: InvokeIDAndPriority, method: CosemMethodDescriptor, parameters: DLMSData?)
    /// Asks the server for the next block of long return parameters.
    case nextPBlock(invokeID: InvokeIDAndPriority, blockNumber: UInt32)
    case withList(invokeID: InvokeIDAndPriority, methods: [CosemMethodDescriptor], parameters: [DLMSData])
    case withFirstPBlock(invokeID: InvokeIDAndPriority, method: CosemMethodDescriptor, block: DataBlockSA)
    case withListAndFirstPBlock(invokeID: InvokeIDAndPriority, methods: [CosemMethodDescriptor], block: DataBlockSA)
    case withPBlock(invokeID: InvokeIDAndPriority, block: DataBlockSA)

    public static let tag: UInt8 = 0xC3

    @inlinable
    public static func decode(from buffer: inout ByteBuffer) throws -> ActionRequest {
        try decode(from: &buffer, limits: .default)
    }

    public static func decode(from buffer: inout ByteBuffer, limits: DLMSDecodingLimits) throws -> ActionRequest {
        let tag: UInt8 = try buffer.readDLMSInteger("action-request tag")
        guard tag == Self.tag else { throw DLMSError.unexpectedTag(tag, in: "action-request") }
        let choice: UInt8 = try buffer.readDLMSInteger("action-request choice")
        let id = try InvokeIDAndPriority.decode(from: &buffer)
        switch choice {
        case 1:
            let method = try CosemMethodDescriptor.decode(from: &buffer)
            let present: UInt8 = try buffer.readDLMSInteger("method-invocation-parameters presence")
            switch present {
            case 0: return .normal(invokeID: id, method: method, parameters: nil)
            case 1: return .normal(invokeID: id, method: method, parameters: try DLMSData.decode(from: &buffer, limits: limits))
            default: throw DLMSError.invalidValue("method-invocation-parameters presence flag is \(present)")
            }
        case 2: return .nextPBlock(invokeID: id, blockNumber: try buffer.readDLMSInteger("block-number"))
        case 3:
            let methods = try buffer.readSequence(limits: limits, "method list") { try CosemMethodDescriptor.decode(from: &$0) }
            let params = try buffer.readSequence(limits: limits, "parameter list") { try DLMSData.decode(from: &$0, limits: limits) }
            return .withList(invokeID: id, methods: methods, parameters: params)
        case 4:
            let method = try CosemMethodDescriptor.decode(from: &buffer)
            return .withFirstPBlock(invokeID: id, method: method, block: try DataBlockSA.decode(from: &buffer, limits: limits))
        case 5:
            let methods = try buffer.readSequence(limits: limits, "method list") { try CosemMethodDescriptor.decode(from: &$0) }
            return .withListAndFirstPBlock(invokeID: id, methods: methods, block: try DataBlockSA.decode(from: &buffer, limits: limits))
        case 6: return .withPBlock(invokeID: id, block: try DataBlockSA.decode(from: &buffer, limits: limits))
        default: throw DLMSError.unexpectedTag(choice, in: "action-request choice")
        }
    }

    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(Self.tag)
        switch self {
        case .normal(let id, let method, let params):
            buffer.writeInteger(UInt8(1)); buffer.writeInteger(id.rawValue)
            method.encode(into: &buffer)
            if let params { buffer.writeInteger(UInt8(1)); params.encode(into: &buffer) } else { buffer.writeInteger(UInt8(0)) }
        case .nextPBlock(let id, let n):
            buffer.writeInteger(UInt8(2)); buffer.writeInteger(id.rawValue); buffer.writeInteger(n)
        case .withList(let id, let methods, let params):
            buffer.writeInteger(UInt8(3)); buffer.writeInteger(id.rawValue)
            buffer.writeSequence(methods) { $0.encode(into: &$1) }
            buffer.writeSequence(params) { $0.encode(into: &$1) }
        case .withFirstPBlock(let id, let method, let block):
            buffer.writeInteger(UInt8(4)); buffer.writeInteger(id.rawValue)
            method.encode(into: &buffer)
            block.encode(into: &buffer)
        case .withListAndFirstPBlock(let id, let methods, let block):
            buffer.writeInteger(UInt8(5)); buffer.writeInteger(id.rawValue)
            buffer.writeSequence(methods) { $0.encode(into: &$1) }
            block.encode(into: &buffer)
        case .withPBlock(let id, let block):
            buffer.writeInteger(UInt8(6)); buffer.writeInteger(id.rawValue)
            block.encode(into: &buffer)
        }
    }
}

/// `Action-Response-With-Optional-Data`: the action result and, optionally, return parameters.
public struct ActionResponseWithOptionalData: Hashable, Sendable, Codable {
    public var result: ActionResult
    public var returnParameters: GetDataResult?

    public init(result: ActionResult, returnParameters: GetDataResult? = nil) {
        self.result = result
        self.returnParameters = returnParameters
    }

    static func decode(from buffer: inout ByteBuffer, limits: DLMSDecodingLimits) throws -> ActionResponseWithOptionalData {
        let result = ActionResult(rawValue: try buffer.readDLMSInteger("action-result"))
        // Some servers (Gurux 1.0.203 among them) end a failed ACTION-Response-Normal right after
        // the result; read a missing presence flag at the end of the APDU as "absent".
        guard buffer.readableBytes > 0 else { return ActionResponseWithOptionalData(result: result) }
        let present: UInt8 = try buffer.readDLMSInteger("return-parameters presence")
        switch present {
        case 0: return ActionResponseWithOptionalData(result: result)
        case 1: return ActionResponseWithOptionalData(result: result, returnParameters: try GetDataResult.decode(from: &buffer, limits: limits))
        default: throw DLMSError.invalidValue("return-parameters presence flag is \(present)")
        }
    }

    func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(result.rawValue)
        if let returnParameters {
            buffer.writeInteger(UInt8(1))
            returnParameters.encode(into: &buffer)
        } else {
            buffer.writeInteger(UInt8(0))
        }
    }
}

/// `Action-Response` (Green Book 9.3.6, tag 0xC7).
public enum ActionResponse: Hashable, Sendable, Codable {
    case normal(invokeID: InvokeIDAndPriority, response: ActionResponseWithOptionalData)
    case withPBlock(invokeID: InvokeIDAndPriority, block: DataBlockSA)
    case withList(invokeID: InvokeIDAndPriority, responses: [ActionResponseWithOptionalData])
    /// Acknowledges a parameter block and asks the client for the next.
    case nextPBlock(invokeID: InvokeIDAndPriority, blockNumber: UInt32)

    public static let tag: UInt8 = 0xC7

    @inlinable
    public static func decode(from buffer: inout ByteBuffer) throws -> ActionResponse {
        try decode(from: &buffer, limits: .default)
    }

    public static func decode(from buffer: inout ByteBuffer, limits: DLMSDecodingLimits) throws -> ActionResponse {
        let tag: UInt8 = try buffer.readDLMSInteger("action-response tag")
        guard tag == Self.tag else { throw DLMSError.unexpectedTag(tag, in: "action-response") }
        let choice: UInt8 = try buffer.readDLMSInteger("action-response choice")
        let id = try InvokeIDAndPriority.decode(from: &buffer)
        switch choice {
        case 1: return .normal(invokeID: id, response: try ActionResponseWithOptionalData.decode(from: &buffer, limits: limits))
        case 2: return .withPBlock(invokeID: id, block: try DataBlockSA.decode(from: &buffer, limits: limits))
        case 3:
            return .withList(invokeID: id, responses: try buffer.readSequence(limits: limits, "action responses") {
                try ActionResponseWithOptionalData.decode(from: &$0, limits: limits)
            })
        case 4: return .nextPBlock(invokeID: id, blockNumber: try buffer.readDLMSInteger("block-number"))
        default: throw DLMSError.unexpectedTag(choice, in: "action-response choice")
        }
    }

    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(Self.tag)
        switch self {
        case .normal(let id, let r):
            buffer.writeInteger(UInt8(1)); buffer.writeInteger(id.rawValue); r.encode(into: &buffer)
        case .withPBlock(let id, let block):
            buffer.writeInteger(UInt8(2)); buffer.writeInteger(id.rawValue); block.encode(into: &buffer)
        case .withList(let id, let rs):
            buffer.writeInteger(UInt8(3)); buffer.writeInteger(id.rawValue)
            buffer.writeSequence(rs) { $0.encode(into: &$1) }
        case .nextPBlock(let id, let n):
            buffer.writeInteger(UInt8(4)); buffer.writeInteger(id.rawValue); buffer.writeInteger(n)
        }
    }
}
