import NIOCore

/// A bound on how many values one response may decode to (DESIGN.md invariant 7): a meter can
/// send a legal 16 MB value of 16 million nulls that the byte limits let through but that would
/// take gigabytes once decoded.
///
/// ``spend(on:at:)`` walks the A-XDR encoding of a Data value (Blue Book §4.1.5) without
/// decoding it: no allocation, O(1) memory whatever the nesting (a prefix encoding is walked
/// with a single count of the values still to come), and it stops as soon as the budget is
/// spent. Malformed input is not judged here: the walk just stops, and the decoder that runs
/// afterwards reports the precise error.
///
/// Every value counts as one element: a null, an integer, a string, an array or structure
/// itself and each of its elements. A compact array counts its elements as the most its
/// contents can hold (contents length over the smallest encoding of one element, times the
/// values in one element).
public struct DLMSDataElementBudget: Hashable, Sendable {
    /// The budget was spent before the value ended.
    public struct Exceeded: Error, Hashable, Sendable, CustomStringConvertible {
        /// The budget's limit.
        public var limit: Int
        /// Elements counted when the walk stopped (more than `limit`).
        public var counted: Int

        public var description: String { "more than \(limit) elements in one response (counted \(counted) before stopping)" }
    }

    /// The most elements all values checked with this budget may hold together.
    public let limit: Int
    /// Elements counted so far.
    public private(set) var spent: Int = 0

    /// - Parameter limit: the most elements; at least 1.
    public init(limit: Int) {
        self.limit = max(limit, 1)
    }

    /// What is left of the budget.
    public var remaining: Int { limit - spent }

    /// Walks the tagged Data value that starts `offset` bytes after `buffer`'s reader index and
    /// adds its elements to ``spent``.
    ///
    /// - Returns: the offset just after the value, or `nil` when the value is malformed or
    ///   truncated (the caller's decoder then says why).
    /// - Throws: ``Exceeded`` once the elements counted pass ``limit``.
    @discardableResult
    public mutating func spend(on buffer: ByteBuffer, at offset: Int = 0) throws(Exceeded) -> Int? {
        let limit = self.limit
        let start = self.spent
        let result = buffer.withUnsafeReadableBytes { bytes in
            Self.walk(bytes, from: offset, spent: start, limit: limit)
        }
        spent = result.spent
        if result.spent > limit { throw Exceeded(limit: limit, counted: result.spent) }
        return result.end
    }

    // MARK: - The walk

    /// The encoded size of a value of this tag when it is fixed (without the tag), or `nil`.
    @inline(__always)
    static func fixedSize(_ tag: UInt8) -> Int? {
        switch tag {
        case 0, 255: 0
        case 3, 13, 15, 17, 22: 1
        case 16, 18: 2
        case 5, 6, 23, 27: 4
        case 26: 5
        case 20, 21, 24: 8
        case 25: 12
        default: nil
        }
    }

    /// Reads an A-XDR length at `position` (1 byte, or 0x8n and n ≤ 4 bytes).
    @inline(__always)
    static func length(_ bytes: UnsafeRawBufferPointer, _ position: inout Int) -> Int? {
        guard position < bytes.count else { return nil }
        let first = bytes[position]
        position += 1
        if first < 0x80 { return Int(first) }
        let count = Int(first & 0x7F)
        guard count >= 1, count <= 4, bytes.count - position >= count else { return nil }
        var value = 0
        for _ in 0..<count {
            value = value << 8 | Int(bytes[position])
            position += 1
        }
        return value
    }

    /// Walks one value; `pending` counts the values announced and not yet read, so nesting
    /// needs no stack. A count that exceeds the bytes left is malformed (each value takes at
    /// least its tag byte), which also keeps `pending` below the input size.
    static func walk(_ bytes: UnsafeRawBufferPointer, from offset: Int, spent: Int, limit: Int) -> (spent: Int, end: Int?) {
        var position = offset
        var spent = spent
        var pending = 1
        guard offset >= 0 else { return (spent, nil) }
        while pending > 0 {
            guard position < bytes.count else { return (spent, nil) }
            let tag = bytes[position]
            position += 1
            pending -= 1
            spent += 1
            if spent > limit { return (spent, nil) }
            if let size = fixedSize(tag) {
                guard bytes.count - position >= size else { return (spent, nil) }
                position += size
                continue
            }
            switch tag {
            case 1, 2:
                guard let count = length(bytes, &position), count <= bytes.count - position - pending else { return (spent, nil) }
                pending += count
            case 4:
                guard let bits = length(bytes, &position) else { return (spent, nil) }
                let size = bits / 8 + (bits % 8 == 0 ? 0 : 1)
                guard bytes.count - position >= size else { return (spent, nil) }
                position += size
            case 9, 10, 12:
                guard let size = length(bytes, &position), bytes.count - position >= size else { return (spent, nil) }
                position += size
            case 19:
                var shape = (values: 0, minimumSize: 0)
                guard describeType(bytes, &position, depth: 0, into: &shape), shape.minimumSize > 0,
                      let size = length(bytes, &position), bytes.count - position >= size else { return (spent, nil) }
                position += size
                let (elements, overflow) = (size / shape.minimumSize).multipliedReportingOverflow(by: shape.values)
                spent = overflow ? Int.max : min(Int.max - spent, elements) + spent
                if spent > limit { return (spent, nil) }
            default:
                return (spent, nil)
            }
        }
        return (spent, position)
    }

    /// The deepest compact-array type description walked (the decoder's default depth).
    static let maximumTypeDepth = 32

    /// Reads a compact array's type description: how many values one element decodes to and the
    /// fewest bytes one element takes. Counts saturate instead of overflowing.
    static func describeType(_ bytes: UnsafeRawBufferPointer, _ position: inout Int, depth: Int,
                             into shape: inout (values: Int, minimumSize: Int)) -> Bool {
        guard depth < maximumTypeDepth, position < bytes.count else { return false }
        let tag = bytes[position]
        position += 1
        func add(_ values: Int, _ size: Int) {
            shape.values = saturatingAdd(shape.values, values)
            shape.minimumSize = saturatingAdd(shape.minimumSize, size)
        }
        if let size = fixedSize(tag) {
            add(1, size)
            return true
        }
        switch tag {
        case 4, 9, 10, 12:
            add(1, 1)
            return true
        case 1:
            guard bytes.count - position >= 2 else { return false }
            let count = Int(bytes[position]) << 8 | Int(bytes[position + 1])
            position += 2
            var element = (values: 0, minimumSize: 0)
            guard describeType(bytes, &position, depth: depth + 1, into: &element) else { return false }
            add(saturatingAdd(1, saturatingMultiply(count, element.values)), saturatingMultiply(count, element.minimumSize))
            return true
        case 2:
            guard let count = length(bytes, &position), count <= bytes.count - position else { return false }
            add(1, 0)
            for _ in 0..<count {
                guard describeType(bytes, &position, depth: depth + 1, into: &shape) else { return false }
            }
            return true
        default:
            return false
        }
    }

    @inline(__always)
    static func saturatingAdd(_ a: Int, _ b: Int) -> Int {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? Int.max : sum
    }

    @inline(__always)
    static func saturatingMultiply(_ a: Int, _ b: Int) -> Int {
        let (product, overflow) = a.multipliedReportingOverflow(by: b)
        return overflow ? Int.max : product
    }
}
