import Crypto
import Foundation

/// Security suite 0: AES-GCM-128 with 12-byte tags (Green Book 9.2.3.3.7 and 9.2.7.2.4).
///
/// - IV = system title of the sender (8) ‖ invocation counter (4, big-endian).
/// - Authentication only (SC bit 4): the payload is P ‖ T, T = GMAC over A = SC ‖ AK ‖ P.
/// - Encryption only (SC bit 5): the payload is C, no tag.
/// - Both: the payload is C ‖ T, GCM over P with A = SC ‖ AK.
///
/// swift-crypto's `AES.GCM` only makes and checks 16-byte tags. Sealing gives the full tag, of
/// which DLMS keeps the first 12 bytes. Opening relies on GCM encryption being XOR with the
/// keystream AES(K, IV ‖ 00000002), AES(K, IV ‖ 00000003), …: sealing the ciphertext with the same
/// nonce yields the plaintext, which is then sealed again with the AAD so the first 12 bytes of
/// its tag can be compared (constant time) with the received tag. The recovered plaintext is
/// released only after the tag matched; on a mismatch it is zeroed and dropped.
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
        let nonce = try nonce(systemTitle, invocationCounter)
        switch (securityControl.isAuthenticated, securityControl.isEncrypted) {
        case (true, true):
            let box = try seal(plaintext, blockCipherKey, nonce, aad: associatedData(securityControl, authenticationKey))
            var payload: [UInt8] = []
            payload.reserveCapacity(plaintext.count + tagLength)
            payload.append(contentsOf: box.ciphertext)
            payload.append(contentsOf: box.tag.prefix(tagLength))
            return payload
        case (true, false):
            let box = try seal([], blockCipherKey, nonce, aad: associatedData(securityControl, authenticationKey, plaintext))
            var payload = plaintext
            payload.append(contentsOf: box.tag.prefix(tagLength))
            return payload
        case (false, true):
            return Array(try seal(plaintext, blockCipherKey, nonce, aad: []).ciphertext)
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
        let nonce = try nonce(systemTitle, invocationCounter)
        switch (securityControl.isAuthenticated, securityControl.isEncrypted) {
        case (true, true):
            guard payload.count >= tagLength else { throw DLMSSecurityError.decodeFailure("ciphered payload of \(payload.count) bytes is shorter than the tag") }
            let ciphertext = payload[..<(payload.count - tagLength)]
            let received = payload[(payload.count - tagLength)...]
            var plaintext = Array(try seal(ciphertext, blockCipherKey, nonce, aad: []).ciphertext)
            let box = try seal(plaintext, blockCipherKey, nonce, aad: associatedData(securityControl, authenticationKey))
            guard constantTimeEquals(box.tag.prefix(tagLength), received) else {
                for i in plaintext.indices { plaintext[i] = 0 }
                throw DLMSSecurityError.authenticationFailed("authentication tag does not verify (\(securityControl), IC \(invocationCounter))")
            }
            return plaintext
        case (true, false):
            guard payload.count >= tagLength else { throw DLMSSecurityError.decodeFailure("authenticated payload of \(payload.count) bytes is shorter than the tag") }
            let plaintext = Array(payload[..<(payload.count - tagLength)])
            let received = payload[(payload.count - tagLength)...]
            let box = try seal([], blockCipherKey, nonce, aad: associatedData(securityControl, authenticationKey, plaintext))
            guard constantTimeEquals(box.tag.prefix(tagLength), received) else {
                throw DLMSSecurityError.authenticationFailed("authentication tag does not verify (\(securityControl), IC \(invocationCounter))")
            }
            return plaintext
        case (false, true):
            return Array(try seal(payload, blockCipherKey, nonce, aad: []).ciphertext)
        case (false, false):
            return payload
        }
    }

    /// The 12-byte GMAC tag over SC ‖ AK ‖ `data` (HLS mechanism 5's T, Green Book 9.2.7.4.2.3).
    public static func gmac(_ data: [UInt8], securityControl: SecurityControl = .authenticated, systemTitle: SystemTitle,
                            invocationCounter: UInt32, blockCipherKey: DLMSKey, authenticationKey: DLMSKey) throws -> [UInt8] {
        try check(securityControl, blockCipherKey, authenticationKey)
        let box = try seal([], blockCipherKey, try nonce(systemTitle, invocationCounter), aad: associatedData(securityControl, authenticationKey, data))
        return Array(box.tag.prefix(tagLength))
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

    private static func nonce(_ systemTitle: SystemTitle, _ invocationCounter: UInt32) throws -> AES.GCM.Nonce {
        try AES.GCM.Nonce(data: initializationVector(systemTitle: systemTitle, invocationCounter: invocationCounter))
    }

    /// SC ‖ AK, the AAD prefix of every authenticated mode, with SC exactly as sent.
    private static func associatedData(_ sc: SecurityControl, _ ak: DLMSKey, _ data: [UInt8] = []) -> [UInt8] {
        var aad: [UInt8] = []
        aad.reserveCapacity(1 + ak.count + data.count)
        aad.append(sc.rawValue)
        ak.withUnsafeBytes { aad.append(contentsOf: $0) }
        aad.append(contentsOf: data)
        return aad
    }

    private static func seal(_ message: some DataProtocol, _ key: DLMSKey, _ nonce: AES.GCM.Nonce, aad: [UInt8]) throws -> AES.GCM.SealedBox {
        try AES.GCM.seal(message, using: key.symmetricKey, nonce: nonce, authenticating: aad)
    }
}
