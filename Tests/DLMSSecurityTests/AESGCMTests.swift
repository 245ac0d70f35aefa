import COSEM
import Crypto
@testable import DLMSSecurity
import Foundation
import Testing
import TestSupport

/// Our GCM (``AESGCM``, ``GHASH``) against swift-crypto's `AES.GCM` and the GCM specification's
/// test cases: random keys (16 and 32 bytes), IVs, AAD and text lengths on both sides of the
/// Swift-GHASH limit, every tag length, and refusals of any flipped bit.
@Suite("AES-GCM with truncated tags against swift-crypto")
struct AESGCMTests {
    /// Test cases 1–4 and 16 of McGrew and Viega, "The Galois/Counter Mode of Operation (GCM)",
    /// Appendix B (also NIST's GCM test vectors). Checked against swift-crypto below as well.
    static let specificationCases: [(key: String, iv: String, plain: String, aad: String, cipher: String, tag: String)] = [
        ("00000000000000000000000000000000", "000000000000000000000000", "", "", "", "58E2FCCEFA7E3061367F1D57A4E7455A"),
        ("00000000000000000000000000000000", "000000000000000000000000", "00000000000000000000000000000000", "",
         "0388DACE60B6A392F328C2B971B2FE78", "AB6E47D42CEC13BDF53A67B21257BDDF"),
        ("FEFFE9928665731C6D6A8F9467308308", "CAFEBABEFACEDBADDECAF888",
         "D9313225F88406E5A55909C5AFF5269A86A7A9531534F7DA2E4C303D8A318A721C3C0C95956809532FCF0E2449A6B525B16AEDF5AA0DE657BA637B391AAFD255", "",
         "42831EC2217774244B7221B784D0D49CE3AA212F2C02A4E035C17E2329ACA12E21D514B25466931C7D8F6A5AAC84AA051BA30B396A0AAC973D58E091473F5985",
         "4D5C2AF327CD64A62CF35ABD2BA6FAB4"),
        ("FEFFE9928665731C6D6A8F9467308308", "CAFEBABEFACEDBADDECAF888",
         "D9313225F88406E5A55909C5AFF5269A86A7A9531534F7DA2E4C303D8A318A721C3C0C95956809532FCF0E2449A6B525B16AEDF5AA0DE657BA637B39",
         "FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2",
         "42831EC2217774244B7221B784D0D49CE3AA212F2C02A4E035C17E2329ACA12E21D514B25466931C7D8F6A5AAC84AA051BA30B396A0AAC973D58E091",
         "5BC94FBC3221A5DB94FAE95AE7121A47"),
        ("FEFFE9928665731C6D6A8F9467308308FEFFE9928665731C6D6A8F9467308308", "CAFEBABEFACEDBADDECAF888",
         "D9313225F88406E5A55909C5AFF5269A86A7A9531534F7DA2E4C303D8A318A721C3C0C95956809532FCF0E2449A6B525B16AEDF5AA0DE657BA637B39",
         "FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2",
         "522DC1F099567D07F47F37A32A84427D643A8CDCBFE5C0C97598A2BD2555D1AA8CB08E48590DBB3DA7B08B1056828838C5F61E6393BA7A0ABCC9F662",
         "76FC6ECE0F4E1768CDDF8853BB2D551B"),
    ]

    @Test("the GCM specification's test cases, with swift-crypto agreeing", arguments: specificationCases)
    func specificationCase(_ v: (key: String, iv: String, plain: String, aad: String, cipher: String, tag: String)) throws {
        let key = try DLMSKey(hex: v.key)
        let iv = hexBytes(v.iv)
        let title = try SystemTitle(iv[..<8])
        let counter = iv[8...].reduce(UInt32(0)) { ($0 << 8) | UInt32($1) }
        let sealed = try seal(hexBytes(v.plain), key: key, title: title, counter: counter, aad: hexBytes(v.aad), tagLength: 16)
        #expect(Hex.encode(sealed) == v.cipher + v.tag)
        let reference = try AES.GCM.seal(hexBytes(v.plain), using: SymmetricKey(data: hexBytes(v.key)), nonce: AES.GCM.Nonce(data: iv), authenticating: hexBytes(v.aad))
        #expect(Hex.encode(reference.ciphertext) + Hex.encode(reference.tag) == v.cipher + v.tag)
        #expect(try open(sealed, tagLength: 16, key: key, title: title, counter: counter, aad: hexBytes(v.aad)) == hexBytes(v.plain))
    }

