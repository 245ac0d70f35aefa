import COSEM
import Crypto
import Foundation

/// The elliptic curve and hash of the ECDSA signatures of security suites 1 and 2
/// (Green Book 9.2.3.4.3, Table 30): P-256 with SHA-256, P-384 with SHA-384.
public struct ECDSACurve: Hashable, Sendable, CustomStringConvertible {
    fileprivate enum Base: Hashable, Sendable { case p256, p384 }
    fileprivate let base: Base
    fileprivate init(base: Base) { self.base = base }

    /// Security suite 1: NIST P-256, SHA-256, 64-byte signatures.
    public static let p256 = ECDSACurve(base: .p256)
    /// Security suite 2: NIST P-384, SHA-384, 96-byte signatures.
    public static let p384 = ECDSACurve(base: .p384)

    /// The curve of security suite 1 or 2.
    /// - Throws: `DLMSSecurityError` `.unsupportedMechanism` for suite 0 (no signatures) or an unknown suite.
    public init(securitySuite: UInt8) throws {
        switch securitySuite {
        case 1: self = .p256
        case 2: self = .p384
        default: throw DLMSSecurityError.unsupportedMechanism("security suite \(securitySuite) has no ECDSA; suites 1 (P-256) and 2 (P-384) do")
        }
    }

    /// 1 for P-256, 2 for P-384.
    public var securitySuite: UInt8 { base == .p256 ? 1 : 2 }
    /// The length of a coordinate, of the private scalar and of r and s: 32 or 48 bytes.
    public var coordinateLength: Int { base == .p256 ? 32 : 48 }
    /// The length of a signature r ‖ s: 64 or 96 bytes.
    public var signatureLength: Int { 2 * coordinateLength }

    public var description: String { base == .p256 ? "P-256" : "P-384" }
}

