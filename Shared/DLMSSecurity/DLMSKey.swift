import COSEM
import Crypto

/// A DLMS block cipher key (global unicast, broadcast or dedicated) or authentication key:
/// 16 bytes for security suites 0 and 1 (AES-128), 32 bytes for suite 2 (AES-256).
///
/// The bytes never leave this type by accident: `description`, `debugDescription` and the
/// mirror (`dump`, `String(reflecting:)`) say only the length, it is not `Codable`, and the bytes
/// are reachable only through ``withUnsafeBytes(_:)``. Storage is swift-crypto's `SymmetricKey`,
/// which zeroes its memory when released. Equality is constant-time.
///
/// Each key also keeps its AES key schedule and GCM hash subkey H = AES(K, 0¹²⁸), expanded once
/// for the short APDUs of a session (``AESGCM``), in memory that is wiped when the key is released.
public struct DLMSKey: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The key lengths DLMS security suites use: 16 (suites 0, 1) and 32 (suite 2).
    public static let allowedLengths: Set<Int> = [16, 32]

    let symmetricKey: SymmetricKey
    /// The expanded key and H, for ``AESGCM``.
    let aes: ConstantTimeAES

    /// - Throws: `DLMSSecurityError` `.invalidKey` when `bytes` is not 16 or 32 bytes long.
    public init(bytes: some Sequence<UInt8>) throws {
        var array = Array(bytes)
        defer { for i in array.indices { array[i] = 0 } }
        guard Self.allowedLengths.contains(array.count) else {
            throw DLMSSecurityError.invalidKey("a DLMS key has 16 or 32 bytes, not \(array.count)")
        }
        self.symmetricKey = SymmetricKey(data: array)
        self.aes = array.withUnsafeBytes { ConstantTimeAES(key: $0) }
    }

    public static func == (lhs: DLMSKey, rhs: DLMSKey) -> Bool {
        lhs.symmetricKey == rhs.symmetricKey
    }

    /// - Parameter hex: 32 or 64 hexadecimal digits (either case; whitespace is ignored).
    /// - Throws: `DLMSSecurityError` `.invalidKey` on a non-hex character, an odd digit count or a
    ///   wrong length. The error never quotes the input.
    public init(hex: String) throws {
        guard let bytes = Hex.decode(hex) else {
            throw DLMSSecurityError.invalidKey("a DLMS key must be hexadecimal digits (input not shown)")
        }
        try self.init(bytes: bytes)
    }

    /// The key length in bytes (16 or 32).
    public var count: Int { aes.keyCount }

    /// Calls `body` with the key bytes. Do not copy them out of the closure.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try symmetricKey.withUnsafeBytes(body)
    }

    /// The key bytes, for code in this package that must hand them to another API.
    package var bytes: [UInt8] { symmetricKey.withUnsafeBytes { Array($0) } }

    public var description: String { "DLMSKey(\(count) bytes, redacted)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["count": count, "bytes": "redacted"], displayStyle: .struct) }
}

/// A shared secret of any length: the LLS password and the HLS secret of mechanisms 3 (MD5),
/// 4 (SHA-1) and 6 (SHA-256). Redacted like ``DLMSKey``.
public struct DLMSSecret: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    let storage: SymmetricKey

    /// - Throws: `DLMSSecurityError` `.invalidKey` when `bytes` is empty or longer than 255 bytes.
    public init(bytes: some Sequence<UInt8>) throws {
        let array = Array(bytes)
        guard (1...255).contains(array.count) else {
            throw DLMSSecurityError.invalidKey("a DLMS secret has 1 to 255 bytes, not \(array.count)")
        }
        self.storage = SymmetricKey(data: array)
    }

    /// A secret given as text (an LLS password such as "12345678"), taken as its UTF-8 bytes.
    public init(text: String) throws { try self.init(bytes: Array(text.utf8)) }

    /// - Throws: `DLMSSecurityError` `.invalidKey` on anything but hexadecimal digits. The error
    ///   never quotes the input.
    public init(hex: String) throws {
        guard let bytes = Hex.decode(hex) else {
            throw DLMSSecurityError.invalidKey("a DLMS secret in hex must be hexadecimal digits (input not shown)")
        }
        try self.init(bytes: bytes)
    }

    /// The secret length in bytes.
    public var count: Int { storage.bitCount / 8 }

    /// Calls `body` with the secret bytes. Do not copy them out of the closure.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try storage.withUnsafeBytes(body)
    }

    /// The secret bytes, for code in this package that must put them on the wire (LLS).
    package var bytes: [UInt8] { storage.withUnsafeBytes { Array($0) } }

    public var description: String { "DLMSSecret(\(count) bytes, redacted)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["count": count, "bytes": "redacted"], displayStyle: .struct) }
}
