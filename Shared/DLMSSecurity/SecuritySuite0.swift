/// Security suite 0: AES-GCM-128 with 12-byte tags (Green Book 9.2.3.3.7 and 9.2.7.2.4).
///
/// - IV = system title of the sender (8) ‖ invocation counter (4, big-endian).
/// - Authentication only (SC bit 4): the payload is P ‖ T, T = GMAC over A = SC ‖ AK ‖ P.
/// - Encryption only (SC bit 5): the payload is C, no tag.
/// - Both: the payload is C ‖ T, GCM over P with A = SC ‖ AK.
///
/// The AES-GCM is ``AESGCM``: one pass that checks the truncated tag directly (swift-crypto's
/// `AES.GCM` handles only 16-byte tags). A received plaintext is released only after its tag
/// matched; on a mismatch it is zeroed and dropped.
///
/// Suites 1 (AES-GCM-128) and 2 (AES-GCM-256) cipher APDUs the same way (with 32-byte keys for
/// suite 2), so these functions accept the suite id of the security control byte as given;
/// the key agreement (ECDH) and signatures (ECDSA) of suites 1 and 2 are not implemented.
public enum SecuritySuite0 {
    /// The suite id in the security control byte.
    public static let suiteID: UInt8 = 0
    /// Authentication tag length in bytes (Green Book 9.2.3.3.7.3).
    public static let tagLength = 12

    /// The key length of a security suite's AES-GCM: 16 bytes for suites 0 and 1, 32 for suite 2;
    /// `nil` for other suite ids.
    public static func keyLength(suite: UInt8) -> Int? {
        switch suite {
        case 0, 1: 16
        case 2: 32
        default: nil
        }
    }

    /// IV = system title ‖ invocation counter (big-endian), 12 bytes.
    public static func initializationVector(systemTitle: SystemTitle, invocationCounter: UInt32) -> [UInt8] {
        var iv = systemTitle.bytes
        iv.reserveCapacity(12)
        withUnsafeBytes(of: invocationCounter.bigEndian) { iv.append(contentsOf: $0) }
        return iv
    }

    /// Protects `plaintext` as `securityControl` says and returns what follows the security
    /// header: P ‖ T, C, or C ‖ T.
    /// - Parameters:
    ///   - systemTitle: the sender's system title (the IV's first 8 bytes).
    ///   - blockCipherKey: EK (global unicast, broadcast or dedicated, as the APDU kind requires).
    ///   - authenticationKey: AK, part of the AAD.
    /// - Throws: `DLMSSecurityError` `.invalidKey` for keys that are not 16 bytes,
    ///   `.unsupportedMechanism` for another suite or compression.
    public static func protect(_ plaintext: [UInt8], securityControl: SecurityControl, systemTitle: SystemTitle,
                               invocationCounter: UInt32, blockCipherKey: DLMSKey, authenticationKey: DLMSKey) throws -> [UInt8] {
        try check(securityControl, blockCipherKey, authenticationKey)
        switch (securityControl.isAuthenticated, securityControl.isEncrypted) {
        case (true, true):
            return try plaintext.withUnsafeBytes { p in
                try withAssociatedData(securityControl, authenticationKey) { a in
                    try AESGCM.seal(p, key: blockCipherKey, systemTitle: systemTitle, invocationCounter: invocationCounter,
                                    associatedData: a, tagLength: tagLength)
                }
            }
        case (true, false):
            var payload = plaintext
            payload.append(contentsOf: try gmac(plaintext, securityControl: securityControl, systemTitle: systemTitle, invocationCounter: invocationCounter,
                                                blockCipherKey: blockCipherKey, authenticationKey: authenticationKey))
            return payload
        case (false, true):
            return try plaintext.withUnsafeBytes { p in
                try AESGCM.crypt(p, key: blockCipherKey, systemTitle: systemTitle, invocationCounter: invocationCounter)
            }
        case (false, false):
            return plaintext
        }
    }

