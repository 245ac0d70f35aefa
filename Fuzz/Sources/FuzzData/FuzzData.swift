import COSEM
import NIOCore

/// A-XDR data: typed errors only, and stable re-encoding. Tight limits exercise the checks.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzData(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var buffer = ByteBuffer(dlmsBytes: UnsafeBufferPointer(start: data, count: size))
    let limits = DLMSDecodingLimits(maxDepth: 16, maxElements: 4096, maxByteLength: 65_536)
    let value: DLMSData
    do {
        value = try DLMSData.decode(from: &buffer, limits: limits)
    } catch is DLMSError {
        return 0
    } catch {
        fatalError("untyped error \(error)")
    }
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
