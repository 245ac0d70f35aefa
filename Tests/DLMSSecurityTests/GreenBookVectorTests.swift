import COSEM
import DLMSCodec
import DLMSSecurity
import TestSupport
import Testing

/// The Green Book's worked examples, byte for byte.
///
/// Sources of the expected bytes (the Green Book itself is not public):
/// - glo-get-request, SC 0x10 / 0x20 / 0x30 (Green Book Ed. 8 Table 40 "Example of glo-get-request
///   with security suite 0"): jDLMS `CipheringTest.java` (`C81E3001234567…`, `C8122001234567…`,
///   github.com/xdom/jdlms src/test/java/org/openmuc/jdlms/CipheringTest.java), dlms-cosem
///   `tests/test_security.py::test_encrypt_authenticated` (github.com/u9n/dlms-cosem), and the
///   authentication-only APDU `C81E1001234567C001…06725D910F9221D263877516` from EnergyICT's
///   `com.energyict.dlms.aso.SecurityContextTest.logicalDataTransportDecryptionTest` (all three modes).
/// - glo-initiate-request (Green Book Ed. 7 AARQ example, SC 0x30, dedicated key
///   00112233445566778899AABBCCDDEEFF inside): jDLMS `CipheringTest.testCipheringExampleFromStandard`.
/// - HLS mechanism 5 passes 3 and 4 (Green Book Ed. 8 Table 43): jDLMS `GmacTest.java`
///   (`10000000011A52FE7DD3E72748973C1E28`), dlms-cosem `test_gmac`, and the pass-4 value
///   `1001234567FE1466AFB3DBCD4F9389E2B7` from the same table as reproduced in public C++
///   (`TEST(Aes128Gcm, GreenBookHlsMechanism5Vector)`) and Rust (`hls5_gmac_matches_blue_book_test_vector`)
///   DLMS stacks' tests.
@Suite("Green Book worked examples")
struct GreenBookVectorTests {
    static let modes: [(SecurityControl, String)] = [
        (.authenticated, "C81E1001234567C0010000080000010000FF020006725D910F9221D263877516"),
        (.encrypted, "C8122001234567411312FF935A47566827C467BC"),
        (.authenticatedAndEncrypted, "C81E3001234567411312FF935A47566827C467BC7D825C3BE4A77C3FCC056B6B"),
    ]

    @Test("glo-get-request is protected byte for byte", arguments: modes)
    func protectGloGetRequest(control: SecurityControl, expected: String) throws {
        let payload = try SecuritySuite0.protect(GreenBook.getRequest, securityControl: control, systemTitle: GreenBook.serverSystemTitle,
                                                 invocationCounter: GreenBook.serverInvocationCounter,
                                                 blockCipherKey: GreenBook.blockCipherKey, authenticationKey: GreenBook.authenticationKey)
        let apdu = CipheredAPDU(tag: 0xC8, securityControl: control.rawValue, invocationCounter: GreenBook.serverInvocationCounter, payload: DLMSBytes(payload))
        #expect(Hex.encode(encoded(apdu)) == expected)
    }

    @Test("glo-get-request decodes, deciphers and re-encrypts exactly", arguments: modes)
    func unprotectGloGetRequest(control: SecurityControl, expected: String) throws {
        // The example's sender is the system title 4D4D4D0000BC614E: a receiver that knows it as its peer.
        let receiver = DLMSCipher(systemTitle: GreenBook.clientSystemTitle, peerSystemTitle: GreenBook.serverSystemTitle,
                                  blockCipherKey: GreenBook.blockCipherKey, authenticationKey: GreenBook.authenticationKey,
                                  policy: SecurityPolicy(requiresAuthentication: control.isAuthenticated, requiresEncryption: control.isEncrypted))
        let plain = try receiver.unprotect(bytes: hexBytes(expected))
        #expect(plain == GreenBook.getRequest)

        let sender = DLMSCipher(systemTitle: GreenBook.serverSystemTitle, blockCipherKey: GreenBook.blockCipherKey,
                                authenticationKey: GreenBook.authenticationKey, policy: receiver.policy)
        let again = try sender.protect(plain, kind: .global, invocationCounter: GreenBook.serverInvocationCounter)
        #expect(Hex.encode(encoded(again)) == expected)
    }

