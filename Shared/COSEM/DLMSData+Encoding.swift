import NIOCore

// MARK: - Encoding (A-XDR, Blue Book §4.1.5)
//
// A value is written through a raw-pointer cursor straight into the buffer's free capacity.
// When that is too small, the exact size is computed, reserved once, and the value written
// again; a buffer reused for one message after another (or reserved for it) takes one pass.
// Through `ByteBuffer`'s per-write bookkeeping (uniqueness, capacity and index checks on every
// integer) a 96-row load profile encoded at a fifth of the speed, and a buffer that started
// small was reallocated as it grew.
//
// The elements of a list held in a Swift array are walked by a loop over the array's buffer
// that `write(to:tagged:)` (or `encodedSize(tagged:)`) is inlined into, down to the buffer of a
// nested list: a number, a date or a string is written from the array's storage without
// copying the `DLMSData` (and retaining what it holds), and a nested list costs one call.

/// A cursor writing into reserved memory. A write that does not fit writes nothing and marks
/// the cursor `overflowed`; so do all writes after it.
@usableFromInline
struct AXDRWriter {
    let base: UnsafeMutableRawPointer?
    let end: Int
    var position = 0
    private(set) var overflowed = false

    init(_ bytes: UnsafeMutableRawBufferPointer) {
        self.base = bytes.baseAddress
        self.end = bytes.count
    }

    /// Claims `count` bytes and returns where they start, or nil (and marks the cursor
    /// overflowed) when they do not fit.
    @inline(__always)
    mutating func claim(_ count: Int) -> UnsafeMutableRawPointer? {
        guard count <= end - position, let base else {
            overflowed = true
            position = end
            return nil
        }
        defer { position += count }
        return base + position
    }

    @inline(__always)
    mutating func u8(_ value: UInt8) {
        claim(1)?.storeBytes(of: value, as: UInt8.self)
    }

    /// A big-endian integer.
    @inline(__always)
    mutating func integer<T: FixedWidthInteger>(_ value: T) {
        claim(MemoryLayout<T>.size)?.storeBytes(of: value.bigEndian, as: T.self)
    }

    /// An A-XDR length in its shortest form (as `ByteBuffer.writeAXDRLength`).
    @inline(__always)
    mutating func length(_ length: Int) {
        precondition(length >= 0 && length <= Int(UInt32.max), "A-XDR length out of range")
        if length < 0x80 {
            u8(UInt8(length))
        } else if length <= 0xFF {
            u8(0x81)
            u8(UInt8(length))
        } else if length <= 0xFFFF {
            u8(0x82)
            integer(UInt16(length))
        } else if length <= 0xFF_FFFF {
            u8(0x83)
            u8(UInt8(length >> 16))
            integer(UInt16(length & 0xFFFF))
        } else {
            u8(0x84)
            integer(UInt32(length))
        }
    }

    /// The size of `length` written by `length(_:)`.
    @inline(__always)
    static func lengthSize(_ length: Int) -> Int {
        length < 0x80 ? 1 : length <= 0xFF ? 2 : length <= 0xFFFF ? 3 : length <= 0xFF_FFFF ? 4 : 5
    }

    @inline(__always)
    mutating func bytes(_ source: UnsafeRawBufferPointer) {
        guard let target = claim(source.count), let from = source.baseAddress, source.count > 0 else { return }
        target.copyMemory(from: from, byteCount: source.count)
    }

    /// The readable bytes of `buffer`.
    @inline(__always)
    mutating func bytes(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { bytes(UnsafeRawBufferPointer($0)) }
    }
}

extension ByteBuffer {
    /// Writes through an `AXDRWriter` into the free capacity; when `write` does not fit, reserves
    /// `size()` bytes and writes again, which must then fit exactly.
    @inline(__always)
    mutating func writeAXDR(size: () -> Int, _ write: (inout AXDRWriter) -> Void) {
        let written = self.writeWithUnsafeMutableBytes(minimumWritableBytes: 0) { raw in
            var writer = AXDRWriter(raw)
            write(&writer)
            return writer.overflowed ? 0 : writer.position
        }
        guard written == 0 else { return }
        let size = size()
        guard size > 0 else { return }
        self.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw in
            var writer = AXDRWriter(UnsafeMutableRawBufferPointer(rebasing: raw[..<size]))
            write(&writer)
            precondition(!writer.overflowed && writer.position == size, "A-XDR encoding did not fill its computed \(size) bytes")
            return size
        }
    }
}

