import COSEM
import Crypto
import DLMSCodec
import Foundation

/// An HLS authentication mechanism this module computes (Green Book 9.2.4.8.4 and Table 42).
/// Wraps the mechanism name DLMSCodec puts in the AARQ (`AuthenticationMechanism`).
public struct HLSMechanism: Hashable, Sendable, CustomStringConvertible {
    public let mechanism: AuthenticationMechanism

    private init(unchecked mechanism: AuthenticationMechanism) { self.mechanism = mechanism }

    /// Mechanism 3: f(challenge) = MD5(challenge ‖ HLS secret).
    public static let md5 = HLSMechanism(unchecked: .highMD5)
    /// Mechanism 4: f(challenge) = SHA-1(challenge ‖ HLS secret).
    public static let sha1 = HLSMechanism(unchecked: .highSHA1)
    /// Mechanism 5: f(challenge) = SC ‖ IC ‖ GMAC(SC ‖ AK ‖ challenge), IV = sender's system title ‖ IC.
    public static let gmac = HLSMechanism(unchecked: .highGMAC)
    /// Mechanism 6: f = SHA-256(HLS secret ‖ own system title ‖ peer system title ‖ peer's challenge ‖ own challenge).
    public static let sha256 = HLSMechanism(unchecked: .highSHA256)
    /// Mechanism 7: f = ECDSA signature (r ‖ s) with the sender's private key over own system title ‖
    /// peer system title ‖ peer's challenge ‖ own challenge; suite 1 P-256/SHA-256, suite 2 P-384/SHA-384.
    public static let ecdsa = HLSMechanism(unchecked: .highECDSA)

    public static let all: [HLSMechanism] = [.md5, .sha1, .gmac, .sha256, .ecdsa]

    /// `nil` for mechanisms that are not HLS or not implemented here (lowest, LLS, 2).
    public init?(_ mechanism: AuthenticationMechanism) {
        guard Self.all.contains(where: { $0.mechanism == mechanism }) else { return nil }
        self.mechanism = mechanism
    }

    /// The mechanism id (3 to 7).
    public var id: UInt8 { mechanism.id ?? 0 }

    /// Whether f needs the system titles of both parties.
    public var usesSystemTitles: Bool { self == .gmac || self == .sha256 || self == .ecdsa }

    public var description: String { mechanism.description }
}

/// What proves knowledge in an HLS exchange: a shared secret (mechanisms 3, 4, 6), the
/// association's keys (mechanism 5), or an own private signing key and the peer's public key
/// (mechanism 7; both of one curve, which is the security suite).
public enum HLSCredentials: Sendable {
    case secret(DLMSSecret)
    case keys(blockCipherKey: DLMSKey, authenticationKey: DLMSKey)
    case signing(privateKey: DLMSSigningKey, peerPublicKey: DLMSPublicKey)
}

/// One party's view of the 4-pass HLS exchange (Green Book 9.2.4.8.4): the challenge it sent,
/// the challenge it received, and what it needs to compute and check f(challenge).
///
/// The client's `ownChallenge` is CtoS (sent in the AARQ) and `peerChallenge` StoC (from the
/// AARE); the server's are the other way round. Pass 3/4 carry ``response(invocationCounter:)``
/// through reply_to_HLS_authentication; each side checks the other's with ``verify(_:)``.
public struct HLSExchange: Sendable {
    public var mechanism: HLSMechanism
    public var credentials: HLSCredentials
    public var ownSystemTitle: SystemTitle?
    public var peerSystemTitle: SystemTitle?
    public var ownChallenge: [UInt8]
    public var peerChallenge: [UInt8]
    /// Mechanism 5: the security suite in the reply's SC (0x10 | suite) and of the keys. Mechanism 7: when
    /// not 0, the suite (1 P-256, 2 P-384) the signing keys must be of. Default: 0.
    public var securitySuite: UInt8

    public init(mechanism: HLSMechanism, credentials: HLSCredentials, ownSystemTitle: SystemTitle? = nil, peerSystemTitle: SystemTitle? = nil,
                ownChallenge: [UInt8], peerChallenge: [UInt8], securitySuite: UInt8 = 0) {
        self.mechanism = mechanism
        self.credentials = credentials
        self.ownSystemTitle = ownSystemTitle
        self.peerSystemTitle = peerSystemTitle
        self.ownChallenge = ownChallenge
        self.peerChallenge = peerChallenge
        self.securitySuite = securitySuite
    }

