import COSEM
import Crypto
import Foundation

/// A DLMS key (or HLS secret's key material) wrapped with a master key (AES key wrap, IETF
/// RFC 3394; the same algorithm as the Green Book's key_transfer), so it can travel in a
/// collection task on Kafka or sit in a configuration without ever being in the clear
/// (../shared/DESIGN.md: keys reach the collector wrapped). Only a holder of the master key
/// named `masterKeyID` unwraps it.
///
/// Codable as `{"masterKeyID": "…", "wrapped": "<hex>"}`; the hex is ciphertext, safe to log.
public struct WrappedDLMSKey: Hashable, Sendable, Codable, CustomStringConvertible {
    /// Names the master key that wrapped this one (key rotation keeps several).
    public var masterKeyID: String
    /// The RFC 3394 output: 8 bytes more than the key.
    public var wrapped: [UInt8]

    public init(masterKeyID: String, wrapped: [UInt8]) {
        self.masterKeyID = masterKeyID
        self.wrapped = wrapped
    }

    /// Wraps `key` with `master`.
    /// - Throws: `DLMSSecurityError` `.invalidKey` when the wrapping fails.
    public init(wrapping key: DLMSKey, with master: MasterKey) throws {
        self.init(masterKeyID: master.id, wrapped: try master.wrap(key.symmetricKey, what: "key"))
    }

    /// The key, when `master` is the one that wrapped it and the wrapping is intact.
    /// - Throws: `DLMSSecurityError` `.invalidKey` for another master key (by id), and
    ///   `.authenticationFailed` when the RFC 3394 integrity check fails (wrong master key
    ///   material or altered bytes). Nothing of the key is revealed.
    public func unwrap(with master: MasterKey) throws -> DLMSKey {
        let key = try master.unwrap(wrapped, wrappedWith: masterKeyID, what: "key")
        return try key.withUnsafeBytes { try DLMSKey(bytes: $0) }
    }

    public var description: String { "WrappedDLMSKey(master \(masterKeyID), \(wrapped.count) bytes)" }

    private enum CodingKeys: String, CodingKey { case masterKeyID, wrapped }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        masterKeyID = try c.decode(String.self, forKey: .masterKeyID)
        let hex = try c.decode(String.self, forKey: .wrapped)
        guard let bytes = Hex.decode(hex), bytes.count >= 24, bytes.count % 8 == 0 else {
            throw DecodingError.dataCorruptedError(forKey: .wrapped, in: c, debugDescription: "a wrapped key is hex of 24 or more bytes, a multiple of 8")
        }
        wrapped = bytes
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(masterKeyID, forKey: .masterKeyID)
        try c.encode(Hex.encode(wrapped), forKey: .wrapped)
    }
}

/// The key-encryption key of `WrappedDLMSKey` (AES-128 or AES-256), loaded from a file or the
/// environment (`HES_MASTER_KEY_FILE`). Never prints its bytes.
public struct MasterKey: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public let id: String
    let key: SymmetricKey

    /// - Parameter hex: 32 or 64 hex digits.
    /// - Throws: `DLMSSecurityError` `.invalidKey` (the input is never quoted).
    public init(id: String, hex: String) throws {
        guard let bytes = Hex.decode(hex), bytes.count == 16 || bytes.count == 32 else {
            throw DLMSSecurityError.invalidKey("a master key is 16 or 32 bytes of hex (input not shown)")
        }
        self.id = id
        self.key = SymmetricKey(data: bytes)
    }

    /// The master key whose hex is in the file at `path` (`HES_MASTER_KEY_FILE`; surrounding
    /// white space is ignored).
    /// - Throws: `DLMSSecurityError` `.invalidKey` when the file cannot be read or holds no key.
    public init(id: String, contentsOfFile path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DLMSSecurityError.invalidKey("cannot read the master key file \(path)")
        }
        try self.init(id: id, hex: String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    public var description: String { "MasterKey(\(id), redacted)" }

    /// RFC 3394 key wrap of `plain` (16 bytes or more, a multiple of 8) with this key.
    /// - Throws: `DLMSSecurityError` `.invalidKey` naming `what` was being wrapped.
    func wrap(_ plain: SymmetricKey, what: String) throws -> [UInt8] {
        do {
            return Array(try AES.KeyWrap.wrap(plain, using: key))
        } catch {
            throw DLMSSecurityError.invalidKey("the \(what) could not be wrapped with master key \(id)")
        }
    }

    /// The plain bytes of `wrapped`, when this is the master key `wrappedWith` names and the
    /// wrapping is intact.
    /// - Throws: `DLMSSecurityError` `.invalidKey` for another master key, `.authenticationFailed`
    ///   when the integrity check fails. Nothing of the plain bytes is revealed.
    func unwrap(_ wrapped: [UInt8], wrappedWith masterKeyID: String, what: String) throws -> SymmetricKey {
        guard id == masterKeyID else {
            throw DLMSSecurityError.invalidKey("the \(what) is wrapped with master key \(masterKeyID), not \(id)")
        }
        do {
            return try AES.KeyWrap.unwrap(wrapped, using: key)
        } catch {
            throw DLMSSecurityError.authenticationFailed("the wrapped \(what) does not unwrap with master key \(id) (wrong key or altered)")
        }
    }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["id": id, "key": "redacted"], displayStyle: .struct) }
}

extension MasterKey {
    /// Seals `plain` for storage at rest: AES-GCM under this key with a random 12-byte nonce,
    /// `nonce || ciphertext || tag`; `context` (e.g. `meter-id/key-kind`) is authenticated, so
    /// a box moved to another meter or key kind does not open.
    public func seal(_ plain: [UInt8], context: String) throws -> [UInt8] {
        do {
            let box = try AES.GCM.seal(plain, using: key, authenticating: Array(context.utf8))
            guard let combined = box.combined else { throw DLMSSecurityError.invalidKey("sealing failed") }
            return Array(combined)
        } catch let error as DLMSSecurityError {
            throw error
        } catch {
            throw DLMSSecurityError.invalidKey("a secret could not be sealed with master key \(id)")
        }
    }

    /// The plain bytes of a box `seal(_:context:)` made with this key and `context`.
    /// - Throws: `DLMSSecurityError` `.authenticationFailed` for another key, another context or
    ///   an altered box. Nothing of the plain bytes is revealed.
    public func open(_ sealed: [UInt8], context: String) throws -> [UInt8] {
        do {
            let box = try AES.GCM.SealedBox(combined: sealed)
            return Array(try AES.GCM.open(box, using: key, authenticating: Array(context.utf8)))
        } catch {
            throw DLMSSecurityError.authenticationFailed("a sealed secret does not open with master key \(id) (wrong key, wrong owner or altered)")
        }
    }
}
