import COSEM
import Crypto
import DLMSSecurity
import NIOCore
import TestSupport
import Testing

@Suite("Security setup key_agreement (ECDH, suites 1 and 2)")
struct KeyAgreementTests {
    struct Parties {
        let client: DLMSKeyAgreement
        let server: DLMSKeyAgreement
    }

    /// Both sides of a vector suite with the vectors' fixed ephemeral keys.
    static func parties(_ suite: KeyAgreementVectors.Suite, keyID: DLMSKeyID? = nil) throws -> Parties {
        let clientTitle = try SystemTitle(hex: KeyAgreementVectors.clientSystemTitle)
        let serverTitle = try SystemTitle(hex: KeyAgreementVectors.serverSystemTitle)
        let id = keyID ?? DLMSKeyID(rawValue: suite.keyID)!
        let client = try DLMSKeyAgreement(role: .client, keyID: id, signingKey: try DLMSSigningKey(hex: suite.clientSigningKey),
                                          peerSigningKey: try DLMSPublicKey(hex: suite.serverSigningPublicKey),
                                          clientSystemTitle: clientTitle, serverSystemTitle: serverTitle,
                                          ephemeralKey: try DLMSEphemeralKey(bytes: hexBytes(suite.clientEphemeralKey)))
        let server = try DLMSKeyAgreement(role: .server, keyID: id, signingKey: try DLMSSigningKey(hex: suite.serverSigningKey),
                                          peerSigningKey: try DLMSPublicKey(hex: suite.clientSigningPublicKey),
                                          clientSystemTitle: clientTitle, serverSystemTitle: serverTitle,
                                          ephemeralKey: try DLMSEphemeralKey(bytes: hexBytes(suite.serverEphemeralKey)))
        return Parties(client: client, server: server)
    }

    @Test("the concatenation KDF gives ConcatKDFHash's output (SHA-256 and SHA-384, one and two blocks)",
          arguments: KeyAgreementVectors.kdf)
    func kdf(_ vector: KeyAgreementVectors.KDF) {
        let output = DLMSKeyAgreement.concatenationKDF(curve: vector.sha384 ? .p384 : .p256, sharedSecret: hexBytes(vector.z),
                                                       otherInfo: hexBytes(vector.otherInfo), length: vector.length)
        #expect(Hex.encode(output) == vector.output)
    }

    @Test("OtherInfo is AlgorithmID ‖ client title ‖ server title, as the vectors'", arguments: KeyAgreementVectors.suites)
    func otherInfo(_ suite: KeyAgreementVectors.Suite) throws {
        let curve = try ECDSACurve(securitySuite: suite.securitySuite)
        let info = DLMSKeyAgreement.otherInfo(curve: curve, partyU: try SystemTitle(hex: KeyAgreementVectors.clientSystemTitle),
                                              partyV: try SystemTitle(hex: KeyAgreementVectors.serverSystemTitle))
        #expect(Hex.encode(info) == suite.otherInfo)
    }

    @Test("each side verifies Python's key-data of the other and derives Python's key", arguments: KeyAgreementVectors.suites)
    func pythonKeyData(_ suite: KeyAgreementVectors.Suite) throws {
        let parties = try Self.parties(suite)
        // Our public points are the vectors' (the signatures differ: ECDSA's k is random).
        #expect(Hex.encode(parties.client.ownKeyData.prefix(parties.client.ownKeyData.count / 2)) == String(suite.clientKeyData.prefix(suite.clientKeyData.count / 2)))
        #expect(Hex.encode(parties.server.ownKeyData.prefix(parties.server.ownKeyData.count / 2)) == String(suite.serverKeyData.prefix(suite.serverKeyData.count / 2)))
        let expected = try DLMSKey(hex: suite.agreedKey)
        #expect(try parties.client.agreedKey(peerKeyData: hexBytes(suite.serverKeyData)) == expected)
        #expect(try parties.server.agreedKey(peerKeyData: hexBytes(suite.clientKeyData)) == expected)
        #expect(expected.count == (suite.securitySuite == 1 ? 16 : 32))
    }

    @Test("our key-data: x ‖ y ‖ r ‖ s, the signature over key-id ‖ x ‖ y by our signing key", arguments: KeyAgreementVectors.suites)
    func ownKeyData(_ suite: KeyAgreementVectors.Suite) throws {
        let parties = try Self.parties(suite)
        let data = parties.client.ownKeyData
        let curve = parties.client.curve
        #expect(data.count == 2 * curve.coordinateLength + curve.signatureLength)
        let point = Array(data.prefix(2 * curve.coordinateLength))
        let signature = data.dropFirst(2 * curve.coordinateLength)
        let publicKey = try DLMSPublicKey(hex: suite.clientSigningPublicKey)
        try publicKey.verify(signature: signature, for: [suite.keyID] + point)
        // Not over the point alone (the key id is signed).
        #expect(throws: DLMSSecurityError.authenticationFailed("")) { try publicKey.verify(signature: signature, for: point) }
        // Both sides of our own implementation agree.
        #expect(try parties.client.agreedKey(peerKeyData: parties.server.ownKeyData) == parties.server.agreedKey(peerKeyData: parties.client.ownKeyData))
    }

