import Foundation
import NIOCore

/// Bytes that can be handed to librdkafka without an intermediate copy (it copies them itself).
public protocol KafkaContiguousBytes {
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R
}

extension Array: KafkaContiguousBytes where Element == UInt8 {}
extension ArraySlice: KafkaContiguousBytes where Element == UInt8 {}
extension Data: KafkaContiguousBytes {}

extension ByteBuffer: KafkaContiguousBytes {
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withUnsafeReadableBytes(body)
    }
}

extension String: KafkaContiguousBytes {
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        var copy = self
        return try copy.withUTF8 { try body(UnsafeRawBufferPointer($0)) }
    }
}