extension DLMSData {
    /// Writes the tagged A-XDR encoding.
    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeAXDR(size: { encodedSize }) { write(to: &$0, tagged: true) }
    }

    /// The size of the tagged A-XDR encoding in bytes.
    public var encodedSize: Int { encodedSize(tagged: true) }

    /// The size of the encoding; untagged (inside compact arrays) without the tag and, for
    /// arrays and structures, without the element count.
    @inline(__always)
    func encodedSize(tagged: Bool) -> Int {
        let tag = tagged ? 1 : 0
        switch self {
        case .null, .dontCare: return tag
        case .array(let elements), .structure(let elements):
            return tag + (tagged ? AXDRWriter.lengthSize(elements.count) : 0) + elements.elementsSize(tagged: tagged)
        case .boolean, .bcd, .int8, .uint8, .enumerated: return tag + 1
        case .int16, .uint16: return tag + 2
        case .int32, .uint32, .float32, .time: return tag + 4
        case .date: return tag + 5
        case .int64, .uint64, .float64: return tag + 8
        case .dateTime: return tag + 12
        case .bitString(let bits): return tag + AXDRWriter.lengthSize(bits.bitCount) + bits.bytes.count
        case .octetString(let b), .visibleString(let b), .utf8String(let b):
            return tag + AXDRWriter.lengthSize(b.readableBytes) + b.readableBytes
        case .compactArray(let compact):
            let contents = compact.contentsSize
            return tag + compact.typeDescription.encodedSize + AXDRWriter.lengthSize(contents) + contents
        }
    }

    /// Writes the encoding whose size `encodedSize(tagged:)` gives: untagged (inside compact
    /// arrays) without the tag and, for arrays and structures, without the element count.
    @inline(__always)
    func write(to w: inout AXDRWriter, tagged: Bool) {
        @inline(__always) func tag(_ type: DLMSDataType) { if tagged { w.u8(type.rawValue) } }
        switch self {
        case .null: tag(.nullData)
        case .dontCare: tag(.dontCare)
        case .array(let elements):
            tag(.array)
            if tagged { w.length(elements.count) }
            elements.writeElements(to: &w, tagged: tagged)
        case .structure(let elements):
            tag(.structure)
            if tagged { w.length(elements.count) }
            elements.writeElements(to: &w, tagged: tagged)
        case .boolean(let v):
            tag(.boolean)
            w.u8(v ? 1 : 0)
        case .bitString(let bits):
            tag(.bitString)
            w.length(bits.bitCount)
            bits.bytes.withUnsafeBytes { w.bytes($0) }
        case .int32(let v):
            tag(.doubleLong)
            w.integer(v)
        case .uint32(let v):
            tag(.doubleLongUnsigned)
            w.integer(v)
        case .octetString(let b):
            tag(.octetString)
            w.length(b.readableBytes)
            w.bytes(b)
        case .visibleString(let b):
            tag(.visibleString)
            w.length(b.readableBytes)
            w.bytes(b)
        case .utf8String(let b):
            tag(.utf8String)
            w.length(b.readableBytes)
            w.bytes(b)
        case .bcd(let v):
            tag(.bcd)
            w.integer(v)
        case .int8(let v):
            tag(.integer)
            w.integer(v)
        case .int16(let v):
            tag(.long)
            w.integer(v)
        case .uint8(let v):
            tag(.unsigned)
            w.u8(v)
        case .uint16(let v):
            tag(.longUnsigned)
            w.integer(v)
        case .compactArray(let compact):
            tag(.compactArray)
            compact.write(to: &w)
        case .int64(let v):
            tag(.long64)
            w.integer(v)
        case .uint64(let v):
            tag(.long64Unsigned)
            w.integer(v)
        case .enumerated(let v):
            tag(.enumerated)
            w.u8(v)
        case .float32(let v):
            tag(.float32)
            w.integer(v.bitPattern)
        case .float64(let v):
            tag(.float64)
            w.integer(v.bitPattern)
        case .dateTime(let v):
            tag(.dateTime)
            v.write(to: &w)
        case .date(let v):
            tag(.date)
            w.integer(v.year)
            w.u8(v.month)
            w.u8(v.dayOfMonth)
            w.u8(v.dayOfWeek)
        case .time(let v):
            tag(.time)
            w.integer(UInt32(v.hour) << 24 | UInt32(v.minute) << 16 | UInt32(v.second) << 8 | UInt32(v.hundredths))
        }
    }
}

extension CosemDateTime {
    @inline(__always)
    func write(to w: inout AXDRWriter) {
        w.integer(UInt64(date.year) << 48 | UInt64(date.month) << 40 | UInt64(date.dayOfMonth) << 32 | UInt64(date.dayOfWeek) << 24
            | UInt64(time.hour) << 16 | UInt64(time.minute) << 8 | UInt64(time.second))
        w.integer(UInt32(time.hundredths) << 24 | UInt32(UInt16(bitPattern: deviation)) << 8 | UInt32(clockStatus.rawValue))
    }
}

extension DLMSCompactArray {
    /// The size of the untagged elements, the compact array's contents.
    var contentsSize: Int { elements.reduce(0) { $0 + $1.encodedSize(tagged: false) } }

    /// The type description, then the untagged elements as an octet string.
    @inline(never)
    func write(to w: inout AXDRWriter) {
        typeDescription.write(to: &w)
        w.length(contentsSize)
        for index in elements.indices { elements[index].write(to: &w, tagged: false) }
    }
}

