import COSEM
import NIOCore

/// The HDLC parameters negotiated by SNRM and UA: maximum information field lengths and window
/// sizes, each seen from the side that sends the frame.
///
/// IEC 62056-46 §6.4.4.4.3.2 (ISO/IEC 13239 parameter negotiation): the information field is
/// `81` (format identifier) `80` (group identifier) `len` (group length) followed by parameters
/// `05` max information field length transmit, `06` receive, `07` window size transmit,
/// `08` receive, each as identifier, length (1, 2 or 4) and a big-endian value. Absent
/// parameters take their defaults: 128 bytes and a window of 1.
public struct HDLCParameters: Hashable, Sendable, CustomStringConvertible {
    /// The default maximum information field length (both directions).
    public static let defaultMaximumInformationLength = 128
    /// The default window size (both directions).
    public static let defaultWindowSize = 1
    /// The largest information field a frame with one-byte addresses can carry.
    public static let largestInformationLength = 2030
    /// The largest window size modulo-8 sequence numbers allow.
    public static let largestWindowSize = 7

    static let formatIdentifier: UInt8 = 0x81
    static let groupIdentifier: UInt8 = 0x80

    /// Parameter identifiers.
    enum Identifier: UInt8 {
        case maximumInformationLengthTransmit = 0x05
        case maximumInformationLengthReceive = 0x06
        case windowSizeTransmit = 0x07
        case windowSizeReceive = 0x08
    }

    /// The largest information field the sender of this frame will transmit. Default: 128.
    public var maximumInformationLengthTransmit: Int
    /// The largest information field the sender of this frame accepts. Default: 128.
    public var maximumInformationLengthReceive: Int
    /// How many I-frames the sender of this frame sends before waiting for an acknowledgement. Default: 1.
    public var windowSizeTransmit: Int
    /// How many I-frames the sender of this frame accepts before it acknowledges. Default: 1.
    public var windowSizeReceive: Int

    public init(
        maximumInformationLengthTransmit: Int = HDLCParameters.defaultMaximumInformationLength,
        maximumInformationLengthReceive: Int = HDLCParameters.defaultMaximumInformationLength,
        windowSizeTransmit: Int = HDLCParameters.defaultWindowSize,
        windowSizeReceive: Int = HDLCParameters.defaultWindowSize
    ) {
        self.maximumInformationLengthTransmit = maximumInformationLengthTransmit
        self.maximumInformationLengthReceive = maximumInformationLengthReceive
        self.windowSizeTransmit = windowSizeTransmit
        self.windowSizeReceive = windowSizeReceive
    }

    /// All four parameters at their defaults (128, 128, 1, 1).
    public static let defaults = HDLCParameters()

    /// The parameters as the peer sees them: transmit and receive swapped.
    public var mirrored: HDLCParameters {
        HDLCParameters(
            maximumInformationLengthTransmit: maximumInformationLengthReceive,
            maximumInformationLengthReceive: maximumInformationLengthTransmit,
            windowSizeTransmit: windowSizeReceive,
            windowSizeReceive: windowSizeTransmit
        )
    }

    /// Checks every value is in range: information lengths 1…2030, window sizes 1…7.
    ///
    /// - Throws: `DLMSLinkError.invalidParameter` naming the first value out of range.
    public func validate() throws {
        for (name, value) in [("maximum information length transmit", maximumInformationLengthTransmit),
                              ("maximum information length receive", maximumInformationLengthReceive)] {
            guard (1...Self.largestInformationLength).contains(value) else {
                throw DLMSLinkError.invalidParameter("HDLC \(name) \(value) is outside 1…\(Self.largestInformationLength)")
            }
        }
        for (name, value) in [("window size transmit", windowSizeTransmit), ("window size receive", windowSizeReceive)] {
            guard (1...Self.largestWindowSize).contains(value) else {
                throw DLMSLinkError.invalidParameter("HDLC \(name) \(value) is outside 1…\(Self.largestWindowSize)")
            }
        }
    }

    public var description: String {
        "HDLCParameters(info tx \(maximumInformationLengthTransmit), rx \(maximumInformationLengthReceive), window tx \(windowSizeTransmit), rx \(windowSizeReceive))"
    }

    // MARK: - Codec

    /// How `encode` writes the parameters.
    public struct EncodingOptions: Hashable, Sendable {
        /// Leave out parameters that equal their default (Gurux does this in SNRM); when all
        /// four are defaults nothing at all is written. Default: false.
        public var omitDefaults: Bool
        /// The byte count used for window sizes. Default: 4 (as in the Green Book examples).
        public var windowSizeLength: Int

        public init(omitDefaults: Bool = false, windowSizeLength: Int = 4) {
            self.omitDefaults = omitDefaults
            self.windowSizeLength = windowSizeLength
        }
    }

