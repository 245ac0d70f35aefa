import COSEM
import NIOCore

/// A data message `STX data ETX BCC` (IEC 62056-21 §6.3.4), as sent for a data readout: the
/// data is lines of data sets ending with `!` CR LF. The BCC is the XOR of every byte after STX
/// up to and including ETX (§6.4 block check character). Partial blocks end with EOT instead
/// of ETX.
public struct IEC21DataBlock: Hashable, Sendable {
    static let stx: UInt8 = 0x02
    static let etx: UInt8 = 0x03
    static let eot: UInt8 = 0x04

    /// The bytes between STX and ETX/EOT.
    public var data: ByteBuffer
    /// Whether the block ended with EOT (more blocks follow).
    public var isPartial: Bool

    public init(data: ByteBuffer, isPartial: Bool = false) {
        self.data = data
        self.isPartial = isPartial
    }

    /// The XOR of `bytes`.
    public static func blockCheck<S: Sequence>(_ bytes: S) -> UInt8 where S.Element == UInt8 {
        bytes.reduce(0, ^)
    }

    @discardableResult
    public func encode(into buffer: inout ByteBuffer) -> Int {
        let end = isPartial ? Self.eot : Self.etx
        let bcc = Self.blockCheck(data.readableBytesView) ^ end
        return buffer.writeInteger(Self.stx) + buffer.writeImmutableBuffer(data) + buffer.writeInteger(end) + buffer.writeInteger(bcc)
    }

    /// The data sets of all lines, skipping the closing `!` line.
    ///
    /// - Throws: `DLMSLinkError.malformedFrame` for a line that is not a sequence of
    ///   `address(value*unit)` data sets.
    public func dataSets() throws -> [IEC21DataSet] {
        var result: [IEC21DataSet] = []
        let bytes = Array(data.readableBytesView)
        for line in bytes.split(whereSeparator: { $0 == 0x0D || $0 == 0x0A }) {
            if line.first == UInt8(ascii: "!") { break }
            result += try IEC21DataSet.parseLine(line)
        }
        return result
    }
}

/// One data set of a readout line: `address(value*unit)`, possibly with several value groups
/// (`0.9.1(123456)(xx)`) or none (`F.F(00)` has one, a bare address has none).
public struct IEC21DataSet: Hashable, Sendable {
    public struct Value: Hashable, Sendable {
        public let value: String
        public let unit: String?

        public init(value: String, unit: String? = nil) {
            self.value = value
            self.unit = unit
        }
    }

    /// The data set address (an OBIS code in reduced form such as `1.8.0` or `1-0:1.8.0*255`).
    public let address: String
    public let values: [Value]

    public init(address: String, values: [Value]) {
        self.address = address
        self.values = values
    }

    static let maximumField = 128

    /// Parses one line, which may hold several data sets.
    static func parseLine<C: Collection>(_ line: C) throws -> [IEC21DataSet] where C.Element == UInt8 {
        var sets: [IEC21DataSet] = []
        var bytes = line[...]
        while !bytes.isEmpty {
            guard let open = bytes.firstIndex(of: UInt8(ascii: "(")) else {
                throw DLMSLinkError.malformedFrame("IEC 62056-21 data set \"\(String(decoding: bytes, as: UTF8.self))\" has no value")
            }
            let address = bytes[bytes.startIndex..<open]
            guard address.count <= maximumField, !address.contains(UInt8(ascii: ")")) else {
                throw DLMSLinkError.malformedFrame("IEC 62056-21 data set address is malformed")
            }
            bytes = bytes[open...]
            var values: [Value] = []
            while bytes.first == UInt8(ascii: "(") {
                guard let close = bytes.firstIndex(of: UInt8(ascii: ")")) else {
                    throw DLMSLinkError.malformedFrame("IEC 62056-21 value without closing parenthesis")
                }
                let inner = bytes[bytes.index(after: bytes.startIndex)..<close]
                guard inner.count <= maximumField, !inner.contains(UInt8(ascii: "(")) else {
                    throw DLMSLinkError.malformedFrame("IEC 62056-21 value is malformed")
                }
                if let star = inner.firstIndex(of: UInt8(ascii: "*")) {
                    values.append(Value(value: String(decoding: inner[inner.startIndex..<star], as: UTF8.self),
                                        unit: String(decoding: inner[inner.index(after: star)...], as: UTF8.self)))
                } else {
                    values.append(Value(value: String(decoding: inner, as: UTF8.self), unit: nil))
                }
                bytes = bytes[bytes.index(after: close)...]
            }
            sets.append(IEC21DataSet(address: String(decoding: address, as: UTF8.self), values: values))
        }
        return sets
    }
}

