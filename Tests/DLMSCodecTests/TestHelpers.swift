import COSEM
import DLMSCodec
import NIOCore
import TestSupport
import Testing

/// Decodes exactly one APDU, re-encodes it, and checks the bytes are identical.
@discardableResult
func roundTrip(_ hex: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> DLMSAPDU {
    let input = hexBuffer(hex)
    let apdu = try DLMSAPDU(exactly: input)
    #expect(apdu.encoded.dlmsHex == input.dlmsHex, sourceLocation: sourceLocation)
    return apdu
}
