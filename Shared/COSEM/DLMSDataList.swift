import NIOCore

/// The elements of an array or a structure.
///
/// A list is either values held in a Swift array (what code builds) or a window into a decoded
/// tree: decoding an array of structures (a profile buffer) keeps every value of every row in one
/// flat node table, so a 96-row load profile costs one allocation rather than one per row. The two
/// forms behave the same: equality, hashing, `Codable` and mutation look only at the elements
/// (mutating a decoded list first copies its elements out).
public struct DLMSDataList: RandomAccessCollection, RangeReplaceableCollection, MutableCollection, Hashable, Sendable,
    ExpressibleByArrayLiteral
{
    @usableFromInline
    enum Storage: Sendable {
        case values([DLMSData])
        case decoded(DecodedDLMSTree, first: Int, count: Int)
    }

    @usableFromInline
    var storage: Storage

    public init() { storage = .values([]) }
    public init(_ values: [DLMSData]) { storage = .values(values) }
    public init<S: Sequence>(_ values: S) where S.Element == DLMSData { storage = .values(Array(values)) }
    public init(arrayLiteral elements: DLMSData...) { storage = .values(elements) }

    @usableFromInline
    init(tree: DecodedDLMSTree, first: Int, count: Int) { storage = .decoded(tree, first: first, count: count) }

    // Index and element reads are inlinable: a profile reader asks for every value of every
    // row, and a call per value (with a retain of the tree around it) cost more than the read.
    @inlinable
    public var startIndex: Int { 0 }

    @inlinable
    public var endIndex: Int {
        switch storage {
        case .values(let values): values.count
        case .decoded(_, _, let count): count
        }
    }

    public subscript(position: Int) -> DLMSData {
        @inlinable
        get {
            switch storage {
            case .values(let values):
                return values[position]
            case .decoded(let tree, let first, let count):
                precondition(position >= 0 && position < count, "DLMSDataList index out of range")
                return tree.value(at: first + position)
            }
        }
        set { withValues { $0[position] = newValue } }
    }

    public mutating func replaceSubrange<C: Collection>(_ subrange: Range<Int>, with newElements: C) where C.Element == DLMSData {
        withValues { $0.replaceSubrange(subrange, with: newElements) }
    }

    public mutating func reserveCapacity(_ n: Int) {
        withValues { $0.reserveCapacity(n) }
    }

    /// Changes the elements as a Swift array (copied out of a decoded tree first). The array is
    /// taken out of `storage` while it changes, so it stays uniquely referenced and is not copied.
    private mutating func withValues(_ change: (inout [DLMSData]) -> Void) {
        var values = materialized()
        storage = .values([])
        change(&values)
        storage = .values(values)
    }

    /// The elements as a Swift array.
    public var array: [DLMSData] { materialized() }

    func materialized() -> [DLMSData] {
        switch storage {
        case .values(let values): values
        case .decoded: Array(self)
        }
    }

    public static func == (lhs: DLMSDataList, rhs: DLMSDataList) -> Bool {
        lhs.count == rhs.count && lhs.elementsEqual(rhs)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(count)
        for element in self { hasher.combine(element) }
    }
}

// MARK: - Reading elements in place

extension DLMSDataList {
    /// The elements of the array or structure at `position` (`self[position].elements`); for a
    /// decoded list, a window into the same node table, without making the element first.
    func elementList(at position: Int) -> DLMSDataList? {
        switch storage {
        case .values(let values):
            return values[position].elements
        case .decoded(let tree, let first, let count):
            precondition(position >= 0 && position < count, "DLMSDataList index out of range")
            return tree.elementList(at: first + position)
        }
    }

    /// `self[position].elements?.count`, for a decoded list read from the node table.
    func elementCount(at position: Int) -> Int? {
        switch storage {
        case .values(let values):
            return values[position].elements?.count
        case .decoded(let tree, let first, let count):
            precondition(position >= 0 && position < count, "DLMSDataList index out of range")
            return tree.elementCount(at: first + position)
        }
    }

    /// `self[row].elements?[column].dateTimeValue`, for a decoded list read from the node table
    /// without making the row or the cell first.
    func dateTimeValue(row: Int, column: Int) -> CosemDateTime? {
        switch storage {
        case .values(let values):
            guard let cells = values[row].elements else { return nil }
            return cells.dateTimeValue(at: column)
        case .decoded(let tree, let first, let count):
            precondition(row >= 0 && row < count, "DLMSDataList index out of range")
            return tree.dateTimeValue(row: first + row, column: column)
        }
    }