    /// HLS-GMAC with the association's titles and keys (EK, AK).
    public init(gmacWith cipher: DLMSCipher, ownChallenge: [UInt8], peerChallenge: [UInt8]) {
        self.init(mechanism: .gmac, credentials: .keys(blockCipherKey: cipher.blockCipherKey, authenticationKey: cipher.authenticationKey),
                  ownSystemTitle: cipher.systemTitle, peerSystemTitle: cipher.peerSystemTitle,
                  ownChallenge: ownChallenge, peerChallenge: peerChallenge, securitySuite: cipher.securitySuite)
    }

    /// f(peer's challenge): what this party sends (pass 3 for the client, pass 4 for the server).
    /// - Parameter invocationCounter: mechanism 5 only: this party's transmit counter, which
    ///   goes into the IV and the reply.
    /// - Throws: `DLMSSecurityError` `.invalidArgument` when a system title or the credentials the
    ///   mechanism needs are missing.
    public func response(invocationCounter: UInt32 = 0) throws -> [UInt8] {
        switch mechanism {
        case .md5:
            return try secret().withUnsafeBytes { Array(Insecure.MD5.hash(data: peerChallenge + Array($0))) }
        case .sha1:
            return try secret().withUnsafeBytes { Array(Insecure.SHA1.hash(data: peerChallenge + Array($0))) }
        case .sha256:
            let (own, peer) = try titles()
            return try secret().withUnsafeBytes { Array(SHA256.hash(data: Array($0) + own.bytes + peer.bytes + peerChallenge + ownChallenge)) }
        case .ecdsa:
            let (own, peer) = try titles()
            let (privateKey, _) = try signingKeys()
            return try privateKey.signature(for: own.bytes + peer.bytes + peerChallenge + ownChallenge)
        default:
            let (own, _) = try titles()
            let (ek, ak) = try keys()
            let sc = SecurityControl.authenticated.withSuite(securitySuite)
            let tag = try SecuritySuite0.gmac(peerChallenge, securityControl: sc, systemTitle: own, invocationCounter: invocationCounter,
                                              blockCipherKey: ek, authenticationKey: ak)
            var reply: [UInt8] = [sc.rawValue]
            withUnsafeBytes(of: invocationCounter.bigEndian) { reply.append(contentsOf: $0) }
            return reply + tag
        }
    }

    /// Checks the peer's f(own challenge) (pass 3 on the server, pass 4 on the client).
    /// - Throws: `DLMSSecurityError` `.authenticationFailed` when it does not match,
    ///   `.decodeFailure` for a GMAC reply of the wrong length or security control,
    ///   `.invalidArgument` when a system title or credentials are missing.
    public func verify(_ peerResponse: [UInt8]) throws {
        let expected: [UInt8]
        switch mechanism {
        case .md5:
            expected = try secret().withUnsafeBytes { Array(Insecure.MD5.hash(data: ownChallenge + Array($0))) }
        case .sha1:
            expected = try secret().withUnsafeBytes { Array(Insecure.SHA1.hash(data: ownChallenge + Array($0))) }
        case .sha256:
            let (own, peer) = try titles()
            expected = try secret().withUnsafeBytes { Array(SHA256.hash(data: Array($0) + peer.bytes + own.bytes + ownChallenge + peerChallenge)) }
        case .ecdsa:
            // A signature is not recomputed: the peer's public key checks it.
            let (own, peer) = try titles()
            let (_, peerPublicKey) = try signingKeys()
            try peerPublicKey.verify(signature: peerResponse, for: peer.bytes + own.bytes + ownChallenge + peerChallenge)
            return
        default:
            let (_, peer) = try titles()
            let (ek, ak) = try keys()
            let counter = try HLS.invocationCounter(ofGMACResponse: peerResponse)
            let sc = SecurityControl.authenticated.withSuite(securitySuite)
            guard peerResponse[0] == sc.rawValue else {
                throw DLMSSecurityError.decodeFailure("the peer's HLS-GMAC reply has \(SecurityControl(rawValue: peerResponse[0])), expected \(sc)")
            }
            let tag = try SecuritySuite0.gmac(ownChallenge, securityControl: sc, systemTitle: peer, invocationCounter: counter,
                                              blockCipherKey: ek, authenticationKey: ak)
            expected = [sc.rawValue] + peerResponse[1..<5] + tag
        }
        guard constantTimeEquals(expected, peerResponse) else {
            throw DLMSSecurityError.authenticationFailed("the peer's \(mechanism) reply to our challenge does not verify")
        }
    }

