import COSEM
import NIOCore

/// The xDLMS conformance block (Green Book 9.4.6.1): 24 bits, bit 0 first.
public struct Conformance: OptionSet, Hashable, Sendable, Codable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue & 0xFF_FFFF }

    private init(bit: Int) { self.rawValue = 1 << (23 - bit) }

    public static let reservedZero = Conformance(bit: 0)
    public static let generalProtection = Conformance(bit: 1)
    public static let generalBlockTransfer = Conformance(bit: 2)
    public static let read = Conformance(bit: 3)
    public static let write = Conformance(bit: 4)
    public static let unconfirmedWrite = Conformance(bit: 5)
    public static let deltaValueEncoding = Conformance(bit: 6)
    public static let reservedSeven = Conformance(bit: 7)
    public static let attribute0SupportedWithSet = Conformance(bit: 8)
    public static let priorityManagementSupported = Conformance(bit: 9)
    public static let attribute0SupportedWithGet = Conformance(bit: 10)
    public static let blockTransferWithGetOrRead = Conformance(bit: 11)
    public static let blockTransferWithSetOrWrite = Conformance(bit: 12)
    public static let blockTransferWithAction = Conformance(bit: 13)
    public static let multipleReferences = Conformance(bit: 14)
    public static let informationReport = Conformance(bit: 15)
    public static let dataNotification = Conformance(bit: 16)
    public static let access = Conformance(bit: 17)
    public static let parameterizedAccess = Conformance(bit: 18)
    public static let get = Conformance(bit: 19)
    public static let set = Conformance(bit: 20)
    public static let selectiveAccess = Conformance(bit: 21)
    public static let eventNotification = Conformance(bit: 22)
    public static let action = Conformance(bit: 23)

    static let names = ["reserved-zero", "general-protection", "general-block-transfer", "read", "write", "unconfirmed-write",
                        "delta-value-encoding", "reserved-seven", "attribute0-supported-with-set", "priority-mgmt-supported",
                        "attribute0-supported-with-get", "block-transfer-with-get-or-read", "block-transfer-with-set-or-write",
                        "block-transfer-with-action", "multiple-references", "information-report", "data-notification", "access",
                        "parameterized-access", "get", "set", "selective-access", "event-notification", "action"]

    /// The names of the bits that are set.
    public var names: [String] { (0..<24).filter { rawValue & (1 << (23 - $0)) != 0 }.map { Self.names[$0] } }
    public var description: String { names.joined(separator: ", ") }

    /// What a logical-name client typically proposes.
    public static let defaultLN: Conformance = [.blockTransferWithGetOrRead, .blockTransferWithSetOrWrite, .blockTransferWithAction,
                                                .multipleReferences, .get, .set, .selectiveAccess, .action, .attribute0SupportedWithGet,
                                                .priorityManagementSupported]

    /// Reads the BER `[APPLICATION 31] IMPLICIT BIT STRING (SIZE(24))` form: 5F 1F 04 00 b0 b1 b2.
    static func decode(from buffer: inout ByteBuffer) throws -> Conformance {
        guard buffer.readableBytes >= 7 else { throw DLMSError.truncated("conformance block needs 7 bytes, have \(buffer.readableBytes)") }
        let header = buffer.readInteger(as: UInt32.self)!
        guard header & 0xFFFF_FF00 == 0x5F1F_0400 else {
            throw DLMSError.invalidValue("conformance block header is 0x\(String(header, radix: 16)), expected 5F1F04xx")
        }
        let high = UInt32(buffer.readInteger(as: UInt8.self)!)
        let low = UInt32(buffer.readInteger(as: UInt16.self)!)
        return Conformance(rawValue: high << 16 | low)
    }

    func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt32(0x5F1F_0400))
        buffer.writeInteger(UInt8(rawValue >> 16))
        buffer.writeInteger(UInt16(rawValue & 0xFFFF))
    }

    public init(from decoder: any Decoder) throws {
        let names = try decoder.singleValueContainer().decode([String].self)
        var value: UInt32 = 0
        for name in names {
            guard let i = Self.names.firstIndex(of: name) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown conformance bit '\(name)'"))
            }
            value |= 1 << (23 - i)
        }
        self.init(rawValue: value)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(names)
    }
}

/// `InitiateRequest` (Green Book 9.4.6.1, tag 0x01), carried in the AARQ user-information.
public struct InitiateRequest: Hashable, Sendable, Codable {
    public var dedicatedKey: DLMSBytes?
    /// nil encodes the DEFAULT (TRUE) by omission.
    public var responseAllowed: Bool?
    public var proposedQualityOfService: Int8?
    public var proposedDLMSVersion: UInt8
    public var proposedConformance: Conformance
    public var clientMaxReceivePDUSize: UInt16

    public static let tag: UInt8 = 0x01

    public init(dedicatedKey: DLMSBytes? = nil, responseAllowed: Bool? = nil, proposedQualityOfService: Int8? = nil,
                proposedDLMSVersion: UInt8 = 6, proposedConformance: Conformance, clientMaxReceivePDUSize: UInt16) {
        self.dedicatedKey = dedicatedKey
        self.responseAllowed = responseAllowed
        self.proposedQualityOfService = proposedQualityOfService
        self.proposedDLMSVersion = proposedDLMSVersion
        self.proposedConformance = proposedConformance
        self.clientMaxReceivePDUSize = clientMaxReceivePDUSize
    }