    /// Checks and removes the protection of a payload (what follows the security header).
    /// - Returns: the plaintext APDU, only when the tag verified (or, for encryption only, always).
    /// - Throws: `DLMSSecurityError` `.authenticationFailed` when the tag does not verify (wrong
    ///   key, system title, counter or tampered bytes), `.decodeFailure` when the payload is
    ///   shorter than the tag, `.invalidKey`, `.unsupportedMechanism`.
    public static func unprotect(_ payload: [UInt8], securityControl: SecurityControl, systemTitle: SystemTitle,
                                 invocationCounter: UInt32, blockCipherKey: DLMSKey, authenticationKey: DLMSKey) throws -> [UInt8] {
        try check(securityControl, blockCipherKey, authenticationKey)
        switch (securityControl.isAuthenticated, securityControl.isEncrypted) {
        case (true, true):
            guard payload.count >= tagLength else { throw DLMSSecurityError.decodeFailure("ciphered payload of \(payload.count) bytes is shorter than the tag") }
            let plaintext = try payload.withUnsafeBytes { bytes in
                try withAssociatedData(securityControl, authenticationKey) { a in
                    try AESGCM.open(UnsafeRawBufferPointer(rebasing: bytes[..<(bytes.count - tagLength)]),
                                    tag: UnsafeRawBufferPointer(rebasing: bytes[(bytes.count - tagLength)...]),
                                    key: blockCipherKey, systemTitle: systemTitle, invocationCounter: invocationCounter, associatedData: a)
                }
            }
            guard let plaintext else {
                throw DLMSSecurityError.authenticationFailed("authentication tag does not verify (\(securityControl), IC \(invocationCounter))")
            }
            return plaintext
        case (true, false):
            guard payload.count >= tagLength else { throw DLMSSecurityError.decodeFailure("authenticated payload of \(payload.count) bytes is shorter than the tag") }
            var aad = associatedData(securityControl, authenticationKey, payload[..<(payload.count - tagLength)])
            defer { aad.withUnsafeMutableBytes { ConstantTimeAES.wipe($0.baseAddress!, $0.count) } }
            let verified = try payload.withUnsafeBytes { bytes in
                try aad.withUnsafeBytes { a in
                    try AESGCM.open(UnsafeRawBufferPointer(start: nil, count: 0), tag: UnsafeRawBufferPointer(rebasing: bytes[(bytes.count - tagLength)...]),
                                    key: blockCipherKey, systemTitle: systemTitle, invocationCounter: invocationCounter, associatedData: a)
                }
            }
            guard verified != nil else {
                throw DLMSSecurityError.authenticationFailed("authentication tag does not verify (\(securityControl), IC \(invocationCounter))")
            }
            return Array(payload[..<(payload.count - tagLength)])
        case (false, true):
            return try payload.withUnsafeBytes { c in
                try AESGCM.crypt(c, key: blockCipherKey, systemTitle: systemTitle, invocationCounter: invocationCounter)
            }
        case (false, false):
            return payload
        }
    }

    /// The 12-byte GMAC tag over SC ‖ AK ‖ `data` (HLS mechanism 5's T, Green Book 9.2.7.4.2.3).
    public static func gmac(_ data: [UInt8], securityControl: SecurityControl = .authenticated, systemTitle: SystemTitle,
                            invocationCounter: UInt32, blockCipherKey: DLMSKey, authenticationKey: DLMSKey) throws -> [UInt8] {
        try check(securityControl, blockCipherKey, authenticationKey)
        var aad = associatedData(securityControl, authenticationKey, data[...])
        defer { aad.withUnsafeMutableBytes { ConstantTimeAES.wipe($0.baseAddress!, $0.count) } }
        return try aad.withUnsafeBytes { a in
            try AESGCM.seal(UnsafeRawBufferPointer(start: nil, count: 0), key: blockCipherKey, systemTitle: systemTitle,
                            invocationCounter: invocationCounter, associatedData: a, tagLength: tagLength)
        }
    }

    // MARK: - Internals

    private static func check(_ sc: SecurityControl, _ ek: DLMSKey, _ ak: DLMSKey) throws {
        guard let keyLength = keyLength(suite: sc.suite) else {
            throw DLMSSecurityError.unsupportedMechanism("security suite \(sc.suite) (suites 0, 1 and 2 are defined)")
        }
        guard !sc.isCompressed else { throw DLMSSecurityError.unsupportedMechanism("compressed APDUs (\(sc))") }
        guard ek.count == keyLength, ak.count == keyLength else {
            throw DLMSSecurityError.invalidKey("security suite \(sc.suite) uses \(keyLength)-byte keys")
        }
    }

    /// Calls `body` with SC ‖ AK, the AAD of authenticated encryption, in a stack buffer that is
    /// wiped afterwards (AK is a key).
    private static func withAssociatedData<R>(_ sc: SecurityControl, _ ak: DLMSKey, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withUnsafeTemporaryAllocation(byteCount: 1 + ak.count, alignment: 8) { buffer in
            defer { ConstantTimeAES.wipe(buffer.baseAddress!, buffer.count) }
            buffer[0] = sc.rawValue
            ak.aes.withKeyBytes { UnsafeMutableRawBufferPointer(rebasing: buffer[1...]).copyMemory(from: $0) }
            return try body(UnsafeRawBufferPointer(buffer))
        }
    }

    /// SC ‖ AK ‖ `data`, the AAD of authentication only and of GMAC, with SC exactly as sent.
    private static func associatedData(_ sc: SecurityControl, _ ak: DLMSKey, _ data: ArraySlice<UInt8>) -> [UInt8] {
        var aad: [UInt8] = []
        aad.reserveCapacity(1 + ak.count + data.count)
        aad.append(sc.rawValue)
        ak.aes.withKeyBytes { aad.append(contentsOf: $0) }
        aad.append(contentsOf: data)
        return aad
    }
}
