import COSEM
import DLMSCodec
import DLMSSecurity
import NIOCore
import TestSupport

func encoded(_ apdu: CipheredAPDU) -> [UInt8] {
    var buffer = ByteBuffer()
    apdu.encode(into: &buffer)
    return buffer.readBytes(length: buffer.readableBytes)!
}

func decodedCiphered(_ bytes: [UInt8]) throws -> CipheredAPDU {
    var buffer = ByteBuffer(bytes: bytes)
    return try CipheredAPDU.decode(from: &buffer)
}

/// The Green Book's example material (DLMS UA 1000-2 Ed. 8 §9.2.7.2.4 Table 40 / HLS Table 43),
/// as quoted in the test suites of jDLMS (openmuc, CipheringTest.java, GmacTest.java) and
/// dlms-cosem (u9n/dlms-cosem tests/test_security.py).
enum GreenBook {
    static let blockCipherKey = try! DLMSKey(hex: "000102030405060708090A0B0C0D0E0F")
    static let authenticationKey = try! DLMSKey(hex: "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
    /// The server's ("MMM" + 12345678) system title and invocation counter of Table 40.
    static let serverSystemTitle = try! SystemTitle(hex: "4D4D4D0000BC614E")
    static let serverInvocationCounter: UInt32 = 0x0123_4567
    /// The client's system title and counter of the HLS-GMAC example.
    static let clientSystemTitle = try! SystemTitle(hex: "4D4D4D0000000001")
    static let clientInvocationCounter: UInt32 = 0x0000_0001
    /// get-request-normal for the clock's time (0.0.1.0.0.255, attribute 2).
    static let getRequest = hexBytes("C0010000080000010000FF0200")
}

/// A cipher context for each end of the Green Book example (client ↔ server).
func greenBookPair(policy: SecurityPolicy = .authenticatedAndEncrypted, dedicatedKey: DLMSKey? = nil) -> (client: DLMSCipher, server: DLMSCipher) {
    let client = DLMSCipher(systemTitle: GreenBook.clientSystemTitle, peerSystemTitle: GreenBook.serverSystemTitle,
                            blockCipherKey: GreenBook.blockCipherKey, authenticationKey: GreenBook.authenticationKey,
                            dedicatedKey: dedicatedKey, policy: policy)
    let server = DLMSCipher(systemTitle: GreenBook.serverSystemTitle, peerSystemTitle: GreenBook.clientSystemTitle,
                            blockCipherKey: GreenBook.blockCipherKey, authenticationKey: GreenBook.authenticationKey,
                            dedicatedKey: dedicatedKey, policy: policy)
    return (client, server)
}