    /// `self[position].dateTimeValue`: a date-time, or a 12-byte octet string read as one; for
    /// a decoded list, read from the node table and the received bytes, without a slice.
    func dateTimeValue(at position: Int) -> CosemDateTime? {
        switch storage {
        case .values(let values):
            return values[position].dateTimeValue
        case .decoded(let tree, let first, let count):
            precondition(position >= 0 && position < count, "DLMSDataList index out of range")
            return tree.dateTimeValue(at: first + position)
        }
    }
}

extension DLMSDataList: CustomStringConvertible {
    public var description: String { array.description }
}

extension DLMSDataList: Codable {
    public init(from decoder: any Decoder) throws {
        storage = .values(try [DLMSData](from: decoder))
    }

    public func encode(to encoder: any Encoder) throws {
        try array.encode(to: encoder)
    }
}

/// Values decoded from one buffer, flattened into a node table: a container node names where its
/// elements start in the table and how many there are; strings are offsets into the buffer, which
/// the tree keeps; numbers, dates and times are held in the node itself. `@unchecked Sendable`:
/// nothing changes once decoding has finished, and only then do lists see the tree.
@usableFromInline
final class DecodedDLMSTree: @unchecked Sendable {
    /// One decoded value in 16 bytes. `tag` is the A-XDR tag; `small` and `large` hold the value:
    /// for arrays and structures the element count and the index of the first element; for
    /// strings the length and the offset in `owner`; for numbers their bits; for bit strings and
    /// compact arrays an index into `boxed`.
    @usableFromInline
    struct Node {
        @usableFromInline var tag: UInt8
        @usableFromInline var small: UInt32
        @usableFromInline var large: UInt64
    }

    /// The node table, `count` nodes, owned by the tree.
    @usableFromInline let nodes: UnsafeMutablePointer<Node>
    @usableFromInline let count: Int
    /// Bit strings and compact arrays, decoded as values.
    @usableFromInline let boxed: [DLMSData]
    /// The buffer the values were decoded from, reader index at the first byte decoded.
    let owner: ByteBuffer

    /// Takes ownership of `nodes` (allocated with `UnsafeMutablePointer.allocate`).
    init(nodes: UnsafeMutablePointer<Node>, count: Int, boxed: [DLMSData], owner: ByteBuffer) {
        self.nodes = nodes
        self.count = count
        self.boxed = boxed
        self.owner = owner
    }

    deinit { nodes.deallocate() }

    @inlinable @inline(__always)
    func node(_ index: Int) -> Node {
        precondition(index >= 0 && index < count, "decoded node index out of range")
        return nodes[index]
    }

    @inlinable @inline(__always)
    func value(at index: Int) -> DLMSData {
        let node = node(index)
        switch node.tag {
        case 0: return .null
        case 1: return .array(DLMSDataList(tree: self, first: Int(node.large), count: Int(node.small)))
        case 2: return .structure(DLMSDataList(tree: self, first: Int(node.large), count: Int(node.small)))
        case 3: return .boolean(node.small != 0)
        case 4, 19: return boxed[Int(node.small)]
        case 5: return .int32(Int32(truncatingIfNeeded: Int64(bitPattern: node.large)))
        case 6: return .uint32(UInt32(truncatingIfNeeded: node.large))
        case 9: return .octetString(slice(node))
        case 10: return .visibleString(slice(node))
        case 12: return .utf8String(slice(node))
        case 13: return .bcd(Int8(bitPattern: UInt8(truncatingIfNeeded: node.small)))
        case 15: return .int8(Int8(bitPattern: UInt8(truncatingIfNeeded: node.small)))
        case 16: return .int16(Int16(bitPattern: UInt16(truncatingIfNeeded: node.small)))
        case 17: return .uint8(UInt8(truncatingIfNeeded: node.small))
        case 18: return .uint16(UInt16(truncatingIfNeeded: node.small))
        case 20: return .int64(Int64(bitPattern: node.large))
        case 21: return .uint64(node.large)
        case 22: return .enumerated(UInt8(truncatingIfNeeded: node.small))
        case 23: return .float32(Float(bitPattern: node.small))
        case 24: return .float64(Double(bitPattern: node.large))
        case 25:
            return .dateTime(CosemDateTime(packedDate: node.large, trailer: node.small))
        case 26:
            let d = node.large
            return .date(CosemDate(year: UInt16((d >> 24) & 0xFFFF), month: UInt8((d >> 16) & 0xFF), dayOfMonth: UInt8((d >> 8) & 0xFF), dayOfWeek: UInt8(d & 0xFF)))
        case 27:
            let v = node.small
            return .time(CosemTime(hour: UInt8(v >> 24), minute: UInt8((v >> 16) & 0xFF), second: UInt8((v >> 8) & 0xFF), hundredths: UInt8(v & 0xFF)))
        default: return .dontCare
        }
    }

