import COSEM
import NIOCore

// MARK: - BER (X.690) primitives for ACSE

extension ByteBuffer {
    /// Reads a definite BER length (short form or 0x81–0x84 long form), bounded by the bytes left.
    mutating func readBERLength(_ context: StaticString) throws -> Int {
        let first: UInt8 = try readDLMSInteger(context)
        if first < 0x80 { return try boundedBER(Int(first), context) }
        let count = Int(first & 0x7F)
        guard count >= 1, count <= 4 else {
            throw DLMSError.lengthLimitExceeded("\(context): BER length of length \(count) is not supported (indefinite or > 4)")
        }
        guard readableBytes >= count else { throw DLMSError.truncated("\(context): BER length needs \(count) byte(s)") }
        var length = 0
        for _ in 0..<count { length = length << 8 | Int(readInteger(as: UInt8.self)!) }
        return try boundedBER(length, context)
    }

    private func boundedBER(_ length: Int, _ context: StaticString) throws -> Int {
        guard length <= readableBytes else {
            throw DLMSError.lengthLimitExceeded("\(context): BER length \(length) exceeds the \(readableBytes) byte(s) left")
        }
        return length
    }

    /// Reads one TLV with a single-byte tag and returns the tag and its contents.
    mutating func readBERElement(_ context: StaticString) throws -> (tag: UInt8, content: ByteBuffer) {
        let tag: UInt8 = try readDLMSInteger(context)
        let length = try readBERLength(context)
        return (tag, readSlice(length: length)!)
    }

    mutating func writeBERLength(_ length: Int) {
        if length < 0x80 {
            writeInteger(UInt8(length))
        } else if length <= 0xFF {
            writeInteger(UInt8(0x81)); writeInteger(UInt8(length))
        } else if length <= 0xFFFF {
            writeInteger(UInt8(0x82)); writeInteger(UInt16(length))
        } else {
            writeInteger(UInt8(0x84)); writeInteger(UInt32(length))
        }
    }

    /// Writes `tag`, then the BER length and bytes produced by `body`.
    mutating func writeBERElement(tag: UInt8, _ body: (inout ByteBuffer) -> Void) {
        var content = ByteBufferAllocator().buffer(capacity: 32)
        body(&content)
        writeInteger(tag)
        writeBERLength(content.readableBytes)
        writeBuffer(&content)
    }

    mutating func writeBERElement(tag: UInt8, bytes: [UInt8]) {
        writeInteger(tag)
        writeBERLength(bytes.count)
        writeBytes(bytes)
    }
}

/// Reads a BER INTEGER from its contents (two's complement, up to 8 bytes).
func decodeBERInteger(_ content: ByteBuffer, _ context: StaticString) throws -> Int {
    guard content.readableBytes >= 1, content.readableBytes <= 8 else {
        throw DLMSError.invalidValue("\(context): INTEGER of \(content.readableBytes) bytes")
    }
    var value = 0
    var first = true
    for byte in content.readableBytesView {
        if first { value = Int(Int8(bitPattern: byte)); first = false } else { value = value << 8 | Int(byte) }
    }
    return value
}

/// The contents of a BER INTEGER in its shortest form.
func encodeBERInteger(_ value: Int) -> [UInt8] {
    var bytes: [UInt8] = []
    var v = value
    repeat {
        bytes.insert(UInt8(truncatingIfNeeded: v), at: 0)
        v >>= 8
    } while !(v == 0 && bytes[0] & 0x80 == 0) && !(v == -1 && bytes[0] & 0x80 != 0)
    return bytes
}
