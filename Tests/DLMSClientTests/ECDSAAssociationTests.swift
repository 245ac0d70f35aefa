import COSEM
import DLMSClient
import DLMSCodec
import DLMSSecurity
import Foundation
import MeterSimulation
import NIOConcurrencyHelpers
import NIOCore
import Testing
import TestSupport

/// HLS-ECDSA (mechanism 7) between our client and our simulated meter: suites 1 and 2, with and
/// without ciphering, and each side refusing the other's wrong key.
@Suite("HLS-ECDSA associations (mechanism 7)", .serialized, .timeLimit(.minutes(1)))
struct ECDSAAssociationTests {
    typealias SecureMeter = SecureAssociationTests.SecureMeter

    struct KeyPairs: Sendable, CustomTestStringConvertible {
        let client: DLMSSigningKey
        let meter: DLMSSigningKey
        var testDescription: String { "suite \(client.curve.securitySuite)" }

        static func generate(_ curve: ECDSACurve) -> KeyPairs { KeyPairs(client: .generate(curve), meter: .generate(curve)) }
    }

    static let suites = [KeyPairs.generate(.p256), .generate(.p384)]

    /// Suite 2 ciphers with AES-256: 32-byte keys on both sides.
    static let ek256 = try! DLMSKey(hex: "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F")
    static let ak256 = try! DLMSKey(hex: "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDFE0E1E2E3E4E5E6E7E8E9EAEBECEDEEEF")

    static func meterSecurity(_ keys: KeyPairs) -> MeterSecurity {
        var security = MeterSecurity.examples
        if keys.client.curve == .p384 {
            security.blockCipherKey = ek256
            security.authenticationKey = ak256
        }
        security.signingKey = keys.meter
        security.clientPublicKey = keys.client.publicKey
        return security
    }

    /// A ciphered connection with the keys of the suite of `keys`.
    static func cipheredConnection(_ secure: SecureMeter, _ keys: KeyPairs, client: DLMSSigningKey? = nil, meterPublicKey: DLMSPublicKey? = nil) -> MeterConnection {
        keys.client.curve == .p384
            ? secure.connection(signing(keys, client: client, meterPublicKey: meterPublicKey), blockCipherKey: ek256, authenticationKey: ak256)
            : secure.connection(signing(keys, client: client, meterPublicKey: meterPublicKey))
    }

    static func signing(_ keys: KeyPairs, client: DLMSSigningKey? = nil, meterPublicKey: DLMSPublicKey? = nil) -> MeterConnection.Authentication {
        .highECDSA(MeterConnection.HLSSigning(signingKey: client ?? keys.client, meterPublicKey: meterPublicKey ?? keys.meter.publicKey,
                                              systemTitle: SecureAssociationTests.clientTitle))
    }

    /// A connection with no suite 0 keys at all: HLS-ECDSA needs only the key pairs and the title.
    static func plainConnection(_ secure: SecureMeter, _ authentication: MeterConnection.Authentication) -> MeterConnection {
        var timeouts = MeterConnection.Timeouts()
        timeouts.step = .seconds(8)
        return MeterConnection(endpoint: .tcp(host: "127.0.0.1", port: secure.server.port), clientSAP: 1, authentication: authentication, timeouts: timeouts)
    }

    @Test("the clock through HLS-ECDSA with APDUs in the clear and no symmetric keys", arguments: suites)
    func plain(_ keys: KeyPairs) async throws {
        try await SecureMeter.with(security: Self.meterSecurity(keys)) { secure in
            let (time, title) = try await DLMSClient.withAssociation(to: Self.plainConnection(secure, Self.signing(keys))) { client in
                (try await client.readClock(), client.association.serverSystemTitle)
            }
            #expect(time.iso8601 != nil)
            #expect(title == secure.meter.systemTitle)
            // The AARQ named mechanism 7 and carried our title; pass 3 was a signature of the curve's length.
            let aarq = try #require(secure.requests.withLockedValue { $0.first })
            var copy = aarq
            let decoded = try AARQ.decode(from: &copy)
            #expect(decoded.mechanismName == .highECDSA)
            #expect(decoded.callingAPTitle == SecureAssociationTests.clientTitle.dlmsBytes)
        }
    }