    static let initiateRequest = hexBytes("01011000112233445566778899AABBCCDDEEFF0000065F1F0400007E1F04B0")
    static let cipheredInitiateRequest = "21303001234567801302FF8A7874133D414CED25B42534D28DB0047720606B175BD52211BE6841DB204D39EE6FDB8E356855"

    @Test("glo-initiate-request of the AARQ example")
    func gloInitiateRequest() throws {
        let sender = DLMSCipher(systemTitle: GreenBook.serverSystemTitle, blockCipherKey: GreenBook.blockCipherKey,
                                authenticationKey: GreenBook.authenticationKey)
        let apdu = try sender.protect(Self.initiateRequest, kind: .global, invocationCounter: GreenBook.serverInvocationCounter)
        #expect(apdu.tag == 0x21)
        #expect(Hex.encode(encoded(apdu)) == Self.cipheredInitiateRequest)

        let receiver = DLMSCipher(systemTitle: GreenBook.clientSystemTitle, peerSystemTitle: GreenBook.serverSystemTitle,
                                  blockCipherKey: GreenBook.blockCipherKey, authenticationKey: GreenBook.authenticationKey)
        #expect(try receiver.unprotect(bytes: hexBytes(Self.cipheredInitiateRequest)) == Self.initiateRequest)
    }

    @Test("HLS-GMAC pass 3: the client's f(StoC)")
    func hlsGMACPass3() throws {
        let client = HLSExchange(mechanism: .gmac,
                                 credentials: .keys(blockCipherKey: GreenBook.blockCipherKey, authenticationKey: GreenBook.authenticationKey),
                                 ownSystemTitle: GreenBook.clientSystemTitle, peerSystemTitle: GreenBook.serverSystemTitle,
                                 ownChallenge: Array("K56iVagY".utf8), peerChallenge: Array("P6wRJ21F".utf8))
        let reply = try client.response(invocationCounter: GreenBook.clientInvocationCounter)
        #expect(Hex.encode(reply) == "10000000011A52FE7DD3E72748973C1E28")
        #expect(Hex.encode(try SecuritySuite0.gmac(Array("P6wRJ21F".utf8), systemTitle: GreenBook.clientSystemTitle,
                                            invocationCounter: GreenBook.clientInvocationCounter, blockCipherKey: GreenBook.blockCipherKey,
                                            authenticationKey: GreenBook.authenticationKey)) == "1A52FE7DD3E72748973C1E28")
    }

    @Test("HLS-GMAC pass 4: the server's f(CtoS), verified by the client")
    func hlsGMACPass4() throws {
        let server = HLSExchange(mechanism: .gmac,
                                 credentials: .keys(blockCipherKey: GreenBook.blockCipherKey, authenticationKey: GreenBook.authenticationKey),
                                 ownSystemTitle: GreenBook.serverSystemTitle, peerSystemTitle: GreenBook.clientSystemTitle,
                                 ownChallenge: Array("P6wRJ21F".utf8), peerChallenge: Array("K56iVagY".utf8))
        let reply = try server.response(invocationCounter: GreenBook.serverInvocationCounter)
        #expect(Hex.encode(reply) == "1001234567FE1466AFB3DBCD4F9389E2B7")

        let (client, _) = greenBookPair()
        let clientView = HLSExchange(gmacWith: client, ownChallenge: Array("K56iVagY".utf8), peerChallenge: Array("P6wRJ21F".utf8))
        try clientView.verify(reply)
        #expect(try HLS.invocationCounter(ofGMACResponse: reply) == GreenBook.serverInvocationCounter)
        // And the server accepts the client's pass-3 reply.
        try server.verify(hexBytes("10000000011A52FE7DD3E72748973C1E28"))
    }
}
