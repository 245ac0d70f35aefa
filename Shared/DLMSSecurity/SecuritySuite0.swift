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
/// of their public-key parts only the ECDSA of HLS mechanism 7 is implemented (``DLMSSigningKey``),
/// not the key agreement (ECDH) or signed general-ciphering.
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
        let count = protectedCount(plaintext.count, securityControl)
        return try plaintext.withUnsafeBytes { p in
            try [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
                try protect(p, into: UnsafeMutableRawBufferPointer(buffer), securityControl: securityControl, systemTitle: systemTitle,
                            invocationCounter: invocationCounter, blockCipherKey: blockCipherKey, authenticationKey: authenticationKey)
                initialized = count
            }
        }
    }

    /// The payload length ``protect(_:securityControl:systemTitle:invocationCounter:blockCipherKey:authenticationKey:)``
    /// makes of `plaintextCount` bytes: with a tag when authenticated.
    static func protectedCount(_ plaintextCount: Int, _ sc: SecurityControl) -> Int {
        plaintextCount + (sc.isAuthenticated ? tagLength : 0)
    }

    /// ``protect(_:securityControl:systemTitle:invocationCounter:blockCipherKey:authenticationKey:)``
    /// into the first ``protectedCount(_:_:)`` bytes of `output`.
    static func protect(_ plaintext: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, securityControl: SecurityControl,
                        systemTitle: SystemTitle, invocationCounter: UInt32, blockCipherKey: DLMSKey, authenticationKey: DLMSKey) throws {
        try check(securityControl, blockCipherKey, authenticationKey)
        let count = plaintext.count
        switch (securityControl.isAuthenticated, securityControl.isEncrypted) {
        case (true, true):
            try withAssociatedData(securityControl, authenticationKey) { a in
                try AESGCM.seal(plaintext, into: output, key: blockCipherKey, systemTitle: systemTitle, invocationCounter: invocationCounter,
                                associatedData: a, tagLength: tagLength)
            }
        case (true, false):
            if count > 0 { output.baseAddress!.copyMemory(from: plaintext.baseAddress!, byteCount: count) }
            var aad = associatedData(securityControl, authenticationKey, plaintext)
            defer { aad.withUnsafeMutableBytes { ConstantTimeAES.wipe($0.baseAddress!, $0.count) } }
            try aad.withUnsafeBytes { a in
                try AESGCM.seal(UnsafeRawBufferPointer(start: nil, count: 0), into: UnsafeMutableRawBufferPointer(rebasing: output[count...]),
                                key: blockCipherKey, systemTitle: systemTitle, invocationCounter: invocationCounter, associatedData: a, tagLength: tagLength)
            }
        case (false, true):
            try AESGCM.crypt(plaintext, into: output, key: blockCipherKey, systemTitle: systemTitle, invocationCounter: invocationCounter)
        case (false, false):
            if count > 0 { output.baseAddress!.copyMemory(from: plaintext.baseAddress!, byteCount: count) }
        }
    }

    /// Checks and removes the protection of a payload (what follows the security header).
    /// - Returns: the plaintext APDU, only when the tag verified (or, for encryption only, always).
    /// - Throws: `DLMSSecurityError` `.authenticationFailed` when the tag does not verify (wrong
    ///   key, system title, counter or tampered bytes), `.decodeFailure` when the payload is
    ///   shorter than the tag, `.invalidKey`, `.unsupportedMechanism`.
    public static func unprotect(_ payload: [UInt8], securityControl: SecurityControl, systemTitle: SystemTitle,
                                 invocationCounter: UInt32, blockCipherKey: DLMSKey, authenticationKey: DLMSKey) throws -> [UInt8] {
        let count = try unprotectedCount(payload.count, securityControl)
        return try payload.withUnsafeBytes { p in
            try [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
                try unprotect(p, into: UnsafeMutableRawBufferPointer(buffer), securityControl: securityControl, systemTitle: systemTitle,
                              invocationCounter: invocationCounter, blockCipherKey: blockCipherKey, authenticationKey: authenticationKey)
                initialized = count
            }
        }
    }

    /// The plaintext length of a payload of `payloadCount` bytes.
    /// - Throws: `DLMSSecurityError` `.decodeFailure` when an authenticated payload is shorter than the tag.
    static func unprotectedCount(_ payloadCount: Int, _ sc: SecurityControl) throws -> Int {
        guard sc.isAuthenticated else { return payloadCount }
        guard payloadCount >= tagLength else {
            throw DLMSSecurityError.decodeFailure("\(sc.isEncrypted ? "ciphered" : "authenticated") payload of \(payloadCount) bytes is shorter than the tag")
        }
        return payloadCount - tagLength
    }

    /// ``unprotect(_:securityControl:systemTitle:invocationCounter:blockCipherKey:authenticationKey:)``
    /// into the first ``unprotectedCount(_:_:)`` bytes of `output`; wiped when the tag does not verify.
    static func unprotect(_ payload: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, securityControl: SecurityControl,
                          systemTitle: SystemTitle, invocationCounter: UInt32, blockCipherKey: DLMSKey, authenticationKey: DLMSKey) throws {
        try check(securityControl, blockCipherKey, authenticationKey)
        let count = try unprotectedCount(payload.count, securityControl)
        let verified: Bool
        switch (securityControl.isAuthenticated, securityControl.isEncrypted) {
        case (true, true):
            verified = try withAssociatedData(securityControl, authenticationKey) { a in
                try AESGCM.open(UnsafeRawBufferPointer(rebasing: payload[..<count]), tag: UnsafeRawBufferPointer(rebasing: payload[count...]),
                                into: output, key: blockCipherKey, systemTitle: systemTitle, invocationCounter: invocationCounter, associatedData: a)
            }
        case (true, false):
            var aad = associatedData(securityControl, authenticationKey, UnsafeRawBufferPointer(rebasing: payload[..<count]))
            defer { aad.withUnsafeMutableBytes { ConstantTimeAES.wipe($0.baseAddress!, $0.count) } }
            verified = try aad.withUnsafeBytes { a in
                try AESGCM.open(UnsafeRawBufferPointer(start: nil, count: 0), tag: UnsafeRawBufferPointer(rebasing: payload[count...]),
                                into: UnsafeMutableRawBufferPointer(start: nil, count: 0), key: blockCipherKey, systemTitle: systemTitle,
                                invocationCounter: invocationCounter, associatedData: a)
            }
            if verified, count > 0 { output.baseAddress!.copyMemory(from: payload.baseAddress!, byteCount: count) }
        case (false, true):
            try AESGCM.crypt(payload, into: output, key: blockCipherKey, systemTitle: systemTitle, invocationCounter: invocationCounter)
            verified = true
        case (false, false):
            if count > 0 { output.baseAddress!.copyMemory(from: payload.baseAddress!, byteCount: count) }
            verified = true
        }
        guard verified else {
            throw DLMSSecurityError.authenticationFailed("authentication tag does not verify (\(securityControl), IC \(invocationCounter))")
        }
    }

    /// The 12-byte GMAC tag over SC ‖ AK ‖ `data` (HLS mechanism 5's T, Green Book 9.2.7.4.2.3).
    public static func gmac(_ data: [UInt8], securityControl: SecurityControl = .authenticated, systemTitle: SystemTitle,
                            invocationCounter: UInt32, blockCipherKey: DLMSKey, authenticationKey: DLMSKey) throws -> [UInt8] {
        try check(securityControl, blockCipherKey, authenticationKey)
        var aad = data.withUnsafeBytes { associatedData(securityControl, authenticationKey, $0) }
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
    private static func associatedData(_ sc: SecurityControl, _ ak: DLMSKey, _ data: UnsafeRawBufferPointer) -> [UInt8] {
        var aad: [UInt8] = []
        aad.reserveCapacity(1 + ak.count + data.count)
        aad.append(sc.rawValue)
        ak.aes.withKeyBytes { aad.append(contentsOf: $0) }
        aad.append(contentsOf: data)
        return aad
    }
}
