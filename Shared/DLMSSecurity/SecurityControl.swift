import COSEM

/// The security control byte of the security header (Green Book 9.2.7.2.2, Table 37):
/// security suite id in bits 0–3, authentication bit 4, encryption bit 5, broadcast key bit 6,
/// compression bit 7.
public struct SecurityControl: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public init(suite: UInt8 = 0, authenticated: Bool, encrypted: Bool, broadcastKey: Bool = false, compressed: Bool = false) {
        rawValue = (suite & 0x0F)
            | (authenticated ? 0x10 : 0) | (encrypted ? 0x20 : 0)
            | (broadcastKey ? 0x40 : 0) | (compressed ? 0x80 : 0)
    }

    /// Suite 0, authentication only (0x10): the plaintext travels with a GMAC tag.
    public static let authenticated = SecurityControl(rawValue: 0x10)
    /// Suite 0, encryption only (0x20): ciphertext, no tag.
    public static let encrypted = SecurityControl(rawValue: 0x20)
    /// Suite 0, authenticated encryption (0x30): ciphertext and tag.
    public static let authenticatedAndEncrypted = SecurityControl(rawValue: 0x30)

    public var suite: UInt8 { rawValue & 0x0F }
    public var isAuthenticated: Bool { rawValue & 0x10 != 0 }
    public var isEncrypted: Bool { rawValue & 0x20 != 0 }
    public var usesBroadcastKey: Bool { rawValue & 0x40 != 0 }
    public var isCompressed: Bool { rawValue & 0x80 != 0 }

    /// The same byte for another suite.
    public func withSuite(_ suite: UInt8) -> SecurityControl { SecurityControl(rawValue: rawValue & 0xF0 | suite & 0x0F) }

    public var description: String {
        var parts = ["suite \(suite)"]
        if isAuthenticated { parts.append("authenticated") }
        if isEncrypted { parts.append("encrypted") }
        if usesBroadcastKey { parts.append("broadcast key") }
        if isCompressed { parts.append("compressed") }
        return "SC 0x\(Hex.encode(rawValue)) (" + parts.joined(separator: ", ") + ")"
    }
}

/// The protection an association requires of every xDLMS APDU it receives and applies to every
/// APDU it sends (the Security setup object's security_policy, Blue Book 4.4.7).
public struct SecurityPolicy: Hashable, Sendable, CustomStringConvertible {
    public var requiresAuthentication: Bool
    public var requiresEncryption: Bool

    public init(requiresAuthentication: Bool, requiresEncryption: Bool) {
        self.requiresAuthentication = requiresAuthentication
        self.requiresEncryption = requiresEncryption
    }

    /// Every APDU carries a GMAC tag over its plaintext.
    public static let authenticated = SecurityPolicy(requiresAuthentication: true, requiresEncryption: false)
    /// Every APDU is encrypted (no tag: integrity is not protected).
    public static let encrypted = SecurityPolicy(requiresAuthentication: false, requiresEncryption: true)
    /// Every APDU is encrypted and authenticated. The default.
    public static let authenticatedAndEncrypted = SecurityPolicy(requiresAuthentication: true, requiresEncryption: true)

    /// The security control byte for sending under this policy.
    public func securityControl(suite: UInt8 = 0) -> SecurityControl {
        SecurityControl(suite: suite, authenticated: requiresAuthentication, encrypted: requiresEncryption)
    }

    /// Whether a received APDU with `control` is protected at least as this policy requires.
    public func isSatisfied(by control: SecurityControl) -> Bool {
        (!requiresAuthentication || control.isAuthenticated) && (!requiresEncryption || control.isEncrypted)
    }

    public var description: String {
        switch (requiresAuthentication, requiresEncryption) {
        case (true, true): "authenticated and encrypted"
        case (true, false): "authenticated"
        case (false, true): "encrypted"
        case (false, false): "none"
        }
    }
}
