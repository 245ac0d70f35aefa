import COSEM
import Crypto
import CryptoExtras
@testable import DLMSSecurity
import Testing
import TestSupport

/// The bitsliced AES (``ConstantTimeAES``) against FIPS 197's examples, an S-box computed from
/// its definition, and swift-crypto's AES block function for random keys and blocks.
@Suite("Constant-time AES against FIPS 197 and swift-crypto")
struct ConstantTimeAESTests {
    /// FIPS 197 Appendix C.1–C.3: plaintext 00112233…FF under the keys 000102….
    static let fips197: [(key: String, cipher: String)] = [
        ("000102030405060708090A0B0C0D0E0F", "69C4E0D86A7B0430D8CDB78070B4C55A"),
        ("000102030405060708090A0B0C0D0E0F1011121314151617", "DDA97CA4864CDFE06EAF70A0EC0D7191"),
        ("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F", "8EA2B7CA516745BFEAFC49904B496089"),
    ]

    @Test("FIPS 197 Appendix C", arguments: fips197)
    func fipsExample(_ v: (key: String, cipher: String)) {
        let aes = hexBytes(v.key).withUnsafeBytes { ConstantTimeAES(key: $0) }
        let plain = hexBytes("00112233445566778899AABBCCDDEEFF")
        #expect(Hex.encode(encrypt(aes, [plain, plain, plain, plain]).flatMap { $0 }) == String(repeating: v.cipher, count: 4))
    }

    @Test("the bitsliced S-box is the AES S-box for all 256 bytes")
    func sbox() {
        for byte in 0...255 {
            let word = UInt32(byte) * 0x0101_0101
            #expect(ConstantTimeAES.subWord(word) == UInt32(Self.referenceSBox(UInt8(byte))) * 0x0101_0101, "S(\(byte))")
        }
    }

    @Test("random keys and four different blocks at a time equal swift-crypto's AES")
    func randomAgainstSwiftCrypto() throws {
        var random = SeededGenerator(seed: 0x4145_5343)
        for keyLength in [16, 24, 32] {
            for _ in 0..<100 {
                let keyBytes = (0..<keyLength).map { _ in UInt8.random(in: 0...255, using: &random) }
                let aes = keyBytes.withUnsafeBytes { ConstantTimeAES(key: $0) }
                let blocks = (0..<4).map { _ in (0..<16).map { _ in UInt8.random(in: 0...255, using: &random) } }
                let encrypted = encrypt(aes, blocks)
                for (block, result) in zip(blocks, encrypted) {
                    var expected = block
                    try AES.permute(&expected, key: SymmetricKey(data: keyBytes))
                    #expect(result == expected)
                }
                var zero = [UInt8](repeating: 0, count: 16)
                try AES.permute(&zero, key: SymmetricKey(data: keyBytes))
                let h = aes.hashSubkey
                #expect(zero == withUnsafeBytes(of: (h.high.bigEndian, h.low.bigEndian)) { Array($0) })
                #expect(aes.withKeyBytes { Array($0) } == keyBytes)
            }
        }
    }

    // MARK: - Helpers

    func encrypt(_ aes: ConstantTimeAES, _ blocks: [[UInt8]]) -> [[UInt8]] {
        let input = blocks.flatMap { $0 }
        var words: [UInt32] = []
        for i in 0..<16 {
            var word: UInt32 = 0
            for j in 0..<4 { word |= UInt32(input[4 * i + j]) << (8 * UInt32(j)) }
            words.append(word)
        }
        var b = ConstantTimeAES.Blocks(w0: words[0], w1: words[1], w2: words[2], w3: words[3], w4: words[4], w5: words[5], w6: words[6], w7: words[7],
                                       w8: words[8], w9: words[9], w10: words[10], w11: words[11], w12: words[12], w13: words[13], w14: words[14], w15: words[15])
        aes.encrypt(&b)
        words = [b.w0, b.w1, b.w2, b.w3, b.w4, b.w5, b.w6, b.w7, b.w8, b.w9, b.w10, b.w11, b.w12, b.w13, b.w14, b.w15]
        var output: [UInt8] = []
        for w in words {
            for j in 0..<4 { output.append(UInt8(truncatingIfNeeded: w >> (8 * UInt32(j)))) }
        }
        return (0..<4).map { Array(output[(16 * $0)..<(16 * $0 + 16)]) }
    }

    /// FIPS 197 §5.1.1: the multiplicative inverse in GF(2⁸), then the affine transformation.
    static func referenceSBox(_ x: UInt8) -> UInt8 {
        func multiply(_ a: UInt8, _ b: UInt8) -> UInt8 {
            var a = a, b = b, p: UInt8 = 0
            for _ in 0..<8 {
                if b & 1 != 0 { p ^= a }
                let carry = a & 0x80
                a <<= 1
                if carry != 0 { a ^= 0x1B }
                b >>= 1
            }
            return p
        }
        var inverse: UInt8 = 0
        if x != 0 { inverse = (1...255).map(UInt8.init).first { multiply(x, $0) == 1 }! }
        func rotl(_ v: UInt8, _ n: Int) -> UInt8 { (v << n) | (v >> (8 - n)) }
        return inverse ^ rotl(inverse, 1) ^ rotl(inverse, 2) ^ rotl(inverse, 3) ^ rotl(inverse, 4) ^ 0x63
    }
}
