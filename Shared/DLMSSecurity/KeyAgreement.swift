import COSEM
import Crypto
import Foundation
import NIOCore

/// Which symmetric key a security setup `key_transfer` or `key_agreement` replaces
/// (Blue Book IC 64, `key_id` enum).
public enum DLMSKeyID: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case globalUnicastEncryption = 0
    case globalBroadcastEncryption = 1
    case authentication = 2
    /// The master key (KEK).
    case masterKey = 3

    public var description: String {
        switch self {
        case .globalUnicastEncryption: "global unicast encryption key"
        case .globalBroadcastEncryption: "global broadcast encryption key"
        case .authentication: "authentication key"
        case .masterKey: "master key (KEK)"
        }
    }
}

/// An ephemeral ECDH private key of security suite 1 (P-256) or 2 (P-384), used for one
/// key agreement and dropped. Never prints (description, debug description and mirror give the curve only).
public struct DLMSEphemeralKey: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    fileprivate enum Storage: Sendable {
        case p256(P256.KeyAgreement.PrivateKey)
        case p384(P384.KeyAgreement.PrivateKey)
    }

    fileprivate let storage: Storage

    /// A new random key of `curve`.
    public static func generate(_ curve: ECDSACurve) -> DLMSEphemeralKey {
        DLMSEphemeralKey(storage: curve == .p256 ? .p256(P256.KeyAgreement.PrivateKey()) : .p384(P384.KeyAgreement.PrivateKey()))
    }

    private init(storage: Storage) { self.storage = storage }

    /// A fixed scalar (32 or 48 bytes): for tests that reproduce independent vectors.
    package init(bytes: [UInt8]) throws {
        do {
            switch bytes.count {
            case 32: storage = .p256(try P256.KeyAgreement.PrivateKey(rawRepresentation: bytes))
            case 48: storage = .p384(try P384.KeyAgreement.PrivateKey(rawRepresentation: bytes))
            default: throw DLMSSecurityError.invalidKey("an ephemeral ECDH key has 32 or 48 bytes, not \(bytes.count)")
            }
        } catch let error as DLMSSecurityError {
            throw error
        } catch {
            throw DLMSSecurityError.invalidKey("the ephemeral ECDH key is not a valid scalar of its curve")
        }
    }

    public var curve: ECDSACurve {
        switch storage {
        case .p256: .p256
        case .p384: .p384
        }
    }

    /// The public point x ‖ y (64 or 96 bytes): what travels in `key_agreement`.
    public var publicKeyBytes: [UInt8] {
        switch storage {
        case .p256(let key): Array(key.publicKey.rawRepresentation)
        case .p384(let key): Array(key.publicKey.rawRepresentation)
        }
    }

    /// Z: the x-coordinate of the ECDH shared point with the peer's public point x ‖ y.
    /// - Throws: `DLMSSecurityError` `.invalidKey` when the peer's point is not on this curve.
    func sharedSecret(withPeerPoint point: [UInt8]) throws -> [UInt8] {
        do {
            switch storage {
            case .p256(let key):
                let peer = try P256.KeyAgreement.PublicKey(rawRepresentation: point)
                return try key.sharedSecretFromKeyAgreement(with: peer).withUnsafeBytes { Array($0) }
            case .p384(let key):
                let peer = try P384.KeyAgreement.PublicKey(rawRepresentation: point)
                return try key.sharedSecretFromKeyAgreement(with: peer).withUnsafeBytes { Array($0) }
            }
        } catch {
            throw DLMSSecurityError.invalidKey("the peer's ephemeral public key is not a point of \(curve)")
        }
    }

    public var description: String { "DLMSEphemeralKey(\(curve), redacted)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["curve": curve.description, "bytes": "redacted"], displayStyle: .struct) }
}

