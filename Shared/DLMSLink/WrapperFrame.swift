import NIOCore

/// A DLMS/COSEM transport-layer wrapper frame for TCP and UDP (IEC 62056-47 §5.2, Green Book
/// 7.3.3.3): an 8-byte header — version (0x0001), source wPort, destination wPort, length of the
/// APDU — followed by the APDU. Client wPorts are the client SAPs (e.g. 16), server wPorts the
/// logical device addresses (e.g. 1).
public struct WrapperFrame: Hashable, Sendable, CustomStringConvertible {
    /// The only wrapper protocol version defined.
    public static let version: UInt16 = 0x0001
    /// The header's length on the wire.
    public static let headerLength = 8
    /// The largest APDU the 16-bit length field can announce.
    public static let maximumAPDULength = Int(UInt16.max)

    public var source: UInt16
    public var destination: UInt16
    public var apdu: ByteBuffer

    public init(source: UInt16, destination: UInt16, apdu: ByteBuffer) {
        self.source = source
        self.destination = destination
        self.apdu = apdu
    }

    public var description: String { "WrapperFrame(\(source)→\(destination), \(apdu.readableBytes) byte(s))" }

    /// Writes header and APDU.
    ///
    /// - Precondition: the APDU is at most 65,535 bytes (callers segment with GBT or block transfer).
    @discardableResult
    public func encode(into buffer: inout ByteBuffer) -> Int {
        precondition(apdu.readableBytes <= Self.maximumAPDULength, "wrapper APDU of \(apdu.readableBytes) bytes exceeds 65535")
        return buffer.writeInteger(Self.version)
            + buffer.writeInteger(source)
            + buffer.writeInteger(destination)
            + buffer.writeInteger(UInt16(apdu.readableBytes))
            + buffer.writeImmutableBuffer(apdu)
    }

    /// The frame's bytes.
    public var encoded: ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(Self.headerLength + apdu.readableBytes)
        encode(into: &buffer)
        return buffer
    }

    /// Reads and checks a header, without consuming it.
    static func peekHeader(_ buffer: ByteBuffer, maximumAPDULength: Int) throws -> (source: UInt16, destination: UInt16, length: Int)? {
        guard buffer.readableBytes >= headerLength,
              let version = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
              let source = buffer.getInteger(at: buffer.readerIndex + 2, as: UInt16.self),
              let destination = buffer.getInteger(at: buffer.readerIndex + 4, as: UInt16.self),
              let length = buffer.getInteger(at: buffer.readerIndex + 6, as: UInt16.self)
        else { return nil }
        guard version == Self.version else {
            throw DLMSLinkError.malformedFrame("wrapper version 0x\(String(version, radix: 16)) is not 0x0001")
        }
        guard Int(length) <= maximumAPDULength else {
            throw DLMSLinkError.lengthLimitExceeded("wrapper APDU length \(length) exceeds the limit \(maximumAPDULength)")
        }
        return (source, destination, Int(length))
    }

    /// Decodes one UDP datagram, which must hold exactly one wrapper frame.
    ///
    /// - Throws: `DLMSLinkError.truncated` when the datagram is shorter than the header or the
    ///   announced length, `malformedFrame` for another version or bytes after the APDU,
    ///   `lengthLimitExceeded` when the length exceeds `maximumAPDULength`.
    public static func decode(datagram: ByteBuffer, maximumAPDULength: Int = WrapperFrame.maximumAPDULength) throws -> WrapperFrame {
        guard let header = try peekHeader(datagram, maximumAPDULength: maximumAPDULength) else {
            throw DLMSLinkError.truncated("wrapper datagram of \(datagram.readableBytes) byte(s) is shorter than the header")
        }
        let available = datagram.readableBytes - headerLength
        guard available >= header.length else {
            throw DLMSLinkError.truncated("wrapper datagram holds \(available) of \(header.length) APDU byte(s)")
        }
        guard available == header.length else {
            throw DLMSLinkError.malformedFrame("\(available - header.length) byte(s) after the wrapper APDU")
        }
        let apdu = datagram.getSlice(at: datagram.readerIndex + headerLength, length: header.length)!
        return WrapperFrame(source: header.source, destination: header.destination, apdu: apdu)
    }
}

/// Splits a TCP byte stream into wrapper frames. The wrapper has no flags to resynchronise on,
/// so a wrong version or an over-long length throws (the connection must then be closed);
/// the length is checked against `maximumAPDULength` before anything is buffered for it.
public struct WrapperFrameDecoder: NIOSingleStepByteToMessageDecoder, Sendable {
    public typealias InboundOut = WrapperFrame

    /// The largest APDU accepted. Default: 65,535 (the field's maximum); set it to the
    /// negotiated maximum PDU size to bound memory further.
    public var maximumAPDULength: Int

    public init(maximumAPDULength: Int = WrapperFrame.maximumAPDULength) {
        self.maximumAPDULength = maximumAPDULength
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> WrapperFrame? {
        guard let header = try WrapperFrame.peekHeader(buffer, maximumAPDULength: maximumAPDULength) else { return nil }
        guard buffer.readableBytes >= WrapperFrame.headerLength + header.length else { return nil }
        buffer.moveReaderIndex(forwardBy: WrapperFrame.headerLength)
        let apdu = buffer.readSlice(length: header.length)!
        return WrapperFrame(source: header.source, destination: header.destination, apdu: apdu)
    }

    /// At end of stream a partial frame is an error.
    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> WrapperFrame? {
        if let frame = try decode(buffer: &buffer) { return frame }
        guard buffer.readableBytes == 0 else {
            let count = buffer.readableBytes
            buffer.moveReaderIndex(to: buffer.writerIndex)
            throw DLMSLinkError.truncated("stream ended inside a wrapper frame (\(count) byte(s) left)")
        }
        return nil
    }
}
