import DLMSCodec
import DLMSSecurity
import Testing
import TestSupport

@Suite("HLS mechanisms and challenges")
struct HLSTests {
    @Test("mechanism names map to HLS mechanisms 3–7 only")
    func mechanisms() {
        #expect(HLSMechanism(.highMD5) == .md5)
        #expect(HLSMechanism(.highSHA1) == .sha1)
        #expect(HLSMechanism(.highGMAC) == .gmac)
        #expect(HLSMechanism(.highSHA256) == .sha256)
        #expect(HLSMechanism(.highECDSA) == .ecdsa)
        for other in [AuthenticationMechanism.lowest, .low, .high] { #expect(HLSMechanism(other) == nil) }
        #expect(HLSMechanism.all.map(\.id) == [3, 4, 5, 6, 7])
    }

    @Test("challenges: 8…64 bytes from the injected generator")
    func challenges() throws {
        var a = SeededGenerator(seed: 42)
        var b = SeededGenerator(seed: 42)
        let first = try HLS.challenge(length: 32, using: &a)
        #expect(first.count == 32)
        #expect(try HLS.challenge(length: 32, using: &b) == first)
        #expect(try HLS.challenge(length: 32, using: &a) != first)
        for length in [8, 16, 64] { #expect(try HLS.challenge(length: length).count == length) }
        #expect(try HLS.challenge() != HLS.challenge())
        for length in [0, 7, 65] {
            #expect(throws: DLMSSecurityError.invalidArgument("")) { try HLS.challenge(length: length) }
        }
    }

    /// Mechanism 7 (each party with its own key pair) is in `ECDSATests`.
    @Test("every mechanism: both parties' replies verify; a wrong secret or key does not", arguments: HLSMechanism.all.filter { $0 != .ecdsa })
    func exchange(mechanism: HLSMechanism) throws {
        var generator = SeededGenerator(seed: UInt64(mechanism.id))
        let ctos = try HLS.challenge(length: 16, using: &generator)
        let stoc = try HLS.challenge(length: 32, using: &generator)
        func credentials(_ variant: UInt8) throws -> HLSCredentials {
            mechanism == .gmac
                ? .keys(blockCipherKey: GreenBook.blockCipherKey, authenticationKey: try DLMSKey(bytes: [UInt8](repeating: 0xD0 ^ variant, count: 16)))
                : .secret(try DLMSSecret(bytes: Array("secret".utf8) + [variant]))
        }
        let client = HLSExchange(mechanism: mechanism, credentials: try credentials(0), ownSystemTitle: GreenBook.clientSystemTitle,
                                 peerSystemTitle: GreenBook.serverSystemTitle, ownChallenge: ctos, peerChallenge: stoc)
        let server = HLSExchange(mechanism: mechanism, credentials: try credentials(0), ownSystemTitle: GreenBook.serverSystemTitle,
                                 peerSystemTitle: GreenBook.clientSystemTitle, ownChallenge: stoc, peerChallenge: ctos)
        let impostor = HLSExchange(mechanism: mechanism, credentials: try credentials(1), ownSystemTitle: GreenBook.serverSystemTitle,
                                   peerSystemTitle: GreenBook.clientSystemTitle, ownChallenge: stoc, peerChallenge: ctos)
        try server.verify(client.response(invocationCounter: 5))
        try client.verify(server.response(invocationCounter: 900))
        #expect(throws: DLMSSecurityError.authenticationFailed("")) { try client.verify(impostor.response(invocationCounter: 900)) }
        #expect(!impostor.isValid(try client.response(invocationCounter: 5)))
        // A reply computed for the other direction (a reflection) is refused.
        #expect(!client.isValid(try client.response(invocationCounter: 5)))
        #expect(!client.isValid([]))
    }

    @Test("missing titles or the wrong kind of credentials are argument errors")
    func missingInputs() throws {
        let keys = HLSCredentials.keys(blockCipherKey: GreenBook.blockCipherKey, authenticationKey: GreenBook.authenticationKey)
        let secret = HLSCredentials.secret(try DLMSSecret(text: "12345678"))
        #expect(throws: DLMSSecurityError.invalidArgument("")) {
            try HLSExchange(mechanism: .gmac, credentials: keys, ownChallenge: [1], peerChallenge: [2]).response()
        }
        #expect(throws: DLMSSecurityError.invalidArgument("")) {
            try HLSExchange(mechanism: .sha256, credentials: secret, ownSystemTitle: GreenBook.clientSystemTitle, ownChallenge: [1], peerChallenge: [2]).response()
        }
        #expect(throws: DLMSSecurityError.invalidArgument("")) {
            try HLSExchange(mechanism: .md5, credentials: keys, ownChallenge: [1], peerChallenge: [2]).response()
        }
        #expect(throws: DLMSSecurityError.invalidArgument("")) {
            try HLSExchange(mechanism: .gmac, credentials: secret, ownSystemTitle: GreenBook.clientSystemTitle,
                            peerSystemTitle: GreenBook.serverSystemTitle, ownChallenge: [1], peerChallenge: [2]).response()
        }
    }

    @Test("a GMAC reply of the wrong shape is a decode failure")
    func malformedGMACReply() throws {
        let (client, _) = greenBookPair()
        let exchange = HLSExchange(gmacWith: client, ownChallenge: Array("K56iVagY".utf8), peerChallenge: Array("P6wRJ21F".utf8))
        let good = hexBytes("1001234567FE1466AFB3DBCD4F9389E2B7")
        try exchange.verify(good)
        #expect(throws: DLMSSecurityError.decodeFailure("")) { try exchange.verify(Array(good.dropLast())) }
        #expect(throws: DLMSSecurityError.decodeFailure("")) { try exchange.verify(good + [0]) }
        var otherSC = good
        otherSC[0] = 0x30
        #expect(throws: DLMSSecurityError.decodeFailure("")) { try exchange.verify(otherSC) }
        // The counter is part of the IV: changing it breaks the tag.
        var otherCounter = good
        otherCounter[4] ^= 1
        #expect(throws: DLMSSecurityError.authenticationFailed("")) { try exchange.verify(otherCounter) }
    }
}