/// One side of a security setup `key_agreement` (Blue Book IC 64 method 3; Green Book 9.2.3.4.6):
/// scheme C(2e, 0s), the Ephemeral Unified Model of NIST SP 800-56A, with each ephemeral public
/// key signed by its side's ECDSA signing key. Sans-IO: key-data in, key-data and key out.
///
/// Byte-level details, from Gurux (Gurux.DLMS.Net `GXSecure.GetEphemeralPublicKeyData`,
/// `GetEphemeralPublicKeySignature`, `GXDLMSSecuritySetup.KeyAgreement`/`InvokeKeyAgreement` and
/// the client's parsing of the reply; gurux.dlms.java `GXDLMSSecuritySetup.keyAgreement` and its
/// server `invoke` of method 3):
/// - key-data = ephemeral public key x ‖ y ‖ signature r ‖ s (64 + 64 bytes on P-256);
/// - the signature is over key-id ‖ x ‖ y (Gurux overwrites the 04 of the uncompressed point
///   with the key id), by the sender's signing key, for both directions;
/// - Z is the x-coordinate of the shared point; the key is the SP 800-56A concatenation KDF
///   Hash(00000001 ‖ Z ‖ OtherInfo), OtherInfo = AlgorithmID ‖ PartyUInfo ‖ PartyVInfo without
///   length prefixes, AlgorithmID the 7-byte OID value 60 85 74 05 08 03 xx (Gurux `GenerateKDF`,
///   Green Book Table 18), PartyUInfo the client's system title and PartyVInfo the server's
///   (Gurux's client passes its own title then the meter's; its Java server passes
///   `getSourceSystemTitle()` — the client's — then its own); truncated to the key length.
///
/// Our choices where Gurux does not say (it implements suite 1 only and hard-codes AES-GCM-128,
/// SHA-256 and 16 bytes for every key id): suite 2 hashes with SHA-384, takes 32 bytes and names
/// aes-gcm-256 (AlgorithmID last byte 01); every key id uses its suite's AES-GCM algorithm id, the
/// master key (KEK) included.
public struct DLMSKeyAgreement: Sendable, CustomStringConvertible {
    public enum Role: Sendable { case client, server }

    public let role: Role
    public let keyID: DLMSKeyID
    public let clientSystemTitle: SystemTitle
    public let serverSystemTitle: SystemTitle
    let ephemeralKey: DLMSEphemeralKey
    let peerSigningKey: DLMSPublicKey
    /// What this side sends: its ephemeral x ‖ y and the signature of key-id ‖ x ‖ y.
    public let ownKeyData: [UInt8]

    /// - Parameters:
    ///   - role: whether this side is the client (party U) or the server (party V).
    ///   - signingKey: this side's ECDSA key; its curve is the agreement's (suite 1 or 2).
    ///   - peerSigningKey: the peer's ECDSA public key, which must verify its key-data.
    ///   - ephemeralKey: a fixed ephemeral key (tests); default a new random one.
    /// - Throws: `DLMSSecurityError` `.invalidKey` when the keys are of different curves.
    public init(role: Role, keyID: DLMSKeyID, signingKey: DLMSSigningKey, peerSigningKey: DLMSPublicKey,
                clientSystemTitle: SystemTitle, serverSystemTitle: SystemTitle, ephemeralKey: DLMSEphemeralKey? = nil) throws {
        let curve = signingKey.curve
        guard peerSigningKey.curve == curve else {
            throw DLMSSecurityError.invalidKey("the peer's \(peerSigningKey.curve) key does not go with a \(curve) signing key")
        }
        let ephemeral = ephemeralKey ?? .generate(curve)
        guard ephemeral.curve == curve else {
            throw DLMSSecurityError.invalidKey("a \(ephemeral.curve) ephemeral key does not go with a \(curve) signing key")
        }
        self.role = role
        self.keyID = keyID
        self.clientSystemTitle = clientSystemTitle
        self.serverSystemTitle = serverSystemTitle
        self.ephemeralKey = ephemeral
        self.peerSigningKey = peerSigningKey
        let point = ephemeral.publicKeyBytes
        self.ownKeyData = point + (try signingKey.signature(for: Self.signedData(keyID: keyID, point: point)))
    }

    public var curve: ECDSACurve { ephemeralKey.curve }

    public var description: String {
        "DLMSKeyAgreement(\(role), \(keyID), \(curve), client \(clientSystemTitle), server \(serverSystemTitle), ephemeral key redacted)"
    }

    /// The length of the agreed key: 16 bytes (suite 1, AES-128), 32 bytes (suite 2, AES-256).
    public var keyLength: Int { curve == .p256 ? 16 : 32 }

    /// Verifies the peer's key-data and derives the new key from it and our ephemeral key.
    /// - Throws: `DLMSSecurityError` `.decodeFailure` for key-data of the wrong length,
    ///   `.authenticationFailed` when its signature does not verify with the peer's signing key,
    ///   `.invalidKey` when its point is not on the curve.
    public func agreedKey(peerKeyData: some Collection<UInt8>) throws -> DLMSKey {
        let data = Array(peerKeyData)
        let pointLength = 2 * curve.coordinateLength
        guard data.count == pointLength + curve.signatureLength else {
            throw DLMSSecurityError.decodeFailure("\(curve) key-data has \(pointLength + curve.signatureLength) bytes (x ‖ y ‖ r ‖ s), not \(data.count)")
        }
        let point = Array(data[..<pointLength])
        try peerSigningKey.verify(signature: data[pointLength...], for: Self.signedData(keyID: keyID, point: point))
        var z = try ephemeralKey.sharedSecret(withPeerPoint: point)
        defer { for i in z.indices { z[i] = 0 } }
        var key = Self.concatenationKDF(curve: curve, sharedSecret: z,
                                        otherInfo: Self.otherInfo(curve: curve, partyU: clientSystemTitle, partyV: serverSystemTitle),
                                        length: keyLength)
        defer { for i in key.indices { key[i] = 0 } }
        return try DLMSKey(bytes: key)
    }