/// An ECDSA private signing key of security suite 1 (P-256) or 2 (P-384): what HLS
/// mechanism 7 signs its reply with.
///
/// Like ``DLMSKey`` the scalar never leaves this type by accident: `description`,
/// `debugDescription` and the mirror give only the curve, it is not `Codable`, and storage is
/// swift-crypto's key (BoringSSL memory, freed when released).
public struct DLMSSigningKey: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    fileprivate enum Storage: Sendable {
        case p256(P256.Signing.PrivateKey)
        case p384(P384.Signing.PrivateKey)
    }

    fileprivate let storage: Storage

    /// - Parameter bytes: the private scalar, big-endian: 32 bytes (P-256) or 48 bytes (P-384).
    /// - Throws: `DLMSSecurityError` `.invalidKey` for another length or a scalar that is not a
    ///   valid key (zero, or not below the curve's order). The error never quotes the input.
    public init(bytes: some Sequence<UInt8>) throws {
        var array = Array(bytes)
        defer { for i in array.indices { array[i] = 0 } }
        do {
            switch array.count {
            case 32: storage = .p256(try P256.Signing.PrivateKey(rawRepresentation: array))
            case 48: storage = .p384(try P384.Signing.PrivateKey(rawRepresentation: array))
            default: throw DLMSSecurityError.invalidKey("an ECDSA private key has 32 (P-256) or 48 (P-384) bytes, not \(array.count)")
            }
        } catch let error as DLMSSecurityError {
            throw error
        } catch {
            throw DLMSSecurityError.invalidKey("the ECDSA private key is not a valid scalar of its curve (input not shown)")
        }
    }

    /// - Parameter hex: 64 (P-256) or 96 (P-384) hexadecimal digits (either case; whitespace is ignored).
    /// - Throws: `DLMSSecurityError` `.invalidKey`; the error never quotes the input.
    public init(hex: String) throws {
        guard var bytes = Hex.decode(hex) else {
            throw DLMSSecurityError.invalidKey("an ECDSA private key must be hexadecimal digits (input not shown)")
        }
        defer { for i in bytes.indices { bytes[i] = 0 } }
        try self.init(bytes: bytes)
    }

    /// A key in PEM (`-----BEGIN PRIVATE KEY-----` PKCS #8 or `-----BEGIN EC PRIVATE KEY-----` SEC 1),
    /// as OpenSSL writes it. The curve comes from the key.
    /// - Throws: `DLMSSecurityError` `.invalidKey` when neither curve reads it.
    public init(pemRepresentation pem: String) throws {
        if let key = try? P256.Signing.PrivateKey(pemRepresentation: pem) {
            storage = .p256(key)
        } else if let key = try? P384.Signing.PrivateKey(pemRepresentation: pem) {
            storage = .p384(key)
        } else {
            throw DLMSSecurityError.invalidKey("the PEM text is not a P-256 or P-384 private key (input not shown)")
        }
    }

    /// A key as a file or flag gives it: PEM when the text starts with `-----BEGIN`, else hex.
    /// - Throws: `DLMSSecurityError` `.invalidKey`, as ``init(pemRepresentation:)`` or ``init(hex:)``.
    public init(pemOrHex text: String) throws {
        if text.hasPrefix("-----BEGIN") { try self.init(pemRepresentation: text) } else { try self.init(hex: text) }
    }

    /// A new random key (tests, simulated meters, `hesctl key`).
    public static func generate(_ curve: ECDSACurve) -> DLMSSigningKey {
        curve == .p256 ? DLMSSigningKey(storage: .p256(P256.Signing.PrivateKey())) : DLMSSigningKey(storage: .p384(P384.Signing.PrivateKey()))
    }

    private init(storage: Storage) { self.storage = storage }

    public var curve: ECDSACurve {
        switch storage {
        case .p256: .p256
        case .p384: .p384
        }
    }

    /// The matching public key, which the peer needs to verify our signatures.
    public var publicKey: DLMSPublicKey {
        switch storage {
        case .p256(let key): DLMSPublicKey(storage: .p256(key.publicKey))
        case .p384(let key): DLMSPublicKey(storage: .p384(key.publicKey))
        }
    }

    /// The ECDSA signature of `data` (hashed with SHA-256 for P-256, SHA-384 for P-384) as r ‖ s,
    /// each a big-endian number of the curve's coordinate length (Green Book 9.2.3.4.6: 64 or 96 bytes).
    public func signature(for data: some DataProtocol) throws -> [UInt8] {
        do {
            switch storage {
            case .p256(let key): return Array(try key.signature(for: data).rawRepresentation)
            case .p384(let key): return Array(try key.signature(for: data).rawRepresentation)
            }
        } catch {
            throw DLMSSecurityError.invalidArgument("ECDSA signing failed: \(error)")
        }
    }

    /// The scalar, for code in this package that must hand it to another API (tests' independent checks).
    package var bytes: [UInt8] {
        switch storage {
        case .p256(let key): Array(key.rawRepresentation)
        case .p384(let key): Array(key.rawRepresentation)
        }
    }

    public var description: String { "DLMSSigningKey(\(curve), redacted)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["curve": curve.description, "bytes": "redacted"], displayStyle: .struct) }
}

/// An ECDSA public key of security suite 1 (P-256) or 2 (P-384): what verifies the peer's HLS
/// mechanism 7 reply. Public information: it prints as the uncompressed point in hex.
public struct DLMSPublicKey: Hashable, Sendable, CustomStringConvertible {
    fileprivate enum Storage: Sendable {
        case p256(P256.Signing.PublicKey)
        case p384(P384.Signing.PublicKey)
    }

    fileprivate let storage: Storage

    fileprivate init(storage: Storage) { self.storage = storage }