    /// ``verify(_:)`` as a Bool: `false` for any failure.
    public func isValid(_ peerResponse: [UInt8]) -> Bool { (try? verify(peerResponse)) != nil }

    private func secret() throws -> DLMSSecret {
        guard case .secret(let secret) = credentials else {
            throw DLMSSecurityError.invalidArgument("\(mechanism) needs an HLS secret, not keys")
        }
        return secret
    }

    private func keys() throws -> (DLMSKey, DLMSKey) {
        guard case .keys(let ek, let ak) = credentials else {
            throw DLMSSecurityError.invalidArgument("\(mechanism) needs the block cipher and authentication keys, not a secret")
        }
        return (ek, ak)
    }

    private func signingKeys() throws -> (DLMSSigningKey, DLMSPublicKey) {
        guard case .signing(let privateKey, let peerPublicKey) = credentials else {
            throw DLMSSecurityError.invalidArgument("\(mechanism) needs a private signing key and the peer's public key")
        }
        guard privateKey.curve == peerPublicKey.curve else {
            throw DLMSSecurityError.invalidKey("the signing key is \(privateKey.curve) but the peer's public key is \(peerPublicKey.curve): both must be of one security suite")
        }
        if securitySuite != 0, securitySuite != privateKey.curve.securitySuite {
            throw DLMSSecurityError.invalidKey("security suite \(securitySuite) signs with \((try? ECDSACurve(securitySuite: securitySuite))?.description ?? "no curve"), not \(privateKey.curve)")
        }
        return (privateKey, peerPublicKey)
    }

    private func titles() throws -> (own: SystemTitle, peer: SystemTitle) {
        guard let ownSystemTitle, let peerSystemTitle else {
            throw DLMSSecurityError.invalidArgument("\(mechanism) needs both system titles")
        }
        return (ownSystemTitle, peerSystemTitle)
    }
}

/// HLS helpers: challenges and the parts of a GMAC reply.
public enum HLS {
    /// Challenge lengths the Green Book allows (9.2.4.8.4: 8 to 64 octets).
    public static let challengeLengths: ClosedRange<Int> = 8...64

    /// A random challenge from the system's cryptographic generator.
    /// - Parameter length: 8 to 64 bytes. Default: 16 (some meters accept no other length).
    public static func challenge(length: Int = 16) throws -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return try challenge(length: length, using: &generator)
    }

    /// A challenge from `generator` (inject a seeded one in tests; production uses the system's).
    /// - Throws: `DLMSSecurityError` `.invalidArgument` for a length outside 8...64.
    public static func challenge(length: Int = 16, using generator: inout some RandomNumberGenerator) throws -> [UInt8] {
        guard challengeLengths.contains(length) else {
            throw DLMSSecurityError.invalidArgument("an HLS challenge has 8 to 64 bytes, not \(length)")
        }
        return (0..<length).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    /// The invocation counter a GMAC reply (SC ‖ IC ‖ T) carries, e.g. to seed replay protection.
    /// - Throws: `DLMSSecurityError` `.decodeFailure` unless the reply is 17 bytes with an SC of
    ///   authentication only (0x10, 0x11 or 0x12).
    public static func invocationCounter(ofGMACResponse reply: [UInt8]) throws -> UInt32 {
        guard reply.count == 5 + SecuritySuite0.tagLength else {
            throw DLMSSecurityError.decodeFailure("an HLS-GMAC reply has 17 bytes, not \(reply.count)")
        }
        guard reply[0] & 0xF0 == SecurityControl.authenticated.rawValue, reply[0] & 0x0F <= 2 else {
            throw DLMSSecurityError.decodeFailure("an HLS-GMAC reply starts with SC 0x10–0x12, not 0x\(Hex.encode(reply[0]))")
        }
        return reply[1..<5].reduce(0) { $0 << 8 | UInt32($1) }
    }
}
