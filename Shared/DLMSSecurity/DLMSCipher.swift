import COSEM
import DLMSCodec
import NIOCore

/// The security context of one association, shared by the client and the server side: own and
/// peer system titles, keys and the security policy. A value: protecting and unprotecting do
/// not change it (counters live in ``InvocationCounter`` and ``InvocationCounterGuard``).
///
/// Green Book 9.2.7.2 (ciphered xDLMS APDUs) with security suite 0 (``SecuritySuite0``).
public struct DLMSCipher: Sendable, CustomStringConvertible {
    /// Our system title: the IV of everything we send, and the title in our general-ciphering APDUs.
    public var systemTitle: SystemTitle
    /// The peer's system title (from the AARE/AARQ AP title): the IV of everything we receive.
    public var peerSystemTitle: SystemTitle?
    /// EK, the global unicast encryption key.
    public var blockCipherKey: DLMSKey
    /// AK, part of the AAD of every authenticated APDU.
    public var authenticationKey: DLMSKey
    /// The dedicated key sent in the ciphered initiate-request; protects ded- and general-ded- APDUs.
    public var dedicatedKey: DLMSKey?
    /// The global broadcast key, used for received APDUs whose security control has bit 6 set.
    public var broadcastKey: DLMSKey?
    /// What every APDU we send carries and every APDU we receive must carry at least.
    public var policy: SecurityPolicy
    /// The security suite: 0 (AES-GCM-128), 1 (AES-GCM-128; of P-256 only HLS-ECDSA, no ECDH) or 2
    /// (AES-GCM-256, 32-byte keys; of P-384 only HLS-ECDSA, no ECDH). Default: 0.
    public var securitySuite: UInt8

    public init(systemTitle: SystemTitle, peerSystemTitle: SystemTitle? = nil, blockCipherKey: DLMSKey, authenticationKey: DLMSKey,
                dedicatedKey: DLMSKey? = nil, broadcastKey: DLMSKey? = nil, policy: SecurityPolicy = .authenticatedAndEncrypted,
                securitySuite: UInt8 = 0) {
        self.systemTitle = systemTitle
        self.peerSystemTitle = peerSystemTitle
        self.blockCipherKey = blockCipherKey
        self.authenticationKey = authenticationKey
        self.dedicatedKey = dedicatedKey
        self.broadcastKey = broadcastKey
        self.policy = policy
        self.securitySuite = securitySuite
    }

    /// The security control byte of what we send.
    public var securityControl: SecurityControl { policy.securityControl(suite: securitySuite) }

    // MARK: - Sending

    /// Protects a plain xDLMS APDU under the policy with our system title.
    /// - Parameters:
    ///   - apdu: the encoded plain APDU (first byte is its tag, e.g. 0xC0 get-request).
    ///   - kind: glo-/ded- service-specific or general-glo/general-ded ciphering.
    ///   - invocationCounter: our transmit counter for the key in use (``InvocationCounter/next()``).
    /// - Throws: `DLMSSecurityError` `.invalidArgument` for an empty APDU or one with no
    ///   service-specific ciphered form (use a general kind), `.invalidKey` when a dedicated kind
    ///   has no dedicated key or keys of the wrong length for the suite, `.unsupportedMechanism` for
    ///   suites other than 0, 1 and 2.
    public func protect(_ apdu: [UInt8], kind: CipheringKind, invocationCounter: UInt32) throws -> CipheredAPDU {
        guard let plainTag = apdu.first else { throw DLMSSecurityError.invalidArgument("cannot protect an empty APDU") }
        guard let tag = kind.cipheredTag(forPlainTag: plainTag) else {
            throw DLMSSecurityError.invalidArgument("APDU tag 0x\(Hex.encode(plainTag)) has no \(kind)-ciphered form; use general ciphering")
        }
        let sc = securityControl
        let payload = try SecuritySuite0.protect(apdu, securityControl: sc, systemTitle: systemTitle, invocationCounter: invocationCounter,
                                                 blockCipherKey: try key(for: kind, sc), authenticationKey: authenticationKey)
        return CipheredAPDU(tag: tag, systemTitle: kind.carriesSystemTitle ? systemTitle.dlmsBytes : nil, securityControl: sc.rawValue,
                            invocationCounter: invocationCounter, payload: DLMSBytes(payload))
    }

