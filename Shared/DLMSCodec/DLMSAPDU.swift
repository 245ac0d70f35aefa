import COSEM
import NIOCore

/// Any application-layer PDU of a logical-name association: ACSE, xDLMS services,
/// notifications, errors, block transfer, or a ciphered APDU.
public enum DLMSAPDU: Hashable, Sendable, Codable {
    case aarq(AARQ)
    case aare(AARE)
    case rlrq(RLRQ)
    case rlre(RLRE)
    case initiateRequest(InitiateRequest)
    case initiateResponse(InitiateResponse)
    case getRequest(GetRequest)
    case getResponse(GetResponse)
    case setRequest(SetRequest)
    case setResponse(SetResponse)
    case actionRequest(ActionRequest)
    case actionResponse(ActionResponse)
    case eventNotification(EventNotificationRequest)
    case dataNotification(DataNotification)
    case exceptionResponse(ExceptionResponse)
    case confirmedServiceError(ConfirmedServiceError)
    case generalBlockTransfer(GeneralBlockTransfer)
    case ciphered(CipheredAPDU)

    /// Decodes one APDU from the front of `buffer` with the default limits.
    @inlinable
    public static func decode(from buffer: inout ByteBuffer) throws -> DLMSAPDU {
        try decode(from: &buffer, limits: .default)
    }

    /// Decodes one APDU from the front of `buffer`, dispatching on its first byte.
    /// - Throws: `DLMSError`; never traps on malformed input.
    public static func decode(from buffer: inout ByteBuffer, limits: DLMSDecodingLimits) throws -> DLMSAPDU {
        guard let tag = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { throw DLMSError.truncated("empty APDU") }
        switch tag {
        case AARQ.tag: return .aarq(try AARQ.decode(from: &buffer))
        case AARE.tag: return .aare(try AARE.decode(from: &buffer))
        case RLRQ.tag: return .rlrq(try RLRQ.decode(from: &buffer))
        case RLRE.tag: return .rlre(try RLRE.decode(from: &buffer))
        case InitiateRequest.tag: return .initiateRequest(try InitiateRequest.decode(from: &buffer))
        case InitiateResponse.tag: return .initiateResponse(try InitiateResponse.decode(from: &buffer))
        case GetRequest.tag: return .getRequest(try GetRequest.decode(from: &buffer, limits: limits))
        case GetResponse.tag: return .getResponse(try GetResponse.decode(from: &buffer, limits: limits))
        case SetRequest.tag: return .setRequest(try SetRequest.decode(from: &buffer, limits: limits))
        case SetResponse.tag: return .setResponse(try SetResponse.decode(from: &buffer, limits: limits))
        case ActionRequest.tag: return .actionRequest(try ActionRequest.decode(from: &buffer, limits: limits))
        case ActionResponse.tag: return .actionResponse(try ActionResponse.decode(from: &buffer, limits: limits))
        case EventNotificationRequest.tag: return .eventNotification(try EventNotificationRequest.decode(from: &buffer, limits: limits))
        case DataNotification.tag: return .dataNotification(try DataNotification.decode(from: &buffer, limits: limits))
        case ExceptionResponse.tag: return .exceptionResponse(try ExceptionResponse.decode(from: &buffer))
        case ConfirmedServiceError.tag: return .confirmedServiceError(try ConfirmedServiceError.decode(from: &buffer))
        case GeneralBlockTransfer.tag: return .generalBlockTransfer(try GeneralBlockTransfer.decode(from: &buffer, limits: limits))
        case let t where CipheredAPDU.isCipheredTag(t): return .ciphered(try CipheredAPDU.decode(from: &buffer, limits: limits))
        case 0x05, 0x06, 0x0C, 0x0D, 0x16, 0x18:
            throw DLMSError.unsupported("short-name service APDU 0x\(String(tag, radix: 16))")
        default:
            throw DLMSError.unexpectedTag(tag, in: "APDU")
        }
    }

    /// Decodes a buffer that must hold exactly one APDU.
    public init(exactly buffer: ByteBuffer, limits: DLMSDecodingLimits = .default) throws {
        var copy = buffer
        self = try DLMSAPDU.decode(from: &copy, limits: limits)
        try copy.expectFullyConsumed("APDU")
    }

    public func encode(into buffer: inout ByteBuffer) {
        switch self {
        case .aarq(let a): a.encode(into: &buffer)
        case .aare(let a): a.encode(into: &buffer)
        case .rlrq(let a): a.encode(into: &buffer)
        case .rlre(let a): a.encode(into: &buffer)
        case .initiateRequest(let a): a.encode(into: &buffer)
        case .initiateResponse(let a): a.encode(into: &buffer)
        case .getRequest(let a): a.encode(into: &buffer)
        case .getResponse(let a): a.encode(into: &buffer)
        case .setRequest(let a): a.encode(into: &buffer)
        case .setResponse(let a): a.encode(into: &buffer)
        case .actionRequest(let a): a.encode(into: &buffer)
        case .actionResponse(let a): a.encode(into: &buffer)
        case .eventNotification(let a): a.encode(into: &buffer)
        case .dataNotification(let a): a.encode(into: &buffer)
        case .exceptionResponse(let a): a.encode(into: &buffer)
        case .confirmedServiceError(let a): a.encode(into: &buffer)
        case .generalBlockTransfer(let a): a.encode(into: &buffer)
        case .ciphered(let a): a.encode(into: &buffer)
        }
    }

    /// The encoded bytes in a new buffer.
    public var encoded: ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        encode(into: &buffer)
        return buffer
    }
}