/// Splits a byte stream into IEC 62056-21 data blocks: skips bytes before STX (echoes, line
/// noise; counted in `discardedBytes`), waits for ETX or EOT and the BCC, and checks the BCC.
public struct IEC21DataBlockDecoder: NIOSingleStepByteToMessageDecoder, Sendable {
    public typealias InboundOut = IEC21DataBlock

    /// The largest block accepted, STX to BCC. Default: 65,536 bytes.
    public var maximumBlockLength: Int
    public private(set) var discardedBytes = 0

    public init(maximumBlockLength: Int = 65_536) {
        self.maximumBlockLength = maximumBlockLength
    }

    /// - Throws: `DLMSLinkError.checksumMismatch` for a wrong BCC (the block is consumed),
    ///   `lengthLimitExceeded` when no ETX/EOT arrives within `maximumBlockLength` bytes.
    public mutating func decode(buffer: inout ByteBuffer) throws -> IEC21DataBlock? {
        let view = buffer.readableBytesView
        guard let stx = view.firstIndex(of: IEC21DataBlock.stx) else {
            discardedBytes += view.count
            buffer.moveReaderIndex(to: buffer.writerIndex)
            return nil
        }
        let skipped = stx - view.startIndex
        discardedBytes += skipped
        buffer.moveReaderIndex(forwardBy: skipped)
        let block = buffer.readableBytesView
        guard let end = block.dropFirst().firstIndex(where: { $0 == IEC21DataBlock.etx || $0 == IEC21DataBlock.eot }) else {
            guard block.count <= maximumBlockLength else {
                buffer.moveReaderIndex(to: buffer.writerIndex)
                throw DLMSLinkError.lengthLimitExceeded("IEC 62056-21 data block exceeds \(maximumBlockLength) bytes")
            }
            return nil
        }
        let length = end - block.startIndex + 2   // STX … ETX BCC
        guard length <= maximumBlockLength else {
            buffer.moveReaderIndex(forwardBy: min(length, buffer.readableBytes))
            throw DLMSLinkError.lengthLimitExceeded("IEC 62056-21 data block of \(length) bytes exceeds \(maximumBlockLength)")
        }
        guard block.count >= length else { return nil }
        let bcc = block[end + 1]
        let expected = IEC21DataBlock.blockCheck(block[(block.startIndex + 1)...end])
        let isPartial = block[end] == IEC21DataBlock.eot
        let data = buffer.getSlice(at: buffer.readerIndex + 1, length: length - 3)!
        buffer.moveReaderIndex(forwardBy: length)
        guard bcc == expected else {
            throw DLMSLinkError.checksumMismatch("IEC 62056-21 BCC 0x\(Hex.encode(bcc)) ≠ 0x\(Hex.encode(expected))")
        }
        return IEC21DataBlock(data: data, isPartial: isPartial)
    }

    /// At end of input an incomplete block is an error.
    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> IEC21DataBlock? {
        if let block = try decode(buffer: &buffer) { return block }
        guard buffer.readableBytes == 0 else {
            let count = buffer.readableBytes
            buffer.moveReaderIndex(to: buffer.writerIndex)
            throw DLMSLinkError.truncated("input ended inside an IEC 62056-21 data block (\(count) byte(s))")
        }
        return nil
    }
}