    /// ``protect(_:kind:invocationCounter:)`` from the plain APDU in a buffer straight to the
    /// encoded ciphered APDU (what ``CipheredAPDU/encode(into:)`` writes), without the arrays in
    /// between: the path of every request and response of a ciphered session.
    public func protectedAPDU(_ apdu: ByteBuffer, kind: CipheringKind, invocationCounter: UInt32) throws -> ByteBuffer {
        guard let plainTag = apdu.getInteger(at: apdu.readerIndex, as: UInt8.self) else {
            throw DLMSSecurityError.invalidArgument("cannot protect an empty APDU")
        }
        guard let tag = kind.cipheredTag(forPlainTag: plainTag) else {
            throw DLMSSecurityError.invalidArgument("APDU tag 0x\(Hex.encode(plainTag)) has no \(kind)-ciphered form; use general ciphering")
        }
        let sc = securityControl
        let key = try key(for: kind, sc)
        let payloadCount = SecuritySuite0.protectedCount(apdu.readableBytes, sc)
        var encoded = ByteBufferAllocator().buffer(capacity: 1 + 9 + 5 + 5 + payloadCount)
        encoded.writeInteger(tag)
        if kind.carriesSystemTitle { encoded.writeAXDROctetString(systemTitle.bytes) }
        encoded.writeAXDRLength(5 + payloadCount)
        encoded.writeInteger(sc.rawValue)
        encoded.writeInteger(invocationCounter)
        try apdu.withUnsafeReadableBytes { plaintext in
            try encoded.writeWithUnsafeMutableBytes(minimumWritableBytes: payloadCount) { output in
                try SecuritySuite0.protect(plaintext, into: output, securityControl: sc, systemTitle: systemTitle,
                                           invocationCounter: invocationCounter, blockCipherKey: key, authenticationKey: authenticationKey)
                return payloadCount
            }
        }
        return encoded
    }

    // MARK: - Receiving

    /// Verifies and removes the protection of a received ciphered APDU.
    /// - Parameter expectedSystemTitle: the sender's system title; default ``peerSystemTitle``.
    ///   Service-specific APDUs need it for the IV; a general-ciphering APDU's own title must equal it.
    /// - Returns: the plain APDU, only when it satisfies the policy and its tag verified.
    /// - Throws: `DLMSSecurityError` `.policyViolation` (weaker protection than required),
    ///   `.unexpectedSystemTitle`, `.authenticationFailed` (wrong key, title, counter or tampering),
    ///   `.decodeFailure` (plaintext not the APDU the ciphered tag announces), `.unsupportedMechanism`,
    ///   `.invalidKey` (no dedicated or broadcast key for the APDU).
    public func unprotect(_ apdu: CipheredAPDU, expectedSystemTitle: SystemTitle? = nil) throws -> [UInt8] {
        let (sc, sender, key) = try unprotection(of: apdu, expectedSystemTitle: expectedSystemTitle)
        var plaintext = try SecuritySuite0.unprotect(apdu.payload.bytes, securityControl: sc, systemTitle: sender,
                                                     invocationCounter: apdu.invocationCounter, blockCipherKey: key, authenticationKey: authenticationKey)
        do {
            try Self.checkPlainTag(plaintext.first, of: apdu)
        } catch {
            for i in plaintext.indices { plaintext[i] = 0 }
            throw error
        }
        return plaintext
    }

    /// ``unprotect(_:expectedSystemTitle:counterGuard:)`` to a buffer: the plain APDU is
    /// deciphered straight into it.
    public func unprotectedAPDU(_ apdu: CipheredAPDU, expectedSystemTitle: SystemTitle? = nil,
                                counterGuard: inout InvocationCounterGuard) throws -> ByteBuffer {
        try counterGuard.check(apdu.invocationCounter)
        let (sc, sender, key) = try unprotection(of: apdu, expectedSystemTitle: expectedSystemTitle)
        let count = try SecuritySuite0.unprotectedCount(apdu.payload.bytes.count, sc)
        var plaintext = ByteBufferAllocator().buffer(capacity: count)
        try apdu.payload.bytes.withUnsafeBytes { payload in
            try plaintext.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { output in
                try SecuritySuite0.unprotect(payload, into: output, securityControl: sc, systemTitle: sender,
                                             invocationCounter: apdu.invocationCounter, blockCipherKey: key, authenticationKey: authenticationKey)
                return count
            }
        }
        do {
            try Self.checkPlainTag(plaintext.getInteger(at: plaintext.readerIndex, as: UInt8.self), of: apdu)
        } catch {
            plaintext.withUnsafeMutableReadableBytes { if $0.count > 0 { ConstantTimeAES.wipe($0.baseAddress!, $0.count) } }
            throw error
        }
        try counterGuard.accept(apdu.invocationCounter)
        return plaintext
    }

