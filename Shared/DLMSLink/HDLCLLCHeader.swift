import COSEM
import NIOCore

/// The LLC header that precedes an APDU in the information field of HDLC I and UI frames.
///
/// IEC 62056-46 §6.2 (and Green Book 8.4.4.1): destination LSAP 0xE6, source LSAP 0xE6 for
/// commands (client → server) or 0xE7 for responses, LLC quality 0x00. With segmentation the
/// header precedes the first segment only.
public struct HDLCLLCHeader: Hashable, Sendable {
    public let destinationLSAP: UInt8
    public let sourceLSAP: UInt8
    public let quality: UInt8

    /// `E6 E6 00`, sent by clients.
    public static let command = HDLCLLCHeader(destinationLSAP: 0xE6, sourceLSAP: 0xE6, quality: 0x00)
    /// `E6 E7 00`, sent by servers.
    public static let response = HDLCLLCHeader(destinationLSAP: 0xE6, sourceLSAP: 0xE7, quality: 0x00)

    /// The header's length on the wire.
    public static let length = 3

    public init(destinationLSAP: UInt8, sourceLSAP: UInt8, quality: UInt8) {
        self.destinationLSAP = destinationLSAP
        self.sourceLSAP = sourceLSAP
        self.quality = quality
    }

    @discardableResult
    public func encode(into buffer: inout ByteBuffer) -> Int {
        buffer.writeInteger(destinationLSAP) + buffer.writeInteger(sourceLSAP) + buffer.writeInteger(quality)
    }

    /// Reads an LLC header and checks it is DLMS's (`E6 E6 00` or `E6 E7 00`).
    ///
    /// - Throws: `DLMSLinkError.truncated` for fewer than three bytes, `malformedFrame` for any
    ///   other LSAP or quality.
    public static func decode(from buffer: inout ByteBuffer) throws -> HDLCLLCHeader {
        guard buffer.readableBytes >= length,
              let d = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
              let s = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self),
              let q = buffer.getInteger(at: buffer.readerIndex + 2, as: UInt8.self)
        else {
            throw DLMSLinkError.truncated("LLC header: need 3 bytes, have \(buffer.readableBytes)")
        }
        guard d == 0xE6, s == 0xE6 || s == 0xE7, q == 0x00 else {
            throw DLMSLinkError.malformedFrame("LLC header \(Hex.encode([d, s, q])) is not E6 E6 00 or E6 E7 00")
        }
        buffer.moveReaderIndex(forwardBy: length)
        return HDLCLLCHeader(destinationLSAP: d, sourceLSAP: s, quality: q)
    }
}