    @Test("tampered key-data, a signature for another key id or by another key, a wrong length are refused",
          arguments: KeyAgreementVectors.suites)
    func refused(_ suite: KeyAgreementVectors.Suite) throws {
        let parties = try Self.parties(suite)
        let good = hexBytes(suite.serverKeyData)
        for index in [0, good.count / 2 - 1, good.count / 2, good.count - 1] {
            var tampered = good
            tampered[index] ^= 0x01
            #expect(throws: DLMSSecurityError.self) { try parties.client.agreedKey(peerKeyData: tampered) }
        }
        var signatureBit = good
        signatureBit[good.count - 1] ^= 0x80
        #expect(throws: DLMSSecurityError.authenticationFailed("")) { try parties.client.agreedKey(peerKeyData: signatureBit) }
        // The server's key-data signed for key id 0 (or 2) does not agree key id 3.
        let otherID = try Self.parties(suite, keyID: .masterKey)
        #expect(throws: DLMSSecurityError.authenticationFailed("")) { try otherID.client.agreedKey(peerKeyData: good) }
        // The client's own key-data (signed by the client key) is not the server's.
        #expect(throws: DLMSSecurityError.authenticationFailed("")) { try parties.client.agreedKey(peerKeyData: hexBytes(suite.clientKeyData)) }
        #expect(throws: DLMSSecurityError.decodeFailure("")) { try parties.client.agreedKey(peerKeyData: good.dropLast()) }
        #expect(throws: DLMSSecurityError.decodeFailure("")) { try parties.client.agreedKey(peerKeyData: []) }
    }

    @Test("keys of two curves do not make an agreement")
    func mixedCurves() throws {
        let p256 = KeyAgreementVectors.suites[0], p384 = KeyAgreementVectors.suites[1]
        let title = try SystemTitle(hex: KeyAgreementVectors.clientSystemTitle)
        #expect(throws: DLMSSecurityError.invalidKey("")) {
            try DLMSKeyAgreement(role: .client, keyID: .authentication, signingKey: try DLMSSigningKey(hex: p256.clientSigningKey),
                                 peerSigningKey: try DLMSPublicKey(hex: p384.serverSigningPublicKey), clientSystemTitle: title, serverSystemTitle: title)
        }
        #expect(throws: DLMSSecurityError.invalidKey("")) {
            try DLMSKeyAgreement(role: .client, keyID: .authentication, signingKey: try DLMSSigningKey(hex: p256.clientSigningKey),
                                 peerSigningKey: try DLMSPublicKey(hex: p256.serverSigningPublicKey), clientSystemTitle: title, serverSystemTitle: title,
                                 ephemeralKey: .generate(.p384))
        }
    }

    @Test("the method parameter: array of { enum key-id, octet-string key-data }, golden bytes both ways")
    func parameter() throws {
        let entries = [DLMSKeyAgreement.Entry(keyID: .authentication, keyData: [0xAA, 0xBB])]
        let data = DLMSKeyAgreement.encode(entries)
        var buffer = ByteBuffer()
        data.encode(into: &buffer)
        #expect(Hex.encode(buffer.readableBytesView) == "0101020216020902AABB")
        var wire = ByteBuffer(bytes: hexBytes("0101020216020902AABB"))
        #expect(try DLMSKeyAgreement.decode(DLMSData.decode(from: &wire)) == entries)
        #expect(throws: DLMSSecurityError.invalidArgument("")) {
            try DLMSKeyAgreement.decode(.array([.structure([.enumerated(4), .octetString(ByteBuffer())])]))
        }
        #expect(throws: DLMSSecurityError.decodeFailure("")) { try DLMSKeyAgreement.decode(.array([])) }
        #expect(throws: DLMSSecurityError.decodeFailure("")) { try DLMSKeyAgreement.decode(.structure([.enumerated(0), .octetString(ByteBuffer())])) }
        #expect(throws: DLMSSecurityError.decodeFailure("")) { try DLMSKeyAgreement.decode(.array([.structure([.uint8(0), .octetString(ByteBuffer())])])) }
    }

    @Test("ephemeral keys and agreements never print their secrets")
    func redacted() throws {
        let suite = KeyAgreementVectors.suites[0]
        let key = try DLMSEphemeralKey(bytes: hexBytes(suite.clientEphemeralKey))
        #expect("\(key)" == "DLMSEphemeralKey(P-256, redacted)")
        let secret = String(suite.clientEphemeralKey.dropFirst(2).prefix(16))
        let agreement = try Self.parties(suite).client
        for text in [String(reflecting: key), String(describing: agreement), String(reflecting: agreement), { var out = ""; dump(agreement, to: &out); return out }()] {
            #expect(!text.uppercased().contains(secret), "\(text)")
            #expect(text.contains("redacted"), "\(text)")
        }
    }
}