    @Test("HLS-ECDSA with authenticated and encrypted APDUs reads the clock and a register", arguments: suites)
    func ciphered(_ keys: KeyPairs) async throws {
        try await SecureMeter.with(security: Self.meterSecurity(keys)) { secure in
            let register = try await DLMSClient.withAssociation(to: Self.cipheredConnection(secure, keys)) { client in
                _ = try await client.readClock()
                return try await client.readRegister(OBISCode(1, 0, 1, 8, 0, 255))
            }
            #expect(register.raw.integerValue != nil)
            // Every ciphered APDU names the association's suite in its security control byte (0x30 |
            // suite: 0x31 with P-256 and AES-128, 0x32 with P-384 and AES-256), the AARQ's
            // InitiateRequest too (glo-initiate-request 0x21, length, SC).
            let requests = secure.requests.withLockedValue { $0 }
            let controls = requests.compactMap { request -> UInt8? in
                guard let tag = request.getInteger(at: request.readerIndex, as: UInt8.self), [0xC8, 0xCB].contains(tag),
                      let length = request.getInteger(at: request.readerIndex + 1, as: UInt8.self) else { return nil }
                // A-XDR length: one byte, or 0x8n and n bytes (pass 3 with a P-384 signature is longer than 127).
                return request.getInteger(at: request.readerIndex + 2 + (length & 0x80 == 0 ? 0 : Int(length & 0x7F)), as: UInt8.self)
            }
            #expect(!controls.isEmpty && controls.allSatisfy { $0 == 0x30 | keys.client.curve.securitySuite }, "\(controls)")
            let aarq = try #require(requests.last { $0.getInteger(at: $0.readerIndex, as: UInt8.self) == AARQ.tag })
            var copy = aarq
            guard case .ciphered(let initiate)? = try AARQ.decode(from: &copy).userInformation else { Issue.record("the AARQ is not ciphered"); return }
            #expect(initiate.securityControl == 0x30 | keys.client.curve.securitySuite)
            // After the HLS-ECDSA AARQ (the counter read with the public client comes before it) every
            // service request, pass 3 included, is glo-ciphered: glo-get C8, glo-action CB; then the RLRQ.
            let tags = secure.requests.withLockedValue { $0.compactMap { $0.getInteger(at: $0.readerIndex, as: UInt8.self) } }
            let afterAARQ = tags.suffix(from: try #require(tags.lastIndex(of: 0x60)) + 1)
            #expect(afterAARQ.contains(0xCB) && afterAARQ.contains(0xC8), "\(tags)")
            #expect(afterAARQ.allSatisfy { [0xC8, 0xCB, 0x62].contains($0) }, "\(tags)")
        }
    }

    @Test("keys of another suite than the signing curve: refused before anything is sent, and by the meter")
    func suiteMismatch() async throws {
        // P-384 (suite 2) with 16-byte keys (suites 0/1): the client refuses.
        let p384 = Self.suites[1]
        try await SecureMeter.with(security: Self.meterSecurity(p384)) { secure in
            let error = await #expect(throws: DLMSClientError.self) {
                try await DLMSClient.withAssociation(to: secure.connection(Self.signing(p384))) { try await $0.readClock() }
            }
            #expect(error?.code == .invalidArgument)
            // Only the invocation counter read of the public client (in the clear) reached the meter.
            #expect(secure.requests.withLockedValue { $0.allSatisfy { ![0xC8, 0xCB].contains($0.getInteger(at: $0.readerIndex, as: UInt8.self)) } })
            // A meter that signs on P-384 (suite 2) but holds 16-byte keys refuses the suite 1 AARQ
            // of a P-256 client at once: the AARE rejects it, no reply_to_HLS (glo-action) follows.
            let p256 = Self.suites[0]
            var security = MeterSecurity.examples
            security.signingKey = p384.meter
            security.clientPublicKey = p384.client.publicKey
            try await SecureMeter.with(security: security) { mismatched in
                let refused = await #expect(throws: DLMSClientError.self) {
                    try await DLMSClient.withAssociation(to: mismatched.connection(Self.signing(p256))) { try await $0.readClock() }
                }
                #expect(refused?.code == .associationRejected)
                let tags = mismatched.requests.withLockedValue { $0.compactMap { $0.getInteger(at: $0.readerIndex, as: UInt8.self) } }
                #expect(tags.contains(AARQ.tag) && !tags.contains(0xCB), "\(tags)")
                #expect(DLMSCipher.allows(suite: 1, blockCipherKey: SecureAssociationTests.ek, signingCurve: .p256))
                #expect(!DLMSCipher.allows(suite: 0, blockCipherKey: SecureAssociationTests.ek, signingCurve: .p256))
                #expect(!DLMSCipher.allows(suite: 1, blockCipherKey: Self.ek256, signingCurve: nil))
                #expect(DLMSCipher.allows(suite: 2, blockCipherKey: Self.ek256, signingCurve: .p384))
                let suite = try DLMSCipher.securitySuite(blockCipherKey: SecureAssociationTests.ek, signingCurve: nil)
                #expect(suite == 0)
            }
        }
    }

    @Test("a client signing with another key is refused by the meter; the meter stays usable", arguments: suites)
    func wrongClientKey(_ keys: KeyPairs) async throws {
        try await SecureMeter.with(security: Self.meterSecurity(keys)) { secure in
            let impostor = DLMSSigningKey.generate(keys.client.curve)
            let error = await #expect(throws: DLMSClientError.self) {
                try await DLMSClient.withAssociation(to: Self.plainConnection(secure, Self.signing(keys, client: impostor))) { try await $0.readClock() }
            }
            #expect(error?.code == .associationRejected)
            #expect(error?.step == .associate)
            #expect(error?.isRetriable == false)
            #expect(error?.reason.contains("high-ecdsa") == true, "\(String(describing: error))")
            _ = try await DLMSClient.withAssociation(to: Self.plainConnection(secure, Self.signing(keys))) { try await $0.readClock() }
        }
    }

    @Test("a meter answering with another key than the one we hold is refused by the client", arguments: suites)
    func wrongMeterKey(_ keys: KeyPairs) async throws {
        try await SecureMeter.with(security: Self.meterSecurity(keys)) { secure in
            let otherMeter = DLMSSigningKey.generate(keys.meter.curve).publicKey
            let reads = NIOLockedCounter()
            let error = await #expect(throws: DLMSClientError.self) {
                try await DLMSClient.withAssociation(to: Self.plainConnection(secure, Self.signing(keys, meterPublicKey: otherMeter))) { client in
                    reads.increment()
                    return try await client.readClock()
                }
            }
            #expect(error?.code == .securityFailed)
            #expect(error?.step == .associate)
            #expect(error?.reason.contains("authenticationFailed") == true, "\(String(describing: error))")
            #expect(reads.value == 0)
        }
    }

    @Test("keys of two curves or titles that disagree are argument errors before anything is sent")
    func mismatchedSettings() async throws {
        let keys = Self.suites[0]
        try await SecureMeter.with(security: Self.meterSecurity(keys)) { secure in
            let p384 = DLMSSigningKey.generate(.p384).publicKey
            let mixed = await #expect(throws: DLMSClientError.self) {
                try await DLMSClient.withAssociation(to: Self.plainConnection(secure, Self.signing(keys, meterPublicKey: p384))) { try await $0.readClock() }
            }
            #expect(mixed?.code == .invalidArgument)
            var otherTitle = secure.connection(Self.signing(keys))
            otherTitle.security?.systemTitle = try SystemTitle(hex: "4853455300000002")
            let titles = await #expect(throws: DLMSClientError.self) {
                try await DLMSClient.withAssociation(to: otherTitle) { try await $0.readClock() }
            }
            #expect(titles?.code == .invalidArgument)
            let viaHigh = await #expect(throws: DLMSClientError.self) {
                try await DLMSClient.withAssociation(to: Self.plainConnection(secure, .high(.ecdsa, secret: nil))) { try await $0.readClock() }
            }
            #expect(viaHigh?.code == .invalidArgument)
        }
    }

    @Test("a meter without ECDSA keys does not recognise mechanism 7")
    func meterWithoutKeys() async throws {
        try await SecureMeter.with { secure in
            let error = await #expect(throws: DLMSClientError.self) {
                try await DLMSClient.withAssociation(to: Self.plainConnection(secure, Self.signing(Self.suites[0]))) { try await $0.readClock() }
            }
            #expect(error?.code == .associationRejected)
            #expect(error?.reason.contains("authentication-mechanism-name-not-recognised") == true, "\(String(describing: error))")
        }
    }

    @Test("the signing key never shows in the connection's descriptions")
    func redacted() throws {
        let keys = Self.suites[1]
        let text = "\(Self.signing(keys))" + String(reflecting: Self.signing(keys)) + "\(MeterConnection.HLSSigning(signingKey: keys.client, meterPublicKey: keys.meter.publicKey, systemTitle: SecureAssociationTests.clientTitle))"
        var dumped = ""
        dump(Self.signing(keys), to: &dumped)
        let scalar = DLMSBytes(keys.client.bytes.dropFirst()).hex  // a leading zero byte is possible, so all but the first
        #expect(!(text + dumped).uppercased().contains(scalar), "\(text) \(dumped)")
    }
}

/// A counter a closure can bump from a `@Sendable` context.
final class NIOLockedCounter: Sendable {
    private let box = NIOLockedValueBox(0)
    func increment() { box.withLockedValue { $0 += 1 } }
    var value: Int { box.withLockedValue { $0 } }
}
