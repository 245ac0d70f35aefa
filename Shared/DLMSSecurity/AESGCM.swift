import Crypto
import CryptoExtras

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// AES-GCM (NIST SP 800-38D) with a 96-bit IV and a tag cut to any length, as the DLMS security
/// suites use it (12-byte tags, Green Book 9.2.3.3.7.3).
///
/// swift-crypto's `AES.GCM` makes and checks only 16-byte tags, so a 12-byte tag could be checked
/// only by deciphering and sealing again; and each of its calls builds a BoringSSL AEAD context
/// (key schedule, GHASH tables) through generic `DataProtocol` and `Data` code. For the short
/// APDUs of a session that fixed cost is all there is: measured 2.7 µs to protect and 4.8 µs to
/// unprotect a register GET-Response in a hot loop, and 12–28 µs each when, as between two
/// network reads, that code and the runtime's metadata caches have left the CPU caches.
///
/// Texts of up to ``shortTextLimit`` bytes (AAD included) therefore go through one pass of our own
/// constant-time code with the key's schedule and hash subkey expanded once (``DLMSKey``):
/// ``ConstantTimeAES`` in counter mode gives AES(K, J0) — the tag mask — and the keystream from
/// J0 + 1; ``GHASH`` runs over the AAD and the ciphertext; opening compares the truncated tag in
/// constant time and releases the plaintext only when it matched.
///
/// Longer texts are where BoringSSL's AES and GHASH instructions win (our bitsliced AES and
/// GHASH take about 150 ns a block): sealing is one `AES.GCM.seal`; opening deciphers with one
/// `AES._CTR` pass and seals the plaintext again to recompute the tag (`AES._CTR` counts with
/// the whole 128-bit block where GCM increments only the last 32 bits: the same until 2³² − 2
/// blocks, 64 GiB, and longer texts are refused).
enum AESGCM {
    /// The most bytes of AAD and text that take the short path.
    static let shortTextLimit = 512

    /// The largest text: 2³² − 2 blocks, where GCM's 32-bit counter would wrap.
    static let maximumTextLength = (1 << 36) - 32

    /// Encrypts `plaintext` and returns C ‖ T, T cut to `tagLength` bytes (0 to 16).
    static func seal(_ plaintext: UnsafeRawBufferPointer, key: DLMSKey, systemTitle: SystemTitle, invocationCounter: UInt32,
                     associatedData: UnsafeRawBufferPointer, tagLength: Int) throws -> [UInt8] {
        try [UInt8](unsafeUninitializedCapacity: plaintext.count + tagLength) { buffer, initialized in
            try seal(plaintext, into: UnsafeMutableRawBufferPointer(buffer), key: key, systemTitle: systemTitle, invocationCounter: invocationCounter,
                     associatedData: associatedData, tagLength: tagLength)
            initialized = plaintext.count + tagLength
        }
    }

