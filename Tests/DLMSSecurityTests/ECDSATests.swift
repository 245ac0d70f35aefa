import Crypto
import DLMSCodec
import DLMSSecurity
import Foundation
import TestSupport
import Testing

@Suite("HLS mechanism 7 (ECDSA), security suites 1 and 2")
struct ECDSATests {
    struct Parties {
        let client: HLSExchange
        let server: HLSExchange
    }

    /// Both parties of a vector suite: titles and challenges of the vectors, each with its own
    /// private key and the other's public key (all parsed from the Python-generated hex).
    static func parties(_ suite: ECDSAVectors.Suite) throws -> Parties {
        let clientTitle = try SystemTitle(hex: ECDSAVectors.clientSystemTitle)
        let serverTitle = try SystemTitle(hex: ECDSAVectors.serverSystemTitle)
        let ctos = hexBytes(ECDSAVectors.ctos), stoc = hexBytes(ECDSAVectors.stoc)
        let client = HLSExchange(mechanism: .ecdsa,
                                 credentials: .signing(privateKey: try DLMSSigningKey(hex: suite.clientPrivateKey),
                                                       peerPublicKey: try DLMSPublicKey(hex: suite.serverPublicKey)),
                                 ownSystemTitle: clientTitle, peerSystemTitle: serverTitle, ownChallenge: ctos, peerChallenge: stoc,
                                 securitySuite: suite.securitySuite)
        let server = HLSExchange(mechanism: .ecdsa,
                                 credentials: .signing(privateKey: try DLMSSigningKey(hex: suite.serverPrivateKey),
                                                       peerPublicKey: try DLMSPublicKey(hex: suite.clientPublicKey)),
                                 ownSystemTitle: serverTitle, peerSystemTitle: clientTitle, ownChallenge: stoc, peerChallenge: ctos,
                                 securitySuite: suite.securitySuite)
        return Parties(client: client, server: server)
    }

    @Test("mechanism 7 is an HLS mechanism with system titles")
    func mechanism() {
        #expect(HLSMechanism(.highECDSA) == .ecdsa)
        #expect(HLSMechanism.ecdsa.id == 7)
        #expect(HLSMechanism.ecdsa.usesSystemTitles)
        // 2.16.756.5.8.2.7: joint-iso-ccitt(2) country(16) ch(756) identified-organization(5) DLMS-UA(8) mechanism-name(2) 7.
        #expect(HLSMechanism.ecdsa.mechanism.oid.bytes == [0x60, 0x85, 0x74, 0x05, 0x08, 0x02, 0x07])
    }

    @Test("Python cryptography's replies verify on the other side; a flipped bit, a truncation or the wrong direction do not",
          arguments: ECDSAVectors.suites)
    func pythonReplies(suite: ECDSAVectors.Suite) throws {
        let parties = try Self.parties(suite)
        let clientReply = hexBytes(suite.clientReply), serverReply = hexBytes(suite.serverReply)
        #expect(clientReply.count == (suite.securitySuite == 1 ? 64 : 96))
        try parties.server.verify(clientReply)
        try parties.client.verify(serverReply)
        for i in [0, clientReply.count / 2, clientReply.count - 1] {
            var tampered = clientReply
            tampered[i] ^= 0x01
            #expect(throws: DLMSSecurityError.authenticationFailed("")) { try parties.server.verify(tampered) }
        }
        #expect(throws: DLMSSecurityError.authenticationFailed("")) { try parties.server.verify(Array(clientReply.dropLast())) }
        #expect(throws: DLMSSecurityError.authenticationFailed("")) { try parties.server.verify([]) }
        // The client's reply is not the server's: the titles and challenges are in the other order.
        #expect(!parties.client.isValid(clientReply))
        #expect(!parties.server.isValid(serverReply))
    }

    @Test("Gurux's GXEcdsa signs the client's reply the way our meter side verifies it (P-256)")
    func guruxReply() throws {
        let parties = try Self.parties(ECDSAVectors.suites[0])
        try parties.server.verify(hexBytes(ECDSAVectors.guruxClientReplyP256))
    }