    /// `value(at: index).elements?.count`.
    @inline(__always)
    func elementCount(at index: Int) -> Int? {
        let node = node(index)
        switch node.tag {
        case 1, 2: return Int(node.small)
        case 19: return boxed[Int(node.small)].elements?.count
        default: return nil
        }
    }

    /// `value(at: index).elements`.
    @inline(__always)
    func elementList(at index: Int) -> DLMSDataList? {
        let node = node(index)
        switch node.tag {
        case 1, 2: return DLMSDataList(tree: self, first: Int(node.large), count: Int(node.small))
        case 19: return boxed[Int(node.small)].elements
        default: return nil
        }
    }

    /// `value(at: row).elements?[column].dateTimeValue`.
    @inline(__always)
    func dateTimeValue(row: Int, column: Int) -> CosemDateTime? {
        let node = node(row)
        switch node.tag {
        case 1, 2:
            precondition(column >= 0 && column < Int(node.small), "DLMSDataList index out of range")
            return dateTimeValue(at: Int(node.large) + column)
        case 19:
            return boxed[Int(node.small)].elements.flatMap { $0.dateTimeValue(at: column) }
        default:
            return nil
        }
    }

    /// `value(at: index).dateTimeValue`.
    @inline(__always)
    func dateTimeValue(at index: Int) -> CosemDateTime? {
        let node = node(index)
        switch node.tag {
        case 25:
            return CosemDateTime(packedDate: node.large, trailer: node.small)
        case 9 where node.small == 12:
            return owner.withUnsafeReadableBytes { bytes in
                let start = Int(node.large)
                return CosemDateTime(packedDate: UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: start, as: UInt64.self)),
                                     trailer: UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: start + 8, as: UInt32.self)))
            }
        default:
            return nil
        }
    }

    @usableFromInline
    func slice(_ node: Node) -> ByteBuffer {
        owner.getSlice(at: owner.readerIndex + Int(node.large), length: Int(node.small))!
    }
}

/// Builds a `DecodedDLMSTree` while decoding: slots are reserved for a container's elements
/// before they are decoded (so a container's elements are contiguous) and filled in place. The
/// builder owns its node table until `finish()` hands it to the tree; a builder that is dropped
/// without finishing (a decoding error) must be released with `discard()`.
struct DLMSTreeBuilder {
    private var nodes: UnsafeMutablePointer<DecodedDLMSTree.Node>
    private var capacity: Int
    private var count = 0
    private var boxed: [DLMSData] = []
    private let owner: ByteBuffer

    init(estimatedNodes: Int, owner: ByteBuffer) {
        capacity = max(estimatedNodes, 4)
        nodes = .allocate(capacity: capacity)
        self.owner = owner
    }

    /// Reserves `n` consecutive slots and returns the index of the first.
    @inline(__always)
    mutating func reserve(_ n: Int) -> Int {
        let first = count
        if n > capacity - count { grow(to: count + n) }
        count += n
        return first
    }

    /// Stores `node` in a reserved slot.
    @inline(__always)
    func set(_ slot: Int, _ node: DecodedDLMSTree.Node) {
        precondition(slot >= 0 && slot < count, "tree slot out of range")
        (nodes + slot).initialize(to: node)
    }

    mutating func box(_ value: DLMSData) -> UInt32 {
        boxed.append(value)
        return UInt32(boxed.count - 1)
    }

    private mutating func grow(to needed: Int) {
        let newCapacity = max(needed, capacity * 2)
        let bigger = UnsafeMutablePointer<DecodedDLMSTree.Node>.allocate(capacity: newCapacity)
        bigger.moveInitialize(from: nodes, count: count)
        nodes.deallocate()
        nodes = bigger
        capacity = newCapacity
    }

    /// The finished tree, which now owns the node table.
    func finish() -> DecodedDLMSTree {
        DecodedDLMSTree(nodes: nodes, count: count, boxed: boxed, owner: owner)
    }

    /// Frees the node table of a tree that will not be finished.
    func discard() { nodes.deallocate() }
}