    public static func decode(from buffer: inout ByteBuffer) throws -> InitiateRequest {
        let tag: UInt8 = try buffer.readDLMSInteger("initiate-request tag")
        guard tag == Self.tag else { throw DLMSError.unexpectedTag(tag, in: "initiate-request") }
        var key: DLMSBytes? = nil
        switch try buffer.readDLMSInteger(as: UInt8.self, "dedicated-key presence") {
        case 0: break
        case 1:
            let length = try buffer.readAXDRLength(limit: 64, "dedicated-key length")
            key = DLMSBytes(buffer.readBytes(length: length)!)
        case let flag: throw DLMSError.invalidValue("dedicated-key presence flag is \(flag)")
        }
        var allowed: Bool? = nil
        switch try buffer.readDLMSInteger(as: UInt8.self, "response-allowed presence") {
        case 0: break
        case 1: allowed = try buffer.readDLMSInteger(as: UInt8.self, "response-allowed") != 0
        case let flag: throw DLMSError.invalidValue("response-allowed presence flag is \(flag)")
        }
        var qos: Int8? = nil
        switch try buffer.readDLMSInteger(as: UInt8.self, "quality-of-service presence") {
        case 0: break
        case 1: qos = try buffer.readDLMSInteger("quality-of-service")
        case let flag: throw DLMSError.invalidValue("quality-of-service presence flag is \(flag)")
        }
        let version: UInt8 = try buffer.readDLMSInteger("dlms-version-number")
        let conformance = try Conformance.decode(from: &buffer)
        let size: UInt16 = try buffer.readDLMSInteger("client-max-receive-pdu-size")
        return InitiateRequest(dedicatedKey: key, responseAllowed: allowed, proposedQualityOfService: qos,
                               proposedDLMSVersion: version, proposedConformance: conformance, clientMaxReceivePDUSize: size)
    }

    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(Self.tag)
        if let dedicatedKey { buffer.writeInteger(UInt8(1)); buffer.writeAXDROctetString(dedicatedKey.bytes) } else { buffer.writeInteger(UInt8(0)) }
        if let responseAllowed { buffer.writeInteger(UInt8(1)); buffer.writeInteger(UInt8(responseAllowed ? 1 : 0)) } else { buffer.writeInteger(UInt8(0)) }
        if let proposedQualityOfService { buffer.writeInteger(UInt8(1)); buffer.writeInteger(proposedQualityOfService) } else { buffer.writeInteger(UInt8(0)) }
        buffer.writeInteger(proposedDLMSVersion)
        proposedConformance.encode(into: &buffer)
        buffer.writeInteger(clientMaxReceivePDUSize)
    }
}

/// `InitiateResponse` (Green Book 9.4.6.1, tag 0x08), carried in the AARE user-information.
public struct InitiateResponse: Hashable, Sendable, Codable {
    public var negotiatedQualityOfService: Int8?
    public var negotiatedDLMSVersion: UInt8
    public var negotiatedConformance: Conformance
    public var serverMaxReceivePDUSize: UInt16
    /// 0x0007 for logical-name referencing, 0xFA00 for short names.
    public var vaaName: UInt16

    public static let tag: UInt8 = 0x08

    public init(negotiatedQualityOfService: Int8? = nil, negotiatedDLMSVersion: UInt8 = 6, negotiatedConformance: Conformance,
                serverMaxReceivePDUSize: UInt16, vaaName: UInt16 = 0x0007) {
        self.negotiatedQualityOfService = negotiatedQualityOfService
        self.negotiatedDLMSVersion = negotiatedDLMSVersion
        self.negotiatedConformance = negotiatedConformance
        self.serverMaxReceivePDUSize = serverMaxReceivePDUSize
        self.vaaName = vaaName
    }

    public static func decode(from buffer: inout ByteBuffer) throws -> InitiateResponse {
        let tag: UInt8 = try buffer.readDLMSInteger("initiate-response tag")
        guard tag == Self.tag else { throw DLMSError.unexpectedTag(tag, in: "initiate-response") }
        var qos: Int8? = nil
        switch try buffer.readDLMSInteger(as: UInt8.self, "quality-of-service presence") {
        case 0: break
        case 1: qos = try buffer.readDLMSInteger("quality-of-service")
        case let flag: throw DLMSError.invalidValue("quality-of-service presence flag is \(flag)")
        }
        let version: UInt8 = try buffer.readDLMSInteger("dlms-version-number")
        let conformance = try Conformance.decode(from: &buffer)
        let size: UInt16 = try buffer.readDLMSInteger("server-max-receive-pdu-size")
        let vaa: UInt16 = try buffer.readDLMSInteger("vaa-name")
        return InitiateResponse(negotiatedQualityOfService: qos, negotiatedDLMSVersion: version, negotiatedConformance: conformance,
                                serverMaxReceivePDUSize: size, vaaName: vaa)
    }

    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(Self.tag)
        if let negotiatedQualityOfService { buffer.writeInteger(UInt8(1)); buffer.writeInteger(negotiatedQualityOfService) } else { buffer.writeInteger(UInt8(0)) }
        buffer.writeInteger(negotiatedDLMSVersion)
        negotiatedConformance.encode(into: &buffer)
        buffer.writeInteger(serverMaxReceivePDUSize)
        buffer.writeInteger(vaaName)
    }
}