    /// ``unprotect(_:expectedSystemTitle:)`` with replay protection: the counter is checked
    /// before deciphering and accepted only after the tag verified.
    /// - Throws: also `DLMSSecurityError` `.replayedCounter`; `counterGuard` is unchanged on any error.
    public func unprotect(_ apdu: CipheredAPDU, expectedSystemTitle: SystemTitle? = nil,
                          counterGuard: inout InvocationCounterGuard) throws -> [UInt8] {
        try counterGuard.check(apdu.invocationCounter)
        let plaintext = try unprotect(apdu, expectedSystemTitle: expectedSystemTitle)
        try counterGuard.accept(apdu.invocationCounter)
        return plaintext
    }

    /// Unprotects a received APDU given as bytes: a plain (unciphered) APDU is refused, since
    /// this association requires protection.
    /// - Throws: `DLMSSecurityError` `.policyViolation` for a plain APDU, `.decodeFailure` for a
    ///   malformed ciphered one, and everything ``unprotect(_:expectedSystemTitle:)`` throws.
    public func unprotect(bytes: [UInt8], expectedSystemTitle: SystemTitle? = nil) throws -> [UInt8] {
        try unprotect(Self.decodeCiphered(bytes), expectedSystemTitle: expectedSystemTitle)
    }

    /// ``unprotect(bytes:expectedSystemTitle:)`` with replay protection.
    public func unprotect(bytes: [UInt8], expectedSystemTitle: SystemTitle? = nil,
                          counterGuard: inout InvocationCounterGuard) throws -> [UInt8] {
        try unprotect(Self.decodeCiphered(bytes), expectedSystemTitle: expectedSystemTitle, counterGuard: &counterGuard)
    }

    public var description: String {
        "DLMSCipher(systemTitle: \(systemTitle), peer: \(peerSystemTitle.map(\.description) ?? "unknown"), policy: \(policy), suite \(securitySuite), "
            + "keys redacted\(dedicatedKey == nil ? "" : ", dedicated key set")\(broadcastKey == nil ? "" : ", broadcast key set"))"
    }

    // MARK: - Internals

    static func decodeCiphered(_ bytes: [UInt8]) throws -> CipheredAPDU {
        guard let tag = bytes.first else { throw DLMSSecurityError.decodeFailure("empty APDU") }
        guard CipheredAPDU.isCipheredTag(tag) else {
            throw DLMSSecurityError.policyViolation("plain APDU (tag 0x\(Hex.encode(tag))) where a ciphered one is required")
        }
        var buffer = ByteBuffer(bytes: bytes)
        let apdu: CipheredAPDU
        do {
            apdu = try CipheredAPDU.decode(from: &buffer)
        } catch {
            throw DLMSSecurityError.decodeFailure("malformed ciphered APDU: \(error)")
        }
        guard buffer.readableBytes == 0 else { throw DLMSSecurityError.decodeFailure("\(buffer.readableBytes) byte(s) after the ciphered APDU") }
        return apdu
    }

    /// What unprotecting `apdu` needs once its protection is acceptable: its security control,
    /// the sender's system title and the key.
    private func unprotection(of apdu: CipheredAPDU, expectedSystemTitle: SystemTitle?) throws -> (SecurityControl, SystemTitle, DLMSKey) {
        guard let kind = CipheringKind(cipheredTag: apdu.tag) else {
            throw DLMSSecurityError.decodeFailure("tag 0x\(Hex.encode(apdu.tag)) is not a ciphered APDU")
        }
        let sc = SecurityControl(rawValue: apdu.securityControl)
        guard sc.suite == securitySuite else {
            throw DLMSSecurityError.unsupportedMechanism("APDU uses security suite \(sc.suite), the association suite \(securitySuite)")
        }
        guard policy.isSatisfied(by: sc) else {
            throw DLMSSecurityError.policyViolation("\(sc) does not satisfy the policy '\(policy)'")
        }
        let sender = try senderTitle(of: apdu, kind: kind, expected: expectedSystemTitle ?? peerSystemTitle)
        return (sc, sender, try key(for: kind, sc))
    }

