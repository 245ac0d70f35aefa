import Crypto
import Foundation

/// A DLMS secret of any length (an LLS password, an HLS secret) wrapped with a master key, so it
/// travels in a collection task or sits in a configuration as ciphertext, like ``WrappedDLMSKey``.
///
/// AES key wrap (IETF RFC 3394) takes 16 bytes or more in multiples of 8, so the secret is
/// framed first: one length byte, the secret, zeros up to the next multiple of 8 (at least 16
/// bytes). The JSON shape is ``WrappedDLMSKey``'s: `{"masterKeyID": "…", "wrapped": "<hex>"}`.
public struct WrappedDLMSSecret: Hashable, Sendable, CustomStringConvertible {
    public var masterKeyID: String
    public var wrapped: [UInt8]

    public init(masterKeyID: String, wrapped: [UInt8]) {
        self.masterKeyID = masterKeyID
        self.wrapped = wrapped
    }

    /// Wraps `secret` with `master`.
    /// - Throws: `DLMSSecurityError` `.invalidKey` when the wrapping fails.
    public init(wrapping secret: DLMSSecret, with master: MasterKey) throws {
        var framed = [UInt8(secret.count)]
        secret.withUnsafeBytes { framed.append(contentsOf: $0) }
        let length = max(16, (framed.count + 7) / 8 * 8)
        framed.append(contentsOf: repeatElement(0, count: length - framed.count))
        defer { for index in framed.indices { framed[index] = 0 } }
        self.init(masterKeyID: master.id, wrapped: try master.wrap(SymmetricKey(data: framed), what: "secret"))
    }

    /// The secret, when `master` is the one that wrapped it and the wrapping is intact.
    /// - Throws: `DLMSSecurityError` `.invalidKey` for another master key or a malformed frame,
    ///   `.authenticationFailed` when the RFC 3394 integrity check fails. Nothing of the secret
    ///   is revealed.
    public func unwrap(with master: MasterKey) throws -> DLMSSecret {
        let framed = try master.unwrap(wrapped, wrappedWith: masterKeyID, what: "secret")
        return try framed.withUnsafeBytes { bytes -> DLMSSecret in
            let length = Int(bytes[0])
            guard length >= 1, length < bytes.count, bytes[(length + 1)...].allSatisfy({ $0 == 0 }) else {
                throw DLMSSecurityError.invalidKey("the wrapped secret is not a framed secret (was it wrapped as a key?)")
            }
            return try DLMSSecret(bytes: bytes[1...length])
        }
    }

    public var description: String { "WrappedDLMSSecret(master \(masterKeyID), \(wrapped.count) bytes)" }
}