extension DLMSTypeDescription {
    var encodedSize: Int {
        switch self {
        case .simple: 1
        case .array(_, let element): 3 + element.encodedSize
        case .structure(let elements): 1 + AXDRWriter.lengthSize(elements.count) + elements.reduce(0) { $0 + $1.encodedSize }
        }
    }

    func write(to w: inout AXDRWriter) {
        switch self {
        case .simple(let type):
            w.u8(type.rawValue)
        case .array(let count, let element):
            w.u8(DLMSDataType.array.rawValue)
            w.integer(count)
            element.write(to: &w)
        case .structure(let elements):
            w.u8(DLMSDataType.structure.rawValue)
            w.length(elements.count)
            for e in elements { e.write(to: &w) }
        }
    }
}

extension DLMSDataList {
    /// The size of the elements, tagged or (inside compact arrays) untagged; like
    /// `writeElements(to:tagged:)`, a loop over an array's buffer with the switch inlined.
    @inline(__always)
    func elementsSize(tagged: Bool) -> Int {
        switch storage {
        case .values(let values):
            return values.withUnsafeBufferPointer { Self.size(values: $0, tagged: tagged) }
        case .decoded(let tree, let first, let count):
            var size = 0
            for index in first..<(first + count) { size += tree.encodedSize(at: index, tagged: tagged) }
            return size
        }
    }

    /// Writes the elements. Decoded elements are written from the node table, without making
    /// a `DLMSData` of each.
    @inline(__always)
    func writeElements(to w: inout AXDRWriter, tagged: Bool) {
        switch storage {
        case .values(let values):
            values.withUnsafeBufferPointer { Self.write(values: $0, to: &w, tagged: tagged) }
        case .decoded(let tree, let first, let count):
            for index in first..<(first + count) where !w.overflowed { tree.write(at: index, to: &w, tagged: tagged) }
        }
    }

    @inline(never)
    static func size(values: UnsafeBufferPointer<DLMSData>, tagged: Bool) -> Int {
        var size = 0
        for index in values.indices { size += values[index].encodedSize(tagged: tagged) }
        return size
    }

    /// Writes values held in a Swift array, each switched over here (`DLMSData.write` is
    /// inlined); only nested lists are a call.
    @inline(never)
    static func write(values: UnsafeBufferPointer<DLMSData>, to w: inout AXDRWriter, tagged: Bool) {
        for index in values.indices where !w.overflowed { values[index].write(to: &w, tagged: tagged) }
    }
}

extension DecodedDLMSTree {
    /// The size of node `index` encoded as `DLMSData.encodedSize(tagged:)` gives for its value.
    func encodedSize(at index: Int, tagged: Bool) -> Int {
        let node = node(index)
        let tag = tagged ? 1 : 0
        switch node.tag {
        case 1, 2:
            var size = tag + (tagged ? AXDRWriter.lengthSize(Int(node.small)) : 0)
            let first = Int(node.large)
            for child in first..<(first + Int(node.small)) { size += encodedSize(at: child, tagged: tagged) }
            return size
        case 4, 19: return boxed[Int(node.small)].encodedSize(tagged: tagged)
        case 3, 13, 15, 17, 22: return tag + 1
        case 16, 18: return tag + 2
        case 5, 6, 23, 27: return tag + 4
        case 26: return tag + 5
        case 20, 21, 24: return tag + 8
        case 25: return tag + 12
        case 9, 10, 12: return tag + AXDRWriter.lengthSize(Int(node.small)) + Int(node.small)
        default: return tag // null-data, dont-care: no contents
        }
    }

    /// Writes node `index` the way `DLMSData.write(to:tagged:)` writes the value it stands for.
    func write(at index: Int, to w: inout AXDRWriter, tagged: Bool) {
        let node = node(index)
        if node.tag == 4 || node.tag == 19 {
            boxed[Int(node.small)].write(to: &w, tagged: tagged)
            return
        }
        if tagged { w.u8(node.tag) }
        switch node.tag {
        case 1, 2:
            if tagged { w.length(Int(node.small)) }
            let first = Int(node.large)
            for child in first..<(first + Int(node.small)) where !w.overflowed { write(at: child, to: &w, tagged: tagged) }
        case 3, 13, 15, 17, 22: w.u8(UInt8(truncatingIfNeeded: node.small))
        case 5, 6: w.integer(UInt32(truncatingIfNeeded: node.large))
        case 9, 10, 12:
            w.length(Int(node.small))
            owner.withUnsafeReadableBytes { bytes in
                let start = Int(node.large)
                w.bytes(UnsafeRawBufferPointer(rebasing: bytes[start..<(start + Int(node.small))]))
            }
        case 16, 18: w.integer(UInt16(truncatingIfNeeded: node.small))
        case 20, 21, 24: w.integer(node.large)
        case 23, 27: w.integer(node.small)
        case 25:
            w.integer(node.large)
            w.integer(node.small)
        case 26:
            w.integer(UInt32(truncatingIfNeeded: node.large >> 8))
            w.u8(UInt8(truncatingIfNeeded: node.large))
        default: break // null-data, dont-care: no contents
        }
    }
}