    /// Throws unless the plaintext (of which `first` is the first byte) is the APDU the ciphered
    /// tag announces (any, for general ciphering, but not none).
    private static func checkPlainTag(_ first: UInt8?, of apdu: CipheredAPDU) throws {
        if let expectedTag = CipheringKind.plainTag(forCipheredTag: apdu.tag), first != expectedTag {
            throw DLMSSecurityError.decodeFailure("ciphered tag 0x\(Hex.encode(apdu.tag)) must carry an APDU with tag 0x\(Hex.encode(expectedTag))")
        }
        if first == nil { throw DLMSSecurityError.decodeFailure("ciphered APDU carries no APDU") }
    }

    private func key(for kind: CipheringKind, _ sc: SecurityControl) throws -> DLMSKey {
        if kind.usesDedicatedKey {
            guard let dedicatedKey else { throw DLMSSecurityError.invalidKey("\(kind)-ciphered APDU but no dedicated key is set") }
            return dedicatedKey
        }
        if sc.usesBroadcastKey {
            guard let broadcastKey else { throw DLMSSecurityError.invalidKey("APDU protected with the broadcast key but none is set") }
            return broadcastKey
        }
        return blockCipherKey
    }

    private func senderTitle(of apdu: CipheredAPDU, kind: CipheringKind, expected: SystemTitle?) throws -> SystemTitle {
        guard kind.carriesSystemTitle else {
            guard let expected else { throw DLMSSecurityError.unexpectedSystemTitle("the peer's system title is unknown; cannot form the IV") }
            return expected
        }
        guard let raw = apdu.systemTitle, let carried = try? SystemTitle(raw) else {
            throw DLMSSecurityError.decodeFailure("general ciphering APDU without an 8-byte system title")
        }
        if let expected, expected != carried {
            throw DLMSSecurityError.unexpectedSystemTitle("APDU from system title \(carried), expected \(expected)")
        }
        return carried
    }
}

extension DLMSCipher {
    /// The security suite of an association ciphered with `blockCipherKey` and, with HLS-ECDSA,
    /// signing on `signingCurve` (Green Book 9.2.3.4, Table 30): 0 for AES-128 without signatures,
    /// 1 for AES-128 with P-256, 2 for AES-256 (with P-384 or without signatures). The suite is
    /// the low nibble of every security control byte, and meters of suite 1 or 2 check it.
    /// - Throws: `DLMSSecurityError` `.invalidKey` when the curve belongs to another suite than
    ///   the key (P-384 with a 16-byte key, P-256 with a 32-byte key).
    public static func securitySuite(blockCipherKey: DLMSKey, signingCurve: ECDSACurve?) throws -> UInt8 {
        let suite: UInt8 = blockCipherKey.count == 32 ? 2 : signingCurve == .p256 ? 1 : 0
        if let signingCurve, signingCurve.securitySuite != suite {
            throw DLMSSecurityError.invalidKey(
                "\(signingCurve) signatures belong to security suite \(signingCurve.securitySuite), which ciphers with \(signingCurve == .p256 ? 16 : 32)-byte keys, not \(blockCipherKey.count)-byte ones")
        }
        return suite
    }

    /// Whether an association may use `suite` with `blockCipherKey` and, with HLS-ECDSA,
    /// `signingCurve`: suites 0 and 1 cipher with 16-byte keys, suite 2 with 32-byte keys, and
    /// ECDSA signs on its suite's curve (a meter takes the suite the client's AARQ names).
    public static func allows(suite: UInt8, blockCipherKey: DLMSKey, signingCurve: ECDSACurve?) -> Bool {
        guard suite <= 2, (suite == 2) == (blockCipherKey.count == 32) else { return false }
        return signingCurve.map { $0.securitySuite == suite } ?? true
    }
}
