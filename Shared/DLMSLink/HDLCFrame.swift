import NIOCore

/// One HDLC frame of frame format type 3, as DLMS/COSEM uses it.
///
/// IEC 62056-46 §6.4: `7E | format (2) | destination (1–4) | source (1–4) | control (1) |
/// [HCS (2) | information (n)] | FCS (2) | 7E`. The format field holds the frame type 0xA, the
/// segmentation bit and an 11-bit length counting everything between the flags. HCS and FCS are
/// CRC-16/X.25 (`HDLCChecksum`), least significant byte first; the HCS is present only when
/// there is an information field. DLMS HDLC uses no byte stuffing: frames are delimited by
/// their length, the flags only help to resynchronise.
///
/// The information field is carried as raw bytes; the LLC header (`HDLCLLCHeader`) belongs to
/// the first segment of an APDU, so `HDLCConnection` adds and removes it, not the frame.
public struct HDLCFrame: Hashable, Sendable, CustomStringConvertible {
    /// The opening and closing flag.
    public static let flag: UInt8 = 0x7E
    /// The largest value of the 11-bit frame length (everything between the flags).
    public static let maximumFrameLength = 0x7FF
    /// The frame format type of format type 3.
    static let formatType: UInt16 = 0xA000
    static let segmentationBit: UInt16 = 0x0800

    public var destination: HDLCAddress
    public var source: HDLCAddress
    public var control: HDLCControl
    /// The segmentation bit of the format field: more segments of the same message follow.
    public var segmented: Bool
    /// The information field (may be empty).
    public var information: ByteBuffer

    public init(
        destination: HDLCAddress,
        source: HDLCAddress,
        control: HDLCControl,
        segmented: Bool = false,
        information: ByteBuffer = ByteBuffer()
    ) {
        self.destination = destination
        self.source = source
        self.control = control
        self.segmented = segmented
        self.information = information
    }

    /// Format, addresses and control: the bytes the HCS covers.
    var headerLength: Int { 2 + destination.size.rawValue + source.size.rawValue + 1 }

    /// The value of the format field's length: all bytes between the flags.
    public var frameLength: Int {
        let info = information.readableBytes
        return headerLength + (info > 0 ? 2 + info : 0) + 2
    }

    /// The largest information field a frame between these addresses can carry (2038 bytes with
    /// one-byte addresses at both ends, 2035 with a four-byte server address).
    public static func maximumInformationLength(destination: HDLCAddress.Size, source: HDLCAddress.Size) -> Int {
        maximumFrameLength - (2 + destination.rawValue + source.rawValue + 1) - 4
    }

    public var description: String {
        "HDLCFrame(\(control), \(source)→\(destination)\(segmented ? ", segmented" : ""), \(information.readableBytes) byte(s))"
    }

    // MARK: - Encoding

    /// Writes the frame with both flags.
    ///
    /// - Precondition: `frameLength <= 2047`; `HDLCConnection` segments messages so this holds.
    @discardableResult
    public func encode(into buffer: inout ByteBuffer) -> Int {
        let length = frameLength
        precondition(length <= Self.maximumFrameLength, "HDLC frame of \(length) bytes exceeds the 11-bit length field")
        let begin = buffer.writerIndex
        buffer.writeInteger(Self.flag)
        let headerStart = buffer.writerIndex
        var format = Self.formatType | UInt16(length)
        if segmented { format |= Self.segmentationBit }
        buffer.writeInteger(format)
        destination.encode(into: &buffer)
        source.encode(into: &buffer)
        buffer.writeInteger(control.byte)
        if information.readableBytes > 0 {
            let hcs = HDLCChecksum.compute(buffer, at: headerStart, length: buffer.writerIndex - headerStart)!
            buffer.writeInteger(hcs, endianness: .little)
            buffer.writeImmutableBuffer(information)
        }
        let fcs = HDLCChecksum.compute(buffer, at: headerStart, length: buffer.writerIndex - headerStart)!
        buffer.writeInteger(fcs, endianness: .little)
        buffer.writeInteger(Self.flag)
        return buffer.writerIndex - begin
    }

