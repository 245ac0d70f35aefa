import COSEM
import NIOCore

/// A-XDR data: typed errors only, and stable re-encoding. Tight limits exercise the checks.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzData(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = ByteBuffer(dlmsBytes: UnsafeBufferPointer(start: data, count: size))
    var buffer = input
    let limits = DLMSDecodingLimits(maxDepth: 16, maxElements: 4096, maxByteLength: 65_536)
    let value: DLMSData
    do {
        value = try DLMSData.decode(from: &buffer, limits: limits)
    } catch is DLMSError {
        return 0
    } catch {
        fatalError("untyped error \(error)")
    }
    checkElementBudget(input, decoded: value, consumed: size - buffer.readableBytes)
    var first = ByteBuffer()
    value.encode(into: &first)
    var copy = first
    do {
        let again = try DLMSData.decode(from: &copy, limits: limits)
        var second = ByteBuffer()
        again.encode(into: &second)
        precondition(second == first, "re-encoding is not stable: \(first.dlmsHex) vs \(second.dlmsHex)")
    } catch {
        fatalError("our own encoding \(first.dlmsHex) does not decode: \(error)")
    }
    // Arrays and structures decode into a flat tree: the same values held in Swift arrays must
    // compare equal, hash alike and encode to the same bytes.
    let rebuilt = rebuiltFromArrays(value)
    // (NaN floats are never equal to themselves, so such values are compared by their bytes only.)
    if !containsNaN(value) {
        precondition(rebuilt == value && rebuilt.hashValue == value.hashValue, "decoded tree differs from its rebuilt copy")
    }
    var third = ByteBuffer()
    rebuilt.encode(into: &third)
    precondition(third == first, "rebuilt copy encodes differently: \(first.dlmsHex) vs \(third.dlmsHex)")
    // Typed views must not trap either.
    _ = value.dateTimeValue
    _ = value.obisValue
    _ = value.stringValue
    if let rows = value.elements, let first = rows.first?.elements {
        let columns = first.indices.map { CaptureObjectDefinition(classID: $0 == 0 ? .clock : .register, logicalName: .clock, attributeIndex: 2) }
        _ = (try? ProfileGeneric.rows(buffer: value, captureObjects: columns))?.fillingNulls(capturePeriod: 900)
    }
    _ = try? AssociationLN.objectList(from: value)
    return 0
}

/// `value` with every array and structure copied into a list built from a Swift array.
func rebuiltFromArrays(_ value: DLMSData) -> DLMSData {
    switch value {
    case .array(let elements): .array(DLMSDataList(elements.map(rebuiltFromArrays)))
    case .structure(let elements): .structure(DLMSDataList(elements.map(rebuiltFromArrays)))
    default: value
    }
}

func containsNaN(_ value: DLMSData) -> Bool {
    switch value {
    case .float32(let v): v.isNaN
    case .float64(let v): v.isNaN
    case .array(let elements), .structure(let elements): elements.contains(where: containsNaN)
    case .compactArray(let compact): compact.elements.contains(where: containsNaN)
    default: false
    }
}

/// The element budget's walk (run on a response before it is decoded) agrees with the decoder:
/// it ends where the decoded value ended, counts at least the decoded values (exactly as many
/// without compact arrays, whose contents it bounds from above), and a budget one short of that
/// count is refused.
func checkElementBudget(_ input: ByteBuffer, decoded value: DLMSData, consumed: Int) {
    let nodes = nodeCount(value)
    var budget = DLMSDataElementBudget(limit: Int.max / 2)
    let end: Int?
    do {
        end = try budget.spend(on: input)
    } catch {
        fatalError("a budget of Int.max / 2 was exceeded: \(error)")
    }
    precondition(end == consumed, "the budget walk ended at \(String(describing: end)), the decoder at \(consumed): \(input.dlmsHex)")
    precondition(budget.spent >= nodes, "the budget walk counted \(budget.spent) values, the decoder made \(nodes)")
    if !containsCompactArray(value) {
        precondition(budget.spent == nodes, "the budget walk counted \(budget.spent) values, the decoder made \(nodes)")
    }
    var tight = DLMSDataElementBudget(limit: budget.spent - 1)
    do {
        try tight.spend(on: input)
        precondition(budget.spent == 1, "a budget of \(budget.spent - 1) let \(budget.spent) values through")
    } catch {}
}

func nodeCount(_ value: DLMSData) -> Int {
    switch value {
    case .array(let elements), .structure(let elements): 1 + elements.reduce(0) { $0 + nodeCount($1) }
    case .compactArray(let compact): 1 + compact.elements.reduce(0) { $0 + nodeCount($1) }
    default: 1
    }
}

func containsCompactArray(_ value: DLMSData) -> Bool {
    switch value {
    case .compactArray: true
    case .array(let elements), .structure(let elements): elements.contains(where: containsCompactArray)
    default: false
    }
}