    @Test("our replies: r ‖ s of the curve's size over the Gurux byte order, verified by the peer", arguments: ECDSAVectors.suites)
    func ourReplies(suite: ECDSAVectors.Suite) throws {
        let parties = try Self.parties(suite)
        let clientReply = try parties.client.response()
        let serverReply = try parties.server.response()
        #expect(clientReply.count == 2 * (suite.securitySuite == 1 ? 32 : 48))
        try parties.server.verify(clientReply)
        try parties.client.verify(serverReply)
        // Checked directly with the public key over the spelled-out data (ST-C ‖ ST-S ‖ StoC ‖ CtoS).
        let signed = hexBytes(ECDSAVectors.clientSystemTitle + ECDSAVectors.serverSystemTitle + ECDSAVectors.stoc + ECDSAVectors.ctos)
        let clientPublic = hexBytes(suite.clientPublicKey)
        if suite.securitySuite == 1 {
            let key = try P256.Signing.PublicKey(x963Representation: clientPublic)
            #expect(key.isValidSignature(try P256.Signing.ECDSASignature(rawRepresentation: clientReply), for: SHA256.hash(data: signed)))
        } else {
            let key = try P384.Signing.PublicKey(x963Representation: clientPublic)
            #expect(key.isValidSignature(try P384.Signing.ECDSASignature(rawRepresentation: clientReply), for: SHA384.hash(data: signed)))
        }
        // ECDSA is randomised: two replies differ and both verify.
        let again = try parties.client.response()
        #expect(again != clientReply)
        try parties.server.verify(again)
    }

    @Test("a wrong key does not verify", arguments: ECDSAVectors.suites)
    func wrongKey(suite: ECDSAVectors.Suite) throws {
        let parties = try Self.parties(suite)
        let curve = try ECDSACurve(securitySuite: suite.securitySuite)
        var impostor = parties.client
        impostor.credentials = .signing(privateKey: .generate(curve), peerPublicKey: try DLMSPublicKey(hex: suite.serverPublicKey))
        #expect(throws: DLMSSecurityError.authenticationFailed("")) { try parties.server.verify(impostor.response()) }
    }

    @Test("keys: private scalars of 32/48 bytes, public points as x ‖ y or 04 ‖ x ‖ y; the public key follows from the private one",
          arguments: ECDSAVectors.suites)
    func keys(suite: ECDSAVectors.Suite) throws {
        let privateKey = try DLMSSigningKey(hex: suite.clientPrivateKey)
        let curve: ECDSACurve = suite.securitySuite == 1 ? .p256 : .p384
        #expect(privateKey.curve == curve)
        #expect(privateKey.curve.securitySuite == suite.securitySuite)
        #expect(try ECDSACurve(securitySuite: suite.securitySuite) == curve)
        let uncompressed = try DLMSPublicKey(hex: suite.clientPublicKey)
        #expect(privateKey.publicKey == uncompressed)
        #expect(try DLMSPublicKey(bytes: hexBytes(suite.clientPublicKey).dropFirst()) == uncompressed)
        #expect(uncompressed.hex == suite.clientPublicKey)
        #expect(uncompressed.description.hasSuffix(suite.clientPublicKey))
        // PEM, as OpenSSL writes it.
        let pemPrivate = curve == .p256 ? try P256.Signing.PrivateKey(rawRepresentation: hexBytes(suite.clientPrivateKey)).pemRepresentation
                                        : try P384.Signing.PrivateKey(rawRepresentation: hexBytes(suite.clientPrivateKey)).pemRepresentation
        #expect(try DLMSSigningKey(pemRepresentation: pemPrivate).publicKey == uncompressed)
        let pemPublic = curve == .p256 ? try P256.Signing.PublicKey(x963Representation: hexBytes(suite.clientPublicKey)).pemRepresentation
                                       : try P384.Signing.PublicKey(x963Representation: hexBytes(suite.clientPublicKey)).pemRepresentation
        #expect(try DLMSPublicKey(pemRepresentation: pemPublic) == uncompressed)
    }

