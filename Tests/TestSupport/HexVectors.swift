import COSEM
import NIOCore

// Test vectors written as hex, through the one hex helper (`COSEM.Hex`). A malformed vector is a
// typo in the test, not a case under test, so these trap instead of throwing.

/// The bytes of a hex test vector: either case, whitespace, `:`/`-` separators and `0x` allowed.
public func hexBytes(_ text: String) -> [UInt8] {
    do {
        return try Hex.decode(capture: text)
    } catch {
        fatalError("malformed hex test vector \"\(text)\": \(error)")
    }
}

/// ``hexBytes(_:)`` in a `ByteBuffer`.
public func hexBuffer(_ text: String) -> ByteBuffer {
    ByteBuffer(dlmsBytes: hexBytes(text))
}