    /// The frame's bytes, flags included.
    public var encoded: ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(frameLength + 2)
        encode(into: &buffer)
        return buffer
    }

    // MARK: - Decoding

    /// Decodes exactly one frame, `7E … 7E`, from the start of `buffer`.
    ///
    /// For byte streams with partial frames, garbage and shared flags, use `HDLCFrameDecoder`.
    ///
    /// - Throws: `DLMSLinkError.truncated` when the frame is incomplete, `checksumMismatch` for a
    ///   bad HCS or FCS, `malformedFrame` for anything else that is not a valid frame, and
    ///   `unsupported` for a control field DLMS does not use.
    public static func decode(from buffer: inout ByteBuffer) throws -> HDLCFrame {
        guard buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) == flag else {
            throw DLMSLinkError.malformedFrame("HDLC frame does not start with the flag 0x7E")
        }
        switch parse(buffer, at: buffer.readerIndex + 1) {
        case .needMoreBytes:
            throw DLMSLinkError.truncated("HDLC frame: \(buffer.readableBytes) byte(s) hold no complete frame")
        case .notAFrame(let error), .checksumError(let error, _):
            throw error
        case .malformed(let error, _):
            throw error
        case .frame(let frame, let length):
            buffer.moveReaderIndex(forwardBy: length + 2)
            return frame
        }
    }

    /// The outcome of looking for a frame at a position just after an opening flag.
    enum ParseResult {
        /// The bytes so far are a plausible frame start; wait for more.
        case needMoreBytes
        /// The bytes cannot be a frame start (bad format type, address, HCS or closing flag).
        case notAFrame(DLMSLinkError)
        /// Header and flags are plausible but the FCS does not match; `length` is the frame length.
        case checksumError(DLMSLinkError, length: Int)
        /// The checksums match but the content is not a frame DLMS accepts.
        case malformed(DLMSLinkError, length: Int)
        /// A frame of `length` bytes between the flags; the closing flag is at `start + length`.
        case frame(HDLCFrame, length: Int)
    }

    /// Parses the frame whose format field starts at `start`, reading only bytes it has checked
    /// are present, and never more than the 11-bit length allows.
    static func parse(_ buffer: ByteBuffer, at start: Int) -> ParseResult {
        let available = buffer.writerIndex - start
        guard let format = buffer.getInteger(at: start, as: UInt16.self) else { return .needMoreBytes }
        guard format & 0xF000 == formatType else {
            return .notAFrame(.malformedFrame("HDLC format type 0x\(String(format >> 12, radix: 16)) is not 0xA"))
        }
        let length = Int(format & 0x07FF)
        let segmented = format & segmentationBit != 0

        // Addresses: each ends at the first byte with the extension bit set and must stay inside the frame.
        let destination: HDLCAddress
        let destinationLength: Int
        let source: HDLCAddress
        let sourceLength: Int
        do {
            guard let (d, dl) = try HDLCAddress.peek(buffer, at: start + 2) else {
                return available >= length ? .notAFrame(.malformedFrame("HDLC destination address runs past the frame")) : .needMoreBytes
            }
            guard let (s, sl) = try HDLCAddress.peek(buffer, at: start + 2 + dl) else {
                return available >= length ? .notAFrame(.malformedFrame("HDLC source address runs past the frame")) : .needMoreBytes
            }
            (destination, destinationLength, source, sourceLength) = (d, dl, s, sl)
        } catch let error as DLMSLinkError {
            return .notAFrame(error)
        } catch {
            return .notAFrame(.malformedFrame("HDLC address: \(error)"))
        }
        let headerLength = 2 + destinationLength + sourceLength + 1
        let hasInformation = length > headerLength + 2
        guard length == headerLength + 2 || length >= headerLength + 4 else {
            return .notAFrame(.malformedFrame("HDLC frame length \(length) does not fit a \(headerLength)-byte header and check sequences"))
        }
        guard let controlByte = buffer.getInteger(at: start + headerLength - 1, as: UInt8.self) else { return .needMoreBytes }

        // The HCS is checked as soon as it has arrived, so a garbage "length" is not waited for.
        if hasInformation {
            guard let hcs = buffer.getInteger(at: start + headerLength, endianness: .little, as: UInt16.self) else {
                return .needMoreBytes
            }
            let expected = HDLCChecksum.compute(buffer, at: start, length: headerLength)!
            guard hcs == expected else {
                return .notAFrame(.checksumMismatch("HDLC HCS 0x\(String(hcs, radix: 16)) ≠ 0x\(String(expected, radix: 16))"))
            }
        }
        guard available >= length + 1 else { return .needMoreBytes }
        guard buffer.getInteger(at: start + length, as: UInt8.self) == flag else {
            return .notAFrame(.malformedFrame("HDLC frame of length \(length) is not followed by a flag"))
        }
        let fcs = buffer.getInteger(at: start + length - 2, endianness: .little, as: UInt16.self)!
        let expected = HDLCChecksum.compute(buffer, at: start, length: length - 2)!
        guard fcs == expected else {
            return .checksumError(.checksumMismatch("HDLC FCS 0x\(String(fcs, radix: 16)) ≠ 0x\(String(expected, radix: 16))"), length: length)
        }
        let control: HDLCControl
        do {
            control = try HDLCControl(byte: controlByte)
        } catch let error as DLMSLinkError {
            return .malformed(error, length: length)
        } catch {
            return .malformed(.malformedFrame("HDLC control: \(error)"), length: length)
        }
        let informationStart = start + headerLength + 2
        let informationLength = hasInformation ? length - headerLength - 4 : 0
        if informationLength > 0 && !control.allowsInformation {
            return .malformed(.malformedFrame("HDLC \(control) frame carries \(informationLength) information byte(s)"), length: length)
        }
        let information = informationLength > 0
            ? buffer.getSlice(at: informationStart, length: informationLength)!
            : ByteBuffer()
        return .frame(
            HDLCFrame(destination: destination, source: source, control: control, segmented: segmented, information: information),
            length: length
        )
    }
}