    /// Writes C ‖ T, T cut to `tagLength` bytes (0 to 16), to the first `plaintext.count + tagLength`
    /// bytes of `output` (which must not overlap `plaintext`).
    static func seal(_ plaintext: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, key: DLMSKey, systemTitle: SystemTitle,
                     invocationCounter: UInt32, associatedData: UnsafeRawBufferPointer, tagLength: Int) throws {
        precondition((0...16).contains(tagLength) && output.count >= plaintext.count + tagLength)
        guard plaintext.count <= maximumTextLength else { throw tooLong(plaintext.count) }
        let count = plaintext.count
        if tagLength > 0, count + associatedData.count > shortTextLimit {
            let box = try AES.GCM.seal(plaintext, using: key.symmetricKey, nonce: nonce(systemTitle, invocationCounter), authenticating: associatedData)
            box.ciphertext.withUnsafeBytes { output.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: count) }
            box.tag.withUnsafeBytes { output.baseAddress!.advanced(by: count).copyMemory(from: $0.baseAddress!, byteCount: tagLength) }
            return
        }
        if count > 0 { output.baseAddress!.copyMemory(from: plaintext.baseAddress!, byteCount: count) }
        let text = UnsafeMutableRawBufferPointer(rebasing: output[..<count])
        let mask = counterMode(key, systemTitle: systemTitle, invocationCounter: invocationCounter, text: text, large: count > shortTextLimit)
        if tagLength > 0 {
            let tag = Self.tag(key, associatedData: associatedData, ciphertext: UnsafeRawBufferPointer(text), mask: mask)
            withUnsafeBytes(of: tag) { output.baseAddress!.advanced(by: count).copyMemory(from: $0.baseAddress!, byteCount: tagLength) }
        }
    }

    /// Checks `tag` (1 to 16 bytes) over the AAD and `ciphertext` and deciphers it.
    /// - Returns: the plaintext, or `nil` when the tag does not match (nothing deciphered escapes).
    static func open(_ ciphertext: UnsafeRawBufferPointer, tag expected: UnsafeRawBufferPointer, key: DLMSKey, systemTitle: SystemTitle,
                     invocationCounter: UInt32, associatedData: UnsafeRawBufferPointer) throws -> [UInt8]? {
        var matches = false
        let plaintext = try [UInt8](unsafeUninitializedCapacity: ciphertext.count) { buffer, initialized in
            matches = try open(ciphertext, tag: expected, into: UnsafeMutableRawBufferPointer(buffer), key: key, systemTitle: systemTitle,
                               invocationCounter: invocationCounter, associatedData: associatedData)
            initialized = ciphertext.count
        }
        return matches ? plaintext : nil
    }

    /// Checks `tag` (1 to 16 bytes) over the AAD and `ciphertext` and deciphers it into the first
    /// `ciphertext.count` bytes of `output` (which must not overlap the inputs).
    /// - Returns: whether the tag matched; when it did not, those bytes of `output` are wiped.
    static func open(_ ciphertext: UnsafeRawBufferPointer, tag expected: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer,
                     key: DLMSKey, systemTitle: SystemTitle, invocationCounter: UInt32, associatedData: UnsafeRawBufferPointer) throws -> Bool {
        precondition((1...16).contains(expected.count) && output.count >= ciphertext.count)
        guard ciphertext.count <= maximumTextLength else { throw tooLong(ciphertext.count) }
        let count = ciphertext.count
        let short = count + associatedData.count <= shortTextLimit
        let text = UnsafeMutableRawBufferPointer(rebasing: output[..<count])
        if count > 0 { text.baseAddress!.copyMemory(from: ciphertext.baseAddress!, byteCount: count) }
        // The text's length picks the AES-CTR, the AAD's and the text's the GHASH.
        let mask = counterMode(key, systemTitle: systemTitle, invocationCounter: invocationCounter, text: text, large: count > shortTextLimit)
        let matches: Bool
        if short {
            let tag = Self.tag(key, associatedData: associatedData, ciphertext: ciphertext, mask: mask)
            matches = withUnsafeBytes(of: tag) { equalPrefix($0, expected) }
        } else {
            // Sealing the plaintext again yields the same ciphertext, hence the tag to compare.
            let box = try AES.GCM.seal(UnsafeRawBufferPointer(text), using: key.symmetricKey, nonce: nonce(systemTitle, invocationCounter),
                                       authenticating: associatedData)
            matches = box.tag.withUnsafeBytes { equalPrefix($0, expected) }
        }
        if !matches, count > 0 { ConstantTimeAES.wipe(text.baseAddress!, count) }
        return matches
    }

    /// Enciphers or deciphers `text` without authentication (GCM's counter mode from J0 + 1).
    static func crypt(_ text: UnsafeRawBufferPointer, key: DLMSKey, systemTitle: SystemTitle, invocationCounter: UInt32) throws -> [UInt8] {
        try [UInt8](unsafeUninitializedCapacity: text.count) { buffer, initialized in
            try crypt(text, into: UnsafeMutableRawBufferPointer(buffer), key: key, systemTitle: systemTitle, invocationCounter: invocationCounter)
            initialized = text.count
        }
    }

    /// ``crypt(_:key:systemTitle:invocationCounter:)`` into the first `text.count` bytes of `output`.
    static func crypt(_ text: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, key: DLMSKey, systemTitle: SystemTitle,
                      invocationCounter: UInt32) throws {
        precondition(output.count >= text.count)
        guard text.count <= maximumTextLength else { throw tooLong(text.count) }
        guard text.count > 0 else { return }
        output.baseAddress!.copyMemory(from: text.baseAddress!, byteCount: text.count)
        _ = counterMode(key, systemTitle: systemTitle, invocationCounter: invocationCounter,
                        text: UnsafeMutableRawBufferPointer(rebasing: output[..<text.count]), large: text.count > shortTextLimit)
    }

    // MARK: - Internals

    /// AES(K, J0) (in memory order) and `text` XORed in place with AES(K, J0 + 1), AES(K, J0 + 2), …
    /// where J0 = system title ‖ invocation counter ‖ 00000001.
    private static func counterMode(_ key: DLMSKey, systemTitle: SystemTitle, invocationCounter: UInt32,
                                    text: UnsafeMutableRawBufferPointer, large: Bool) -> (UInt64, UInt64) {
        if large { return largeCounterMode(key, systemTitle: systemTitle, invocationCounter: invocationCounter, text: text) }
        let aes = key.aes
        // The counter blocks as ConstantTimeAES takes them: words loaded little-endian.
        let title = systemTitle.bytes
        let p0 = UInt32(title[0]) | UInt32(title[1]) << 8 | UInt32(title[2]) << 16 | UInt32(title[3]) << 24
        let p1 = UInt32(title[4]) | UInt32(title[5]) << 8 | UInt32(title[6]) << 16 | UInt32(title[7]) << 24
        let p2 = invocationCounter.byteSwapped
        var mask: (UInt64, UInt64) = (0, 0)
        var keystream: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
        var counter: UInt32 = 1
        // Offsets in the keystream, whose first block is the mask.
        var offset = 0
        let total = 16 + text.count
        while offset < total {
            var b = ConstantTimeAES.Blocks(
                w0: p0, w1: p1, w2: p2, w3: counter.byteSwapped,
                w4: p0, w5: p1, w6: p2, w7: (counter &+ 1).byteSwapped,
                w8: p0, w9: p1, w10: p2, w11: (counter &+ 2).byteSwapped,
                w12: p0, w13: p1, w14: p2, w15: (counter &+ 3).byteSwapped)
            aes.encrypt(&b)
            withUnsafeMutableBytes(of: &keystream) { k in
                b.store(into: k)
                var start = 0
                if offset == 0 {
                    mask = (k.loadUnaligned(as: UInt64.self), k.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
                    start = 16
                }
                let end = min(64, total - offset)
                var i = start
                while i + 8 <= end {
                    let at = offset + i - 16
                    text.storeBytes(of: text.loadUnaligned(fromByteOffset: at, as: UInt64.self) ^ k.loadUnaligned(fromByteOffset: i, as: UInt64.self),
                                    toByteOffset: at, as: UInt64.self)
                    i += 8
                }
                while i < end {
                    text[offset + i - 16] ^= k[i]
                    i += 1
                }
            }
            b = ConstantTimeAES.Blocks()
            offset += 64
            counter &+= 4
        }
        withUnsafeMutableBytes(of: &keystream) { ConstantTimeAES.wipe($0.baseAddress!, $0.count) }
        return mask
    }

    /// ``counterMode`` through swift-crypto's AES-CTR, for long texts.
    private static func largeCounterMode(_ key: DLMSKey, systemTitle: SystemTitle, invocationCounter: UInt32,
                                         text: UnsafeMutableRawBufferPointer) -> (UInt64, UInt64) {
        var input = [UInt8](repeating: 0, count: 16 + text.count)
        if text.count > 0 { input.withUnsafeMutableBytes { $0.baseAddress!.advanced(by: 16).copyMemory(from: text.baseAddress!, byteCount: text.count) } }
        var counterBlock = SecuritySuite0.initializationVector(systemTitle: systemTitle, invocationCounter: invocationCounter)
        counterBlock.append(contentsOf: [0, 0, 0, 1] as [UInt8])
        // Neither throws: the key has a valid AES length and the counter block 16 bytes.
        var keystreamed = try! AES._CTR.encrypt(input, using: key.symmetricKey, nonce: AES._CTR.Nonce(nonceBytes: counterBlock))
        input.withUnsafeMutableBytes { ConstantTimeAES.wipe($0.baseAddress!, $0.count) }
        defer { keystreamed.resetBytes(in: 0..<keystreamed.count) }
        return keystreamed.withUnsafeBytes { bytes in
            if text.count > 0 { text.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[16...])) }
            return (bytes.loadUnaligned(as: UInt64.self), bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        }
    }

    /// T = GHASH(A, C) ⊕ AES(K, J0), as 16 bytes in memory order.
    private static func tag(_ key: DLMSKey, associatedData: UnsafeRawBufferPointer, ciphertext: UnsafeRawBufferPointer,
                            mask: (UInt64, UInt64)) -> (UInt64, UInt64) {
        var ghash = GHASH(hashSubkey: key.aes.hashSubkey)
        ghash.update(associatedData)
        ghash.update(ciphertext)
        let s = ghash.finalize(associatedDataCount: associatedData.count, textCount: ciphertext.count)
        return (s.high.bigEndian ^ mask.0, s.low.bigEndian ^ mask.1)
    }

    /// Whether `computed` starts with `expected`, in time that depends on the lengths only.
    private static func equalPrefix(_ computed: UnsafeRawBufferPointer, _ expected: UnsafeRawBufferPointer) -> Bool {
        var difference: UInt8 = 0
        for i in 0..<expected.count { difference |= computed[i] ^ expected[i] }
        return difference == 0
    }

    private static func nonce(_ systemTitle: SystemTitle, _ invocationCounter: UInt32) throws -> AES.GCM.Nonce {
        try AES.GCM.Nonce(data: SecuritySuite0.initializationVector(systemTitle: systemTitle, invocationCounter: invocationCounter))
    }

    private static func tooLong(_ count: Int) -> DLMSSecurityError {
        DLMSSecurityError.invalidArgument("\(count) bytes exceed GCM's \(maximumTextLength) per invocation")
    }
}
