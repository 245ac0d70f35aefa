import COSEM
import NIOCore

/// A programming-mode command message `SOH C D STX data ETX BCC` (IEC 62056-21 §6.3.5), e.g.
/// `P1 (password)`, `R1 1.8.0()` (read a register), `R5 P.01(from;to)` (EMH-style load profile
/// read, a manufacturer extension), `B0` (break: leave programming mode, sent without STX data).
/// The BCC is the XOR of every byte after SOH up to and including ETX.
public struct IEC21Command: Hashable, Sendable {
    /// The command message identifier `C`.
    public enum Identifier: UInt8, Hashable, Sendable {
        /// `P`: password.
        case password = 0x50
        /// `W`: write.
        case write = 0x57
        /// `R`: read.
        case read = 0x52
        /// `E`: execute.
        case execute = 0x45
        /// `B`: exit (break).
        case exit = 0x42
    }

    public let identifier: Identifier
    /// The command type identifier `D` (`0`…`9`; `1` = ASCII data, `2` = formatted, …).
    public let type: UInt8
    /// The data set between STX and ETX; `nil` sends no STX (as in `B0`).
    public let data: String?

    /// - Throws: `DLMSLinkError.invalidParameter` for a type that is not a digit, or data with
    ///   control characters (which would end the message early).
    public init(_ identifier: Identifier, type: UInt8, data: String?) throws {
        guard type >= UInt8(ascii: "0"), type <= UInt8(ascii: "9") else {
            throw DLMSLinkError.invalidParameter("IEC 62056-21 command type 0x\(Hex.encode(type)) is not a digit")
        }
        if let data {
            guard data.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }), data.utf8.count <= 1024 else {
                throw DLMSLinkError.invalidParameter("IEC 62056-21 command data must be up to 1024 printable ASCII characters")
            }
        }
        self.identifier = identifier
        self.type = type
        self.data = data
    }

    /// `P1 (password)`: the operand for the password comparison.
    public static func password(_ password: String) throws -> IEC21Command {
        try IEC21Command(.password, type: UInt8(ascii: "1"), data: "(\(password))")
    }

    /// `R1 address()`: read one data set.
    public static func read(_ address: String) throws -> IEC21Command {
        try IEC21Command(.read, type: UInt8(ascii: "1"), data: "\(address)()")
    }

    /// `B0`: complete sign-off.
    public static let exit = try! IEC21Command(.exit, type: UInt8(ascii: "0"), data: nil)

    /// Decodes a command message starting at SOH (a device sends `P0 (operand)` to ask for the
    /// password, and `B0` when it leaves programming mode).
    ///
    /// - Returns: `nil` when the message is incomplete.
    /// - Throws: `DLMSLinkError.malformedFrame` when the buffer does not start with SOH or the
    ///   identifiers are invalid, `checksumMismatch` for a wrong BCC (the message is consumed),
    ///   `lengthLimitExceeded` for a message longer than 1,100 bytes without ETX.
    public static func decode(from buffer: inout ByteBuffer) throws -> IEC21Command? {
        let view = buffer.readableBytesView
        guard let soh = view.first else { return nil }
        guard soh == 0x01 else { throw DLMSLinkError.malformedFrame("IEC 62056-21 command message starts with 0x\(Hex.encode(soh)), not SOH") }
        guard let etx = view.firstIndex(of: IEC21DataBlock.etx) else {
            guard view.count <= maximumMessageLength else {
                buffer.moveReaderIndex(to: buffer.writerIndex)
                throw DLMSLinkError.lengthLimitExceeded("IEC 62056-21 command message without ETX in \(maximumMessageLength) bytes")
            }
            return nil
        }
        guard etx + 1 < view.endIndex else { return nil }
        let body = view[(view.startIndex + 1)...etx]
        let bcc = view[etx + 1]
        buffer.moveReaderIndex(forwardBy: etx + 2 - view.startIndex)
        guard bcc == IEC21DataBlock.blockCheck(body) else {
            throw DLMSLinkError.checksumMismatch("IEC 62056-21 command BCC 0x\(Hex.encode(bcc)) ≠ 0x\(Hex.encode(IEC21DataBlock.blockCheck(body)))")
        }
        let bytes = Array(body.dropLast())
        guard bytes.count >= 2, let identifier = Identifier(rawValue: bytes[0]) else {
            throw DLMSLinkError.malformedFrame("IEC 62056-21 command message has no valid command identifier")
        }
        var data: String? = nil
        if bytes.count > 2 {
            guard bytes[2] == IEC21DataBlock.stx else { throw DLMSLinkError.malformedFrame("IEC 62056-21 command data does not start with STX") }
            data = String(decoding: bytes[3...], as: UTF8.self)
        }
        return try IEC21Command(identifier, type: bytes[1], data: data)
    }

    static let maximumMessageLength = 1_100

    @discardableResult
    public func encode(into buffer: inout ByteBuffer) -> Int {
        var body: [UInt8] = [identifier.rawValue, type]
        if let data { body += [IEC21DataBlock.stx] + Array(data.utf8) }
        body.append(IEC21DataBlock.etx)
        return buffer.writeInteger(UInt8(0x01)) + buffer.writeBytes(body) + buffer.writeInteger(IEC21DataBlock.blockCheck(body))
    }
}

/// What a device answers in programming mode (IEC 62056-21 §6.3.6–6.3.8).
public enum IEC21Reply: Hashable, Sendable {
    /// `ACK`: the command was accepted.
    case acknowledged
    /// `NAK`: the command was not understood or the BCC was wrong; repeat it.
    case notAcknowledged
    /// A data message (STX … ETX BCC), e.g. the value read or an error message `(ERROR)`.
    case data(IEC21DataBlock)
    /// A command message from the device: `P0 (operand)` asking for the password, `B0` on exit.
    case command(IEC21Command)
}

/// Splits the device's programming-mode replies: single ACK/NAK bytes, data blocks or command
/// messages. Bytes
/// that are neither (echoes, noise) before a reply are skipped and counted.
public struct IEC21ReplyDecoder: NIOSingleStepByteToMessageDecoder, Sendable {
    public typealias InboundOut = IEC21Reply

    private var blocks: IEC21DataBlockDecoder
    public private(set) var discardedBytes = 0

    public init(maximumBlockLength: Int = 65_536) {
        blocks = IEC21DataBlockDecoder(maximumBlockLength: maximumBlockLength)
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> IEC21Reply? {
        while let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) {
            switch first {
            case 0x06:
                buffer.moveReaderIndex(forwardBy: 1)
                return .acknowledged
            case 0x15:
                buffer.moveReaderIndex(forwardBy: 1)
                return .notAcknowledged
            case IEC21DataBlock.stx:
                return try blocks.decode(buffer: &buffer).map { .data($0) }
            case 0x01:
                return try IEC21Command.decode(from: &buffer).map { .command($0) }
            default:
                discardedBytes += 1
                buffer.moveReaderIndex(forwardBy: 1)
            }
        }
        return nil
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> IEC21Reply? {
        if let reply = try decode(buffer: &buffer) { return reply }
        return try blocks.decodeLast(buffer: &buffer, seenEOF: seenEOF).map { .data($0) }
    }
}