    /// - Parameter bytes: the point x ‖ y (64 or 96 bytes), or uncompressed 04 ‖ x ‖ y (65 or 97
    ///   bytes), as the security setup object's certificates and Gurux carry it.
    /// - Throws: `DLMSSecurityError` `.invalidKey` for another length or a point not on the curve.
    public init(bytes: some Sequence<UInt8>) throws {
        let array = Array(bytes)
        do {
            switch array.count {
            case 64: storage = .p256(try P256.Signing.PublicKey(rawRepresentation: array))
            case 65 where array[0] == 0x04: storage = .p256(try P256.Signing.PublicKey(x963Representation: array))
            case 96: storage = .p384(try P384.Signing.PublicKey(rawRepresentation: array))
            case 97 where array[0] == 0x04: storage = .p384(try P384.Signing.PublicKey(x963Representation: array))
            default:
                throw DLMSSecurityError.invalidKey(
                    "an ECDSA public key has 64/96 bytes (x ‖ y) or 65/97 bytes (04 ‖ x ‖ y), not \(array.count)\(array.count == 65 || array.count == 97 ? " starting with 0x\(Hex.encode(array.prefix(1)))" : "")")
            }
        } catch let error as DLMSSecurityError {
            throw error
        } catch {
            throw DLMSSecurityError.invalidKey("the ECDSA public key is not a point of its curve")
        }
    }

    /// - Parameter hex: x ‖ y or 04 ‖ x ‖ y in hexadecimal (whitespace is ignored).
    public init(hex: String) throws {
        guard let bytes = Hex.decode(hex) else {
            throw DLMSSecurityError.invalidKey("an ECDSA public key must be hexadecimal digits")
        }
        try self.init(bytes: bytes)
    }

    /// A key in PEM (`-----BEGIN PUBLIC KEY-----`, as `openssl ec -pubout` writes it).
    /// - Throws: `DLMSSecurityError` `.invalidKey` when neither curve reads it.
    public init(pemRepresentation pem: String) throws {
        if let key = try? P256.Signing.PublicKey(pemRepresentation: pem) {
            storage = .p256(key)
        } else if let key = try? P384.Signing.PublicKey(pemRepresentation: pem) {
            storage = .p384(key)
        } else {
            throw DLMSSecurityError.invalidKey("the PEM text is not a P-256 or P-384 public key")
        }
    }

    /// A key as a file or flag gives it: PEM when the text starts with `-----BEGIN`, else hex.
    /// - Throws: `DLMSSecurityError` `.invalidKey`, as ``init(pemRepresentation:)`` or ``init(hex:)``.
    public init(pemOrHex text: String) throws {
        if text.hasPrefix("-----BEGIN") { try self.init(pemRepresentation: text) } else { try self.init(hex: text) }
    }

    public var curve: ECDSACurve {
        switch storage {
        case .p256: .p256
        case .p384: .p384
        }
    }

    /// The uncompressed point 04 ‖ x ‖ y (65 or 97 bytes).
    public var uncompressedBytes: [UInt8] {
        switch storage {
        case .p256(let key): Array(key.x963Representation)
        case .p384(let key): Array(key.x963Representation)
        }
    }

    /// Checks an ECDSA signature r ‖ s of `data` made with the matching private key.
    /// - Throws: `DLMSSecurityError` `.authenticationFailed` when it does not verify (including a
    ///   signature of the wrong length: it cannot be this curve's).
    public func verify(signature: some Collection<UInt8>, for data: some DataProtocol) throws {
        let valid: Bool
        switch storage {
        case .p256(let key):
            valid = (try? P256.Signing.ECDSASignature(rawRepresentation: Array(signature))).map { key.isValidSignature($0, for: data) } ?? false
        case .p384(let key):
            valid = (try? P384.Signing.ECDSASignature(rawRepresentation: Array(signature))).map { key.isValidSignature($0, for: data) } ?? false
        }
        guard signature.count == curve.signatureLength, valid else {
            throw DLMSSecurityError.authenticationFailed("the \(curve) ECDSA signature (\(signature.count) bytes) does not verify with the peer's public key")
        }
    }

    public static func == (lhs: DLMSPublicKey, rhs: DLMSPublicKey) -> Bool { lhs.uncompressedBytes == rhs.uncompressedBytes }
    public func hash(into hasher: inout Hasher) { hasher.combine(uncompressedBytes) }

    /// The uncompressed point in hex.
    public var hex: String { Hex.encode(uncompressedBytes) }
    public var description: String { "\(curve) \(hex)" }
}