    /// Writes the negotiation information field. Information lengths take one byte up to 255,
    /// else two; window sizes take `options.windowSizeLength` bytes.
    @discardableResult
    public func encode(into buffer: inout ByteBuffer, options: EncodingOptions = EncodingOptions()) -> Int {
        var parameters = ByteBuffer()
        func write(_ id: Identifier, _ value: Int, width: Int?, isDefault: Bool) {
            if options.omitDefaults && isDefault { return }
            let size = width ?? (value <= 0xFF ? 1 : (value <= 0xFFFF ? 2 : 4))
            parameters.writeInteger(id.rawValue)
            parameters.writeInteger(UInt8(size))
            switch size {
            case 1: parameters.writeInteger(UInt8(truncatingIfNeeded: value))
            case 2: parameters.writeInteger(UInt16(truncatingIfNeeded: value))
            default: parameters.writeInteger(UInt32(truncatingIfNeeded: value))
            }
        }
        let windowWidth = [1, 2, 4].contains(options.windowSizeLength) ? options.windowSizeLength : 4
        write(.maximumInformationLengthTransmit, maximumInformationLengthTransmit, width: nil,
              isDefault: maximumInformationLengthTransmit == Self.defaultMaximumInformationLength)
        write(.maximumInformationLengthReceive, maximumInformationLengthReceive, width: nil,
              isDefault: maximumInformationLengthReceive == Self.defaultMaximumInformationLength)
        write(.windowSizeTransmit, windowSizeTransmit, width: windowWidth, isDefault: windowSizeTransmit == Self.defaultWindowSize)
        write(.windowSizeReceive, windowSizeReceive, width: windowWidth, isDefault: windowSizeReceive == Self.defaultWindowSize)
        if options.omitDefaults && parameters.readableBytes == 0 { return 0 }
        return buffer.writeInteger(Self.formatIdentifier)
            + buffer.writeInteger(Self.groupIdentifier)
            + buffer.writeInteger(UInt8(parameters.readableBytes))
            + buffer.writeBuffer(&parameters)
    }

    /// The encoded information field (empty when `omitDefaults` leaves nothing to send).
    public func encoded(options: EncodingOptions = EncodingOptions()) -> ByteBuffer {
        var buffer = ByteBuffer()
        encode(into: &buffer, options: options)
        return buffer
    }

    /// Decodes the information field of an SNRM or UA frame. An empty field means all defaults;
    /// parameters not present keep their defaults; unknown parameter identifiers are skipped.
    ///
    /// - Throws: `DLMSLinkError.malformedFrame` for a wrong format or group identifier,
    ///   `truncated` when a length runs past the input, `invalidParameter` for a value length
    ///   other than 1, 2 or 4 or a value out of range (see `validate()`), `trailingBytes`-like
    ///   `malformedFrame` when bytes follow the group.
    public static func decode(from buffer: inout ByteBuffer) throws -> HDLCParameters {
        var result = HDLCParameters()
        guard buffer.readableBytes > 0 else { return result }
        guard let format = buffer.readInteger(as: UInt8.self), format == formatIdentifier else {
            throw DLMSLinkError.malformedFrame("HDLC parameter format identifier is not 0x81")
        }
        guard let group = buffer.readInteger(as: UInt8.self) else {
            throw DLMSLinkError.truncated("HDLC parameters: group identifier missing")
        }
        guard group == groupIdentifier else {
            throw DLMSLinkError.malformedFrame("HDLC parameter group identifier 0x\(Hex.encode(group)) is not 0x80")
        }
        guard let groupLength = buffer.readInteger(as: UInt8.self) else {
            throw DLMSLinkError.truncated("HDLC parameters: group length missing")
        }
        guard var group = buffer.readSlice(length: Int(groupLength)) else {
            throw DLMSLinkError.truncated("HDLC parameter group of \(groupLength) byte(s) with \(buffer.readableBytes) left")
        }
        while group.readableBytes > 0 {
            guard let id = group.readInteger(as: UInt8.self), let length = group.readInteger(as: UInt8.self) else {
                throw DLMSLinkError.truncated("HDLC parameter header cut short")
            }
            guard let bytes = group.readSlice(length: Int(length)) else {
                throw DLMSLinkError.truncated("HDLC parameter 0x\(Hex.encode(id)) of \(length) byte(s) with \(group.readableBytes) left")
            }
            guard let identifier = Identifier(rawValue: id) else { continue }
            guard [1, 2, 4].contains(Int(length)) else {
                throw DLMSLinkError.invalidParameter("HDLC parameter 0x\(Hex.encode(id)) has a \(length)-byte value")
            }
            var value = 0
            for byte in bytes.readableBytesView { value = value << 8 | Int(byte) }
            switch identifier {
            case .maximumInformationLengthTransmit: result.maximumInformationLengthTransmit = value
            case .maximumInformationLengthReceive: result.maximumInformationLengthReceive = value
            case .windowSizeTransmit: result.windowSizeTransmit = value
            case .windowSizeReceive: result.windowSizeReceive = value
            }
        }
        guard buffer.readableBytes == 0 else {
            throw DLMSLinkError.malformedFrame("\(buffer.readableBytes) byte(s) after the HDLC parameter group")
        }
        try result.validate()
        return result
    }

    // MARK: - Negotiation

    /// What a client may use after its SNRM `proposal` was answered by a UA carrying `response`
    /// (`nil` for a UA without information field, meaning all defaults).
    ///
    /// The server's transmit values bound what the client receives and vice versa; a server that
    /// answers with more than was proposed is held to the proposal.
    public static func negotiated(proposal: HDLCParameters, response: HDLCParameters?) -> HDLCParameters {
        let server = response ?? .defaults
        return HDLCParameters(
            maximumInformationLengthTransmit: min(proposal.maximumInformationLengthTransmit, server.maximumInformationLengthReceive),
            maximumInformationLengthReceive: min(proposal.maximumInformationLengthReceive, server.maximumInformationLengthTransmit),
            windowSizeTransmit: min(proposal.windowSizeTransmit, server.windowSizeReceive),
            windowSizeReceive: min(proposal.windowSizeReceive, server.windowSizeTransmit)
        )
    }
}
