import NIOCore

// MARK: - A-XDR primitives (IEC 61334-6, as used by IEC 62056-6-2 and the Green Book §9.5)

extension ByteBuffer {
    /// Reads a big-endian integer, throwing `truncated` instead of returning nil.
    @inlinable
    public mutating func readDLMSInteger<T: FixedWidthInteger>(as type: T.Type = T.self, _ context: StaticString) throws -> T {
        guard let value = self.readInteger(endianness: .big, as: T.self) else {
            throw DLMSError.truncated("\(context): need \(MemoryLayout<T>.size) byte(s), have \(self.readableBytes)")
        }
        return value
    }

    /// Reads exactly `count` bytes as a slice sharing this buffer's storage.
    @inlinable
    public mutating func readDLMSSlice(length count: Int, _ context: StaticString) throws -> ByteBuffer {
        guard count >= 0, let slice = self.readSlice(length: count) else {
            throw DLMSError.truncated("\(context): need \(count) byte(s), have \(self.readableBytes)")
        }
        return slice
    }

    /// Reads exactly `count` bytes into an array.
    @inlinable
    public mutating func readDLMSBytes(length count: Int, _ context: StaticString) throws -> [UInt8] {
        guard count >= 0, count <= self.readableBytes, let bytes = self.readBytes(length: count) else {
            throw DLMSError.truncated("\(context): need \(count) byte(s), have \(self.readableBytes)")
        }
        return bytes
    }

    /// Reads an A-XDR length (one byte below 0x80, else 0x80|n followed by n big-endian bytes)
    /// and checks it against `limit` and — when `bytesPerUnit > 0` — against the bytes left, so
    /// callers can allocate `length` elements safely.
    ///
    /// - Parameters:
    ///   - limit: the largest acceptable value.
    ///   - bytesPerUnit: the minimum encoded size of one unit; the length is rejected when the
    ///     remaining input cannot hold that many units. Pass 0 to skip this check.
    @inlinable
    public mutating func readAXDRLength(limit: Int = Int(UInt32.max), bytesPerUnit: Int = 1, _ context: StaticString) throws -> Int {
        let first: UInt8 = try self.readDLMSInteger(context)
        var length: Int
        if first < 0x80 {
            length = Int(first)
        } else {
            let count = Int(first & 0x7F)
            guard count >= 1, count <= 4 else {
                throw DLMSError.lengthLimitExceeded("\(context): length of length \(count) is outside 1...4")
            }
            guard self.readableBytes >= count else {
                throw DLMSError.truncated("\(context): length needs \(count) more byte(s)")
            }
            length = 0
            for _ in 0..<count {
                length = (length << 8) | Int(self.readInteger(as: UInt8.self)!)
            }
        }
        guard length <= limit else {
            throw DLMSError.lengthLimitExceeded("\(context): length \(length) exceeds limit \(limit)")
        }
        if bytesPerUnit > 0 && length > self.readableBytes / bytesPerUnit {
            throw DLMSError.lengthLimitExceeded("\(context): length \(length) exceeds the \(self.readableBytes) byte(s) left")
        }
        return length
    }

    /// Writes an A-XDR length in its shortest form.
    @inlinable
    @discardableResult
    public mutating func writeAXDRLength(_ length: Int) -> Int {
        precondition(length >= 0 && length <= Int(UInt32.max), "A-XDR length out of range")
        if length < 0x80 {
            return self.writeInteger(UInt8(length))
        } else if length <= 0xFF {
            return self.writeInteger(UInt8(0x81)) + self.writeInteger(UInt8(length))
        } else if length <= 0xFFFF {
            return self.writeInteger(UInt8(0x82)) + self.writeInteger(UInt16(length))
        } else if length <= 0xFF_FFFF {
            return self.writeInteger(UInt8(0x83)) + self.writeInteger(UInt8(length >> 16)) + self.writeInteger(UInt16(length & 0xFFFF))
        } else {
            return self.writeInteger(UInt8(0x84)) + self.writeInteger(UInt32(length))
        }
    }

    /// Writes an octet string with its A-XDR length prefix.
    @inlinable
    @discardableResult
    public mutating func writeAXDROctetString(_ bytes: some Collection<UInt8>) -> Int {
        self.writeAXDRLength(bytes.count) + self.writeBytes(bytes)
    }

    /// Writes an octet string held in a buffer with its A-XDR length prefix.
    @inlinable
    @discardableResult
    public mutating func writeAXDROctetString(_ bytes: ByteBuffer) -> Int {
        var bytes = bytes
        return self.writeAXDRLength(bytes.readableBytes) + self.writeBuffer(&bytes)
    }

    /// Throws `trailingBytes` unless the buffer has been read completely.
    @inlinable
    public func expectFullyConsumed(_ context: StaticString) throws {
        if self.readableBytes != 0 {
            throw DLMSError.trailingBytes(self.readableBytes, after: "\(context)")
        }
    }
}

extension ByteBuffer {
    /// A buffer holding `bytes`, allocated without a channel.
    @inlinable
    public init(dlmsBytes bytes: some Sequence<UInt8>) {
        self = ByteBufferAllocator().buffer(capacity: 0)
        self.writeBytes(bytes)
    }

    /// Parses hexadecimal text, ignoring whitespace, `:` and `-` separators and an optional `0x`
    /// (``Hex/decode(capture:)``).
    public init(dlmsHex text: some StringProtocol) throws {
        self.init(dlmsBytes: try Hex.decode(capture: text))
    }

    /// The readable bytes as upper-case hexadecimal, without separators.
    public var dlmsHex: String { Hex.encode(self.readableBytesView) }
}
