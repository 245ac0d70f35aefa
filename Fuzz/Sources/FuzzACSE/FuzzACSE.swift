import COSEM
import DLMSCodec
import NIOCore

/// ACSE (BER) decoders directly: AARQ, AARE, RLRQ, RLRE and the xDLMS Initiate PDUs.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzACSE(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = ByteBuffer(dlmsBytes: UnsafeBufferPointer(start: data, count: size))
    func check<T>(_ decode: (inout ByteBuffer) throws -> T, _ encode: (T, inout ByteBuffer) -> Void) {
        var buffer = input
        do {
            let value = try decode(&buffer)
            var first = ByteBuffer()
            encode(value, &first)
            var copy = first
            let again = try decode(&copy)
            var second = ByteBuffer()
            encode(again, &second)
            precondition(first == second, "re-encoding is not stable: \(first.dlmsHex) vs \(second.dlmsHex)")
        } catch is DLMSError {
        } catch {
            fatalError("untyped error \(error)")
        }
    }
    check(AARQ.decode(from:)) { $0.encode(into: &$1) }
    check(AARE.decode(from:)) { $0.encode(into: &$1) }
    check(RLRQ.decode(from:)) { $0.encode(into: &$1) }
    check(RLRE.decode(from:)) { $0.encode(into: &$1) }
    check(InitiateRequest.decode(from:)) { $0.encode(into: &$1) }
    check(InitiateResponse.decode(from:)) { $0.encode(into: &$1) }
    return 0
}