    @Test("GHASH equals the specification's bitwise multiplication")
    func ghashAgainstBitwise() {
        var random = SeededGenerator(seed: 0x6748_4153)
        for _ in 0..<200 {
            let h = (random.next(), random.next())
            let data = (0..<Int.random(in: 0...80, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            var ghash = GHASH(hashSubkey: (high: h.0, low: h.1))
            data.withUnsafeBytes { ghash.update($0) }
            let fast = ghash.finalize(associatedDataCount: data.count, textCount: 0)
            #expect(fast == Self.bitwiseGHASH(h: h, data: data), "\(data.count) bytes")
        }
    }

    @Test("seal equals swift-crypto's for random keys, IVs, AAD and lengths; open inverts it")
    func randomAgainstSwiftCrypto() throws {
        var random = SeededGenerator(seed: 0x4443_4D31)
        let lengths = Array(0...70) + [127, 128, 129, AESGCM.shortTextLimit - 1, AESGCM.shortTextLimit, AESGCM.shortTextLimit + 1, 1000, 2694, 4096 + 5]
        for length in lengths {
            for keyLength in [16, 32] {
                let keyBytes = randomBytes(keyLength, &random)
                let key = try DLMSKey(bytes: keyBytes)
                let title = try SystemTitle(randomBytes(8, &random))
                let counter = UInt32.random(in: 0...UInt32.max, using: &random)
                let plain = randomBytes(length, &random)
                let aad = randomBytes(Int.random(in: 0...40, using: &random) + (length % 3 == 0 ? 17 : 0), &random)
                let reference = try AES.GCM.seal(plain, using: SymmetricKey(data: keyBytes),
                                                 nonce: AES.GCM.Nonce(data: title.bytes + withUnsafeBytes(of: counter.bigEndian, Array.init)),
                                                 authenticating: aad)
                for tagLength in [12, 16, Int.random(in: 1...16, using: &random)] {
                    let sealed = try seal(plain, key: key, title: title, counter: counter, aad: aad, tagLength: tagLength)
                    #expect(sealed == Array(reference.ciphertext) + Array(reference.tag.prefix(tagLength)), "\(length) bytes, tag \(tagLength)")
                    #expect(try open(sealed, tagLength: tagLength, key: key, title: title, counter: counter, aad: aad) == plain)
                }
                let crypted = try plain.withUnsafeBytes { try AESGCM.crypt($0, key: key, systemTitle: title, invocationCounter: counter) }
                #expect(crypted == Array(reference.ciphertext))
                // Authentication only: GMAC over the AAD.
                let gmacReference = try AES.GCM.seal([UInt8](), using: SymmetricKey(data: keyBytes),
                                                     nonce: AES.GCM.Nonce(data: title.bytes + withUnsafeBytes(of: counter.bigEndian, Array.init)),
                                                     authenticating: plain)
                let gmac = try seal([], key: key, title: title, counter: counter, aad: plain, tagLength: 12)
                #expect(gmac == Array(gmacReference.tag.prefix(12)))
                #expect(try open(gmac, tagLength: 12, key: key, title: title, counter: counter, aad: plain) == [])
            }
        }
    }

    @Test("any flipped bit of ciphertext, tag or AAD, another IV or another key is refused")
    func tamperingRefused() throws {
        var random = SeededGenerator(seed: 0x5441_4D50)
        for length in [0, 1, 15, 16, 17, 40, AESGCM.shortTextLimit + 33] {
            let key = try DLMSKey(bytes: randomBytes(16, &random))
            let title = try SystemTitle(randomBytes(8, &random))
            let aad = randomBytes(17, &random)
            let plain = randomBytes(length, &random)
            let sealed = try seal(plain, key: key, title: title, counter: 7, aad: aad, tagLength: 12)
            for index in sealed.indices {
                var tampered = sealed
                tampered[index] ^= 1 << UInt8.random(in: 0...7, using: &random)
                #expect(try open(tampered, tagLength: 12, key: key, title: title, counter: 7, aad: aad) == nil, "byte \(index) of \(sealed.count)")
            }
            for index in aad.indices {
                var tampered = aad
                tampered[index] ^= 0x80
                #expect(try open(sealed, tagLength: 12, key: key, title: title, counter: 7, aad: tampered) == nil)
            }
            #expect(try open(sealed, tagLength: 12, key: key, title: title, counter: 8, aad: aad) == nil)
            #expect(try open(sealed, tagLength: 12, key: key, title: SystemTitle(randomBytes(8, &random)), counter: 7, aad: aad) == nil)
            #expect(try open(sealed, tagLength: 12, key: DLMSKey(bytes: randomBytes(16, &random)), title: title, counter: 7, aad: aad) == nil)
            #expect(try open(sealed, tagLength: 12, key: key, title: title, counter: 7, aad: aad) == plain)
        }
    }

    @Test("a key's hash subkey is AES(K, 0)")
    func hashSubkey() throws {
        // Test case 1: H = 66E94BD4EF8A2C3B884CFA59CA342B2E for the zero key.
        let key = try DLMSKey(hex: "00000000000000000000000000000000")
        #expect(key.aes.hashSubkey == (high: 0x66E9_4BD4_EF8A_2C3B, low: 0x884C_FA59_CA34_2B2E))
    }

    // MARK: - Helpers

    func seal(_ plain: [UInt8], key: DLMSKey, title: SystemTitle, counter: UInt32, aad: [UInt8], tagLength: Int) throws -> [UInt8] {
        try plain.withUnsafeBytes { p in
            try aad.withUnsafeBytes { a in
                try AESGCM.seal(p, key: key, systemTitle: title, invocationCounter: counter, associatedData: a, tagLength: tagLength)
            }
        }
    }

    func open(_ sealed: [UInt8], tagLength: Int, key: DLMSKey, title: SystemTitle, counter: UInt32, aad: [UInt8]) throws -> [UInt8]? {
        try sealed.withUnsafeBytes { s in
            try aad.withUnsafeBytes { a in
                try AESGCM.open(UnsafeRawBufferPointer(rebasing: s[..<(s.count - tagLength)]), tag: UnsafeRawBufferPointer(rebasing: s[(s.count - tagLength)...]),
                                key: key, systemTitle: title, invocationCounter: counter, associatedData: a)
            }
        }
    }

    func randomBytes(_ count: Int, _ random: inout SeededGenerator) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) }
    }

    /// GHASH(H, data, no ciphertext) by SP 800-38D Algorithm 1, bit by bit.
    static func bitwiseGHASH(h: (UInt64, UInt64), data: [UInt8]) -> (high: UInt64, low: UInt64) {
        func multiply(_ x: (UInt64, UInt64), _ y: (UInt64, UInt64)) -> (UInt64, UInt64) {
            var z: (UInt64, UInt64) = (0, 0)
            var v = y
            for i in 0..<128 {
                let bit = i < 64 ? (x.0 >> (63 - UInt64(i))) & 1 : (x.1 >> (127 - UInt64(i))) & 1
                if bit == 1 { z = (z.0 ^ v.0, z.1 ^ v.1) }
                let lsb = v.1 & 1
                v = (v.0 >> 1, (v.1 >> 1) | (v.0 << 63))
                if lsb == 1 { v.0 ^= 0xE100_0000_0000_0000 }
            }
            return z
        }
        var padded = data
        while padded.count % 16 != 0 { padded.append(0) }
        var y: (UInt64, UInt64) = (0, 0)
        func word(_ bytes: ArraySlice<UInt8>) -> UInt64 { bytes.reduce(UInt64(0)) { ($0 << 8) | UInt64($1) } }
        var blocks: [(UInt64, UInt64)] = []
        for i in stride(from: 0, to: padded.count, by: 16) {
            blocks.append((word(padded[i..<(i + 8)]), word(padded[(i + 8)..<(i + 16)])))
        }
        blocks.append((UInt64(data.count) * 8, 0))
        for block in blocks { y = multiply((y.0 ^ block.0, y.1 ^ block.1), h) }
        return (y.0, y.1)
    }
}
