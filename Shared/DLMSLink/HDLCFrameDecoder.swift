import NIOCore

/// Splits a byte stream into HDLC frames (IEC 62056-46 §6.4), for a NIO pipeline
/// (`ByteToMessageHandler`) or any loop over received buffers
/// (`NIOSingleStepByteToMessageProcessor`).
///
/// - Returns `nil` while a frame is incomplete; never reads past the 11-bit frame length, so at
///   most 2,048 bytes are held back for one frame.
/// - Resynchronises on garbage: bytes before an opening flag, and anything that cannot start a
///   frame (wrong format type, impossible address, bad HCS, missing closing flag), are skipped up
///   to the next flag and counted in `discardedBytes`. A closing flag may double as the next
///   opening flag; runs of flags are skipped.
/// - A frame whose HCS is good but whose FCS is not is, by default, discarded and counted in
///   `checksumErrors` (`ChecksumPolicy.discard`), as ISO/IEC 13239 prescribes: the sender's
///   retransmission timer recovers. With `ChecksumPolicy.throw` the decoder throws
///   `DLMSLinkError.checksumMismatch` after consuming the frame.
/// - A frame with good checksums but content DLMS does not allow (REJ/SREJ control fields, an
///   information field on RR/RNR) is consumed and reported by throwing `malformedFrame` or
///   `unsupported`; a caller that keeps decoding after the error continues with the next frame.
public struct HDLCFrameDecoder: NIOSingleStepByteToMessageDecoder, Sendable {
    public typealias InboundOut = HDLCFrame

    /// What to do with a frame whose FCS does not match.
    public enum ChecksumPolicy: Hashable, Sendable {
        /// Skip it (count it in `checksumErrors`) and resynchronise. Default.
        case discard
        /// Throw `DLMSLinkError.checksumMismatch`.
        case `throw`
    }

    public var checksumPolicy: ChecksumPolicy
    /// Bytes skipped while resynchronising (not counting flags).
    public private(set) var discardedBytes = 0
    /// Frames skipped because their FCS did not match.
    public private(set) var checksumErrors = 0
    /// Whether the byte before the reader index was a flag, so a frame may start right there.
    private var afterFlag = false

    public init(checksumPolicy: ChecksumPolicy = .discard) {
        self.checksumPolicy = checksumPolicy
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> HDLCFrame? {
        while true {
            if !afterFlag {
                let view = buffer.readableBytesView
                guard let flagIndex = view.firstIndex(of: HDLCFrame.flag) else {
                    discardedBytes += buffer.readableBytes
                    buffer.moveReaderIndex(to: buffer.writerIndex)
                    return nil
                }
                let skipped = flagIndex - view.startIndex
                discardedBytes += skipped
                buffer.moveReaderIndex(forwardBy: skipped + 1)
                afterFlag = true
            }
            while buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) == HDLCFrame.flag {
                buffer.moveReaderIndex(forwardBy: 1)
            }
            guard buffer.readableBytes > 0 else { return nil }

            switch HDLCFrame.parse(buffer, at: buffer.readerIndex) {
            case .needMoreBytes:
                return nil
            case .notAFrame:
                // Not a frame start: search for the next flag from the byte after the flag.
                afterFlag = false
                discardedBytes += 1
                buffer.moveReaderIndex(forwardBy: 1)
            case .checksumError(let error, let length):
                checksumErrors += 1
                switch checksumPolicy {
                case .discard:
                    afterFlag = false
                    discardedBytes += 1
                    buffer.moveReaderIndex(forwardBy: 1)
                case .throw:
                    buffer.moveReaderIndex(forwardBy: length + 1)
                    afterFlag = true
                    throw error
                }
            case .malformed(let error, let length):
                buffer.moveReaderIndex(forwardBy: length + 1)
                afterFlag = true
                throw error
            case .frame(let frame, let length):
                buffer.moveReaderIndex(forwardBy: length + 1)
                afterFlag = true
                return frame
            }
        }
    }

    /// At end of input an incomplete frame is dropped (counted in `discardedBytes`); the link
    /// layer above reports the closed transport.
    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> HDLCFrame? {
        if let frame = try decode(buffer: &buffer) { return frame }
        discardedBytes += buffer.readableBytesView.lazy.filter { $0 != HDLCFrame.flag }.count
        buffer.moveReaderIndex(to: buffer.writerIndex)
        return nil
    }
}
