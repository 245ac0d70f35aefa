import COSEM
import NIOCore

/// A security-protected xDLMS APDU as it travels (Green Book 9.2.7.2): the protection is kept
/// opaque here; deciphering belongs to the association layer, which holds the keys.
public struct CipheredAPDU: Hashable, Sendable, Codable {
    /// glo-/ded- service tag (0x21, 0x28, 0xC8–0xCF, 0xD0–0xD7, …) or 0xDB/0xDC for general-glo/ded-ciphering.
    public var tag: UInt8
    /// Present only in general-glo-ciphering and general-ded-ciphering.
    public var systemTitle: DLMSBytes?
    /// Security control byte: suite id (bits 0–3), authentication (bit 4), encryption (bit 5), key set (bit 6), compression (bit 7).
    public var securityControl: UInt8
    public var invocationCounter: UInt32
    /// Ciphertext followed by the authentication tag (or plaintext + tag when only authenticated).
    public var payload: DLMSBytes

    public init(tag: UInt8, systemTitle: DLMSBytes? = nil, securityControl: UInt8, invocationCounter: UInt32, payload: DLMSBytes) {
        self.tag = tag
        self.systemTitle = systemTitle
        self.securityControl = securityControl
        self.invocationCounter = invocationCounter
        self.payload = payload
    }

    public var isAuthenticated: Bool { securityControl & 0x10 != 0 }
    public var isEncrypted: Bool { securityControl & 0x20 != 0 }
    public var usesBroadcastKey: Bool { securityControl & 0x40 != 0 }
    public var securitySuite: UInt8 { securityControl & 0x0F }

    /// Whether `tag` starts a ciphered APDU this type can carry. A switch, not a set: every
    /// APDU a ciphered association receives asks, and hashing a byte costs more than the answer.
    public static func isCipheredTag(_ tag: UInt8) -> Bool {
        switch tag {
        case 0x21, 0x25, 0x26, 0x28, 0x2C, 0x2D, 0x2E, 0x36, 0x38,  // glo- initiate / SN services
             0x41, 0x45, 0x46, 0x48, 0x4C, 0x4D, 0x4E, 0x56, 0x58,  // ded- initiate / SN services
             0xC8...0xCF,                                           // glo- LN services
             0xD0...0xD7,                                           // ded- LN services
             0xDB, 0xDC:                                            // general-glo-, general-ded-ciphering
            true
        default:
            false
        }
    }

    public static func decode(from buffer: inout ByteBuffer) throws -> CipheredAPDU { try decode(from: &buffer, limits: .default) }

    public static func decode(from buffer: inout ByteBuffer, limits: DLMSDecodingLimits) throws -> CipheredAPDU {
        let tag: UInt8 = try buffer.readDLMSInteger("ciphered APDU tag")
        guard isCipheredTag(tag) else { throw DLMSError.unexpectedTag(tag, in: "ciphered APDU") }
        var systemTitle: DLMSBytes? = nil
        if tag == 0xDB || tag == 0xDC {
            let length = try buffer.readAXDRLength(limit: 255, "system-title length")
            systemTitle = DLMSBytes(buffer.readBytes(length: length)!)
        }
        let length = try buffer.readAXDRLength(limit: limits.maxByteLength, "ciphered content length")
        guard length >= 5 else { throw DLMSError.invalidValue("ciphered content of \(length) bytes lacks security header") }
        let sc = buffer.readInteger(as: UInt8.self)!
        let ic = buffer.readInteger(as: UInt32.self)!
        return CipheredAPDU(tag: tag, systemTitle: systemTitle, securityControl: sc, invocationCounter: ic,
                            payload: DLMSBytes(buffer.readBytes(length: length - 5)!))
    }

    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(tag)
        if tag == 0xDB || tag == 0xDC { buffer.writeAXDROctetString(systemTitle?.bytes ?? []) }
        buffer.writeAXDRLength(5 + payload.count)
        buffer.writeInteger(securityControl)
        buffer.writeInteger(invocationCounter)
        buffer.writeBytes(payload.bytes)
    }
}
