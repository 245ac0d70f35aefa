import COSEM
import DLMSCodec
import NIOCore

/// Any byte string: decoding throws a `DLMSError` or yields an APDU whose encoding decodes
/// again and re-encodes to the same bytes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAPDU(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var buffer = ByteBuffer(dlmsBytes: UnsafeBufferPointer(start: data, count: size))
    let apdu: DLMSAPDU
    do {
        apdu = try DLMSAPDU.decode(from: &buffer)
    } catch is DLMSError {
        return 0
    } catch {
        fatalError("untyped error \(error)")
    }
    let first = apdu.encoded
    do {
        let again = try DLMSAPDU(exactly: first)
        precondition(again.encoded == first, "re-encoding is not stable: \(first.dlmsHex) vs \(again.encoded.dlmsHex)")
    } catch {
        fatalError("our own encoding \(first.dlmsHex) does not decode: \(error)")
    }
    return 0
}
