import COSEM
import DLMSClient
import DLMSCodec
import DLMSSecurity
import Foundation
import MeterSimulation
import NIOCore
import Testing
import TestSupport

/// The security setup's key_agreement between our client and our simulated meter, over ciphered
/// HLS-ECDSA associations of suites 1 and 2.
@Suite("Key agreement (security setup method 3)", .serialized, .timeLimit(.minutes(1)))
struct KeyAgreementAssociationTests {
    typealias SecureMeter = SecureAssociationTests.SecureMeter
    typealias KeyPairs = ECDSAAssociationTests.KeyPairs

    static func connection(_ secure: SecureMeter, _ keys: KeyPairs, blockCipherKey: DLMSKey? = nil, authenticationKey: DLMSKey? = nil) -> MeterConnection {
        let p384 = keys.client.curve == .p384
        return secure.connection(ECDSAAssociationTests.signing(keys),
                                 blockCipherKey: blockCipherKey ?? (p384 ? ECDSAAssociationTests.ek256 : SecureAssociationTests.ek),
                                 authenticationKey: authenticationKey ?? (p384 ? ECDSAAssociationTests.ak256 : SecureAssociationTests.ak))
    }

    @Test("a new global unicast key: the meter answers, both sides hold the same key, later associations cipher with it and not with the old one",
          arguments: ECDSAAssociationTests.suites)
    func unicast(_ keys: KeyPairs) async throws {
        try await SecureMeter.with(security: ECDSAAssociationTests.meterSecurity(keys)) { secure in
            let key = try await DLMSClient.withAssociation(to: Self.connection(secure, keys)) { client in
                let key = try await client.agreeKey(.globalUnicastEncryption)
                // The association that agreed it keeps its keys.
                _ = try await client.readClock()
                return key
            }
            #expect(key.count == (keys.client.curve == .p256 ? 16 : 32))
            #expect(secure.meter.agreedKey(.globalUnicastEncryption) == key)
            #expect("\(key)".contains("redacted"))
            let time = try await DLMSClient.withAssociation(to: Self.connection(secure, keys, blockCipherKey: key)) { try await $0.readClock() }
            #expect(time.iso8601 != nil)
            await #expect(throws: DLMSClientError.self) {
                try await DLMSClient.withAssociation(to: Self.connection(secure, keys)) { try await $0.readClock() }
            }
        }
    }

    @Test("a new authentication key serves the next association", arguments: ECDSAAssociationTests.suites)
    func authentication(_ keys: KeyPairs) async throws {
        try await SecureMeter.with(security: ECDSAAssociationTests.meterSecurity(keys)) { secure in
            let key = try await DLMSClient.withAssociation(to: Self.connection(secure, keys)) { try await $0.agreeKey(.authentication) }
            #expect(secure.meter.agreedKey(.authentication) == key)
            #expect(secure.meter.agreedKey(.globalUnicastEncryption) == nil)
            _ = try await DLMSClient.withAssociation(to: Self.connection(secure, keys, authenticationKey: key)) { try await $0.readClock() }
        }
    }

    @Test("key-data that does not verify is refused with read-write-denied; the meter keeps its keys and the association stays usable",
          arguments: ECDSAAssociationTests.suites)
    func tampered(_ keys: KeyPairs) async throws {
        try await SecureMeter.with(security: ECDSAAssociationTests.meterSecurity(keys)) { secure in
            let title = secure.meter.systemTitle
            try await DLMSClient.withAssociation(to: Self.connection(secure, keys)) { client in
                let method = CosemMethodDescriptor(classID: .securitySetup, instance: .securitySetup, method: 3)
                // Signed by another key than the one the meter knows.
                let stranger = try DLMSKeyAgreement(role: .client, keyID: .globalUnicastEncryption, signingKey: .generate(keys.client.curve),
                                                    peerSigningKey: keys.meter.publicKey, clientSystemTitle: SecureAssociationTests.clientTitle, serverSystemTitle: title)
                // Signed by the right key, one bit of the point flipped.
                let genuine = try DLMSKeyAgreement(role: .client, keyID: .globalUnicastEncryption, signingKey: keys.client,
                                                   peerSigningKey: keys.meter.publicKey, clientSystemTitle: SecureAssociationTests.clientTitle, serverSystemTitle: title)
                var flipped = genuine.ownKeyData
                flipped[3] ^= 0x01
                for keyData in [stranger.ownKeyData, flipped] {
                    let error = await #expect(throws: DLMSClientError.self) {
                        try await client.action(method, parameters: DLMSKeyAgreement.encode([.init(keyID: .globalUnicastEncryption, keyData: keyData)]))
                    }
                    #expect(error?.code == .actionFailed)
                    #expect(error?.actionResult == .readWriteDenied)
                }
                // Not an array of { key-id, key-data }.
                let error = await #expect(throws: DLMSClientError.self) { try await client.action(method, parameters: .octetString(ByteBuffer(bytes: [1, 2]))) }
                #expect(error?.actionResult == .typeUnmatched)
                _ = try await client.readClock()
            }
            #expect(secure.meter.agreedKey(.globalUnicastEncryption) == nil)
            _ = try await DLMSClient.withAssociation(to: Self.connection(secure, keys)) { try await $0.readClock() }
        }
    }

    @Test("without ciphering or without HLS-ECDSA the client refuses before sending")
    func refusedAssociations() async throws {
        let keys = ECDSAAssociationTests.suites[0]
        try await SecureMeter.with(security: ECDSAAssociationTests.meterSecurity(keys)) { secure in
            let plain = await #expect(throws: DLMSClientError.self) {
                try await DLMSClient.withAssociation(to: ECDSAAssociationTests.plainConnection(secure, ECDSAAssociationTests.signing(keys))) {
                    try await $0.agreeKey(.globalUnicastEncryption)
                }
            }
            #expect(plain?.code == .invalidArgument)
            let gmac = await #expect(throws: DLMSClientError.self) {
                try await DLMSClient.withAssociation(to: secure.connection(.high(.gmac, secret: nil))) { try await $0.agreeKey(.globalUnicastEncryption) }
            }
            #expect(gmac?.code == .invalidArgument)
            #expect(secure.meter.agreedKey(.globalUnicastEncryption) == nil)
        }
    }
}