    @Test("malformed keys and other suites are typed errors that never quote the key")
    func malformedKeys() throws {
        let secretHex = ECDSAVectors.suites[0].clientPrivateKey
        for bad in [String(secretHex.dropLast(2)), secretHex + "00", secretHex.replacingOccurrences(of: "A", with: "G"), String(repeating: "00", count: 32)] {
            let error = #expect(throws: DLMSSecurityError.invalidKey("")) { try DLMSSigningKey(hex: bad) }
            #expect(error.map { !$0.description.contains(secretHex.prefix(12)) } ?? false)
        }
        let publicHex = ECDSAVectors.suites[0].clientPublicKey
        #expect(throws: DLMSSecurityError.invalidKey("")) { try DLMSPublicKey(hex: String(publicHex.dropLast(2))) }
        #expect(throws: DLMSSecurityError.invalidKey("")) { try DLMSPublicKey(hex: "05" + publicHex.dropFirst(2)) }
        // A point off the curve: y changed.
        #expect(throws: DLMSSecurityError.invalidKey("")) { try DLMSPublicKey(hex: String(publicHex.dropLast(2)) + (publicHex.hasSuffix("00") ? "01" : "00")) }
        #expect(throws: DLMSSecurityError.invalidKey("")) { try DLMSSigningKey(pemRepresentation: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n") }
        for suite: UInt8 in [0, 3] {
            #expect(throws: DLMSSecurityError.unsupportedMechanism("")) { try ECDSACurve(securitySuite: suite) }
        }
    }

    @Test("keys of two curves, a suite that is not the keys', or missing titles are refused before signing")
    func mismatches() throws {
        let p256 = ECDSAVectors.suites[0], p384 = ECDSAVectors.suites[1]
        var parties = try Self.parties(p256)
        var mixed = parties.client
        mixed.credentials = .signing(privateKey: try DLMSSigningKey(hex: p256.clientPrivateKey), peerPublicKey: try DLMSPublicKey(hex: p384.serverPublicKey))
        #expect(throws: DLMSSecurityError.invalidKey("")) { try mixed.response() }
        #expect(throws: DLMSSecurityError.invalidKey("")) { try mixed.verify(hexBytes(p256.serverReply)) }
        parties = try Self.parties(p384)
        var otherSuite = parties.client
        otherSuite.securitySuite = 1
        #expect(throws: DLMSSecurityError.invalidKey("")) { try otherSuite.response() }
        var noTitle = parties.client
        noTitle.peerSystemTitle = nil
        #expect(throws: DLMSSecurityError.invalidArgument("")) { try noTitle.response() }
        var secret = parties.client
        secret.credentials = .secret(try DLMSSecret(text: "Gurux"))
        #expect(throws: DLMSSecurityError.invalidArgument("")) { try secret.response() }
    }

    @Test("a private signing key never shows; a public key does", arguments: ECDSAVectors.suites)
    func redacted(suite: ECDSAVectors.Suite) throws {
        let key = try DLMSSigningKey(hex: suite.clientPrivateKey)
        let parties = try Self.parties(suite)
        let scalar = String(suite.clientPrivateKey.dropFirst(2))  // the vectors' scalars start with 00
        for text in DLMSKeyTests.renderings(of: key) + DLMSKeyTests.renderings(of: parties.client)
            + DLMSKeyTests.renderings(of: HLSCredentials.signing(privateKey: key, peerPublicKey: key.publicKey)) {
            #expect(!DLMSKeyTests.containsKey(text, scalar), "private key in: \(text)")
        }
        #expect(key.description == "DLMSSigningKey(\(key.curve), redacted)")
        #expect(!(key as Any is any Encodable))
        #expect("\(key.publicKey)".contains(suite.clientPublicKey))
    }
}

extension ECDSAVectors.Suite: CustomTestStringConvertible {
    var testDescription: String { "suite \(securitySuite)" }
}