    // MARK: - Byte layouts

    /// key-id ‖ x ‖ y: what each side signs (Gurux `GetEphemeralPublicKeyData`).
    static func signedData(keyID: DLMSKeyID, point: [UInt8]) -> [UInt8] { [keyID.rawValue] + point }

    /// The AlgorithmID of OtherInfo: the DER contents of the OID 2.16.756.5.8.3.x (Green Book
    /// Table 18; Gurux `GenerateKDF` writes 60 85 74 05 08 03 and the id): x = 0 aes-gcm-128 for
    /// suite 1, 1 aes-gcm-256 for suite 2.
    public static func algorithmID(curve: ECDSACurve) -> [UInt8] {
        [0x60, 0x85, 0x74, 0x05, 0x08, 0x03, curve == .p256 ? 0x00 : 0x01]
    }

    /// OtherInfo = AlgorithmID ‖ PartyUInfo (client title) ‖ PartyVInfo (server title), fixed
    /// lengths, no SuppPubInfo or SuppPrivInfo (Gurux passes `null` for both).
    public static func otherInfo(curve: ECDSACurve, partyU: SystemTitle, partyV: SystemTitle) -> [UInt8] {
        algorithmID(curve: curve) + partyU.bytes + partyV.bytes
    }

    /// NIST SP 800-56A §5.8.1 single-step (concatenation) KDF: Hash(counter ‖ Z ‖ OtherInfo) for
    /// counter = 1, 2, … (32 bits, big-endian), concatenated and truncated to `length`; SHA-256 on
    /// P-256 (suite 1), SHA-384 on P-384 (suite 2).
    public static func concatenationKDF(curve: ECDSACurve, sharedSecret z: [UInt8], otherInfo: [UInt8], length: Int) -> [UInt8] {
        var out: [UInt8] = []
        var counter: UInt32 = 1
        while out.count < length {
            let block = [UInt8(counter >> 24), UInt8(counter >> 16 & 0xFF), UInt8(counter >> 8 & 0xFF), UInt8(counter & 0xFF)] + z + otherInfo
            if curve == .p256 {
                out += SHA256.hash(data: block)
            } else {
                out += SHA384.hash(data: block)
            }
            counter += 1
        }
        return Array(out.prefix(length))
    }

    // MARK: - The method's parameter and return parameters against DLMSData

    /// One element of `key_agreement`'s array: { key-id enum, key-data octet-string }.
    public struct Entry: Sendable, Equatable {
        public var keyID: DLMSKeyID
        public var keyData: [UInt8]
        public init(keyID: DLMSKeyID, keyData: [UInt8]) {
            self.keyID = keyID
            self.keyData = keyData
        }
    }

    /// The request parameter (or response return parameters): array of structure { enum, octet-string }.
    public static func encode(_ entries: [Entry]) -> DLMSData {
        .array(DLMSDataList(entries.map { .structure([.enumerated($0.keyID.rawValue), .octetString(ByteBuffer(bytes: $0.keyData))]) }))
    }

    /// - Throws: `DLMSSecurityError` `.decodeFailure` for another shape, an empty array or more
    ///   than 4 entries; `.invalidArgument` for an unknown key id.
    public static func decode(_ data: DLMSData) throws -> [Entry] {
        guard case .array(let list) = data, (1...4).contains(list.count) else {
            throw DLMSSecurityError.decodeFailure("key_agreement data is an array of 1 to 4 { key-id, key-data } structures")
        }
        return try list.map { element in
            guard case .structure(let fields) = element, fields.count == 2,
                  case .enumerated(let id) = fields[0], case .octetString(let bytes) = fields[1] else {
                throw DLMSSecurityError.decodeFailure("a key_agreement element is a structure { enum key-id, octet-string key-data }")
            }
            guard let keyID = DLMSKeyID(rawValue: id) else {
                throw DLMSSecurityError.invalidArgument("key-id \(id) is not 0-3")
            }
            return Entry(keyID: keyID, keyData: Array(bytes.readableBytesView))
        }
    }
}
