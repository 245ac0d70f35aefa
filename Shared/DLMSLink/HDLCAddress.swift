import NIOCore

/// An HDLC address field: a client SAP (one byte) or a server address made of an upper HDLC
/// address (the logical device) and an optional lower HDLC address (the physical device on a
/// multi-drop bus), encoded on one, two or four bytes.
///
/// IEC 62056-46 §6.4.2.2: every address byte carries seven address bits followed by an
/// extension bit, which is 1 only in the last byte. With two bytes the upper and lower address
/// take one byte (7 bits) each; with four bytes two bytes (14 bits) each.
public struct HDLCAddress: Hashable, Sendable, CustomStringConvertible {
    /// The number of bytes the address occupies on the wire.
    public enum Size: Int, Hashable, Sendable, CaseIterable {
        case one = 1
        case two = 2
        case four = 4
    }

    /// The upper HDLC address: the client SAP, or the server's logical device address.
    public let upper: UInt16
    /// The lower HDLC address (server physical address); `nil` for one-byte addresses.
    public let lower: UInt16?
    /// How many bytes the address is encoded on.
    public let size: Size

    /// Creates an address with an explicit encoding size.
    ///
    /// - Throws: `DLMSLinkError.invalidParameter` when a value does not fit the size
    ///   (7 bits per part for one and two bytes, 14 bits for four), or when `lower` is given for a
    ///   one-byte address or missing for a longer one.
    public init(upper: UInt16, lower: UInt16?, size: Size) throws {
        let limit: UInt16 = size == .four ? 0x3FFF : 0x7F
        guard upper <= limit else {
            throw DLMSLinkError.invalidParameter("upper HDLC address \(upper) exceeds \(limit) for a \(size.rawValue)-byte address")
        }
        switch (size, lower) {
        case (.one, nil):
            break
        case (.one, .some):
            throw DLMSLinkError.invalidParameter("a one-byte HDLC address has no lower address")
        case (_, nil):
            throw DLMSLinkError.invalidParameter("a \(size.rawValue)-byte HDLC address needs a lower address")
        case (_, .some(let lower)):
            guard lower <= limit else {
                throw DLMSLinkError.invalidParameter("lower HDLC address \(lower) exceeds \(limit) for a \(size.rawValue)-byte address")
            }
        }
        self.upper = upper
        self.lower = lower
        self.size = size
    }

    /// A client address (one byte), e.g. 0x10 for the public client, 0x01 for the management
    /// client.
    ///
    /// - Throws: `DLMSLinkError.invalidParameter` when `sap` exceeds 0x7F.
    public static func client(_ sap: UInt8) throws -> HDLCAddress {
        try HDLCAddress(upper: UInt16(sap), lower: nil, size: .one)
    }

    /// A server address. Without `size`, the shortest encoding that holds both parts is used:
    /// one byte without a physical address, two bytes when both parts fit in 7 bits, else four.
    ///
    /// - Parameters:
    ///   - logical: the upper HDLC address (logical device, 1 for the management device).
    ///   - physical: the lower HDLC address (the device's address on the bus), if any.
    ///   - size: force an encoding size (some meters only accept four-byte addresses).
    public static func server(logical: UInt16, physical: UInt16? = nil, size: Size? = nil) throws -> HDLCAddress {
        let chosen: Size
        if let size {
            chosen = size
        } else if physical == nil {
            chosen = .one
        } else if logical <= 0x7F, let physical, physical <= 0x7F {
            chosen = .two
        } else {
            chosen = .four
        }
        return try HDLCAddress(upper: logical, lower: physical, size: chosen)
    }

    public var description: String {
        if let lower { return "\(upper)/\(lower)" }
        return "\(upper)"
    }

    // MARK: - Codec

    /// Writes the address with its extension bits.
    @discardableResult
    public func encode(into buffer: inout ByteBuffer) -> Int {
        switch size {
        case .one:
            return buffer.writeInteger(UInt8(truncatingIfNeeded: upper << 1) | 1)
        case .two:
            let lower = self.lower ?? 0
            return buffer.writeInteger(UInt8(truncatingIfNeeded: upper << 1))
                + buffer.writeInteger(UInt8(truncatingIfNeeded: lower << 1) | 1)
        case .four:
            let lower = self.lower ?? 0
            return buffer.writeInteger(UInt8(truncatingIfNeeded: (upper >> 7) << 1))
                + buffer.writeInteger(UInt8(truncatingIfNeeded: (upper & 0x7F) << 1))
                + buffer.writeInteger(UInt8(truncatingIfNeeded: (lower >> 7) << 1))
                + buffer.writeInteger(UInt8(truncatingIfNeeded: (lower & 0x7F) << 1) | 1)
        }
    }

    /// Reads an address of one, two or four bytes, ending at the first byte whose extension bit
    /// is set.
    ///
    /// - Throws: `DLMSLinkError.truncated` when the input ends first, `malformedFrame` for a
    ///   three-byte or longer-than-four-byte address.
    public static func decode(from buffer: inout ByteBuffer) throws -> HDLCAddress {
        guard let (address, length) = try peek(buffer, at: buffer.readerIndex) else {
            throw DLMSLinkError.truncated("HDLC address: input ended before the extension bit")
        }
        buffer.moveReaderIndex(forwardBy: length)
        return address
    }

    /// Parses an address at `index` without consuming it; `nil` when more bytes are needed.
    static func peek(_ buffer: ByteBuffer, at index: Int) throws -> (HDLCAddress, Int)? {
        var bytes: (UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0)
        var count = 0
        while true {
            guard let byte = buffer.getInteger(at: index + count, as: UInt8.self) else { return nil }
            switch count {
            case 0: bytes.0 = byte
            case 1: bytes.1 = byte
            case 2: bytes.2 = byte
            default: bytes.3 = byte
            }
            count += 1
            if byte & 1 == 1 { break }
            guard count < 4 else {
                throw DLMSLinkError.malformedFrame("HDLC address longer than four bytes")
            }
        }
        switch count {
        case 1:
            return (try HDLCAddress(upper: UInt16(bytes.0 >> 1), lower: nil, size: .one), 1)
        case 2:
            return (try HDLCAddress(upper: UInt16(bytes.0 >> 1), lower: UInt16(bytes.1 >> 1), size: .two), 2)
        case 4:
            let upper = UInt16(bytes.0 >> 1) << 7 | UInt16(bytes.1 >> 1)
            let lower = UInt16(bytes.2 >> 1) << 7 | UInt16(bytes.3 >> 1)
            return (try HDLCAddress(upper: upper, lower: lower, size: .four), 4)
        default:
            throw DLMSLinkError.malformedFrame("HDLC address of \(count) bytes (only 1, 2 or 4 are defined)")
        }
    }
}
