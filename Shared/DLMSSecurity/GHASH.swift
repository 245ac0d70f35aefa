/// GHASH, the universal hash of GCM (NIST SP 800-38D §6.4): Y ← (Y ⊕ X) · H in GF(2¹²⁸), block by
/// block.
///
/// Constant time: the field multiplication is BearSSL's `br_ghash_ctmul64` — carry-less products
/// made from ordinary 64-bit multiplications of operands with every fourth bit kept ("holes" that
/// catch the carries), the upper halves from the bit-reversed operands, then the reduction. No
/// table, no branch and no memory access depends on H or the data.
struct GHASH {
    /// Y: `high` holds the block's first 8 bytes (big-endian), `low` the last 8.
    private var high: UInt64 = 0
    private var low: UInt64 = 0
    private let h1: UInt64, h0: UInt64, h2: UInt64
    private let h1r: UInt64, h0r: UInt64, h2r: UInt64

    /// - Parameter hashSubkey: H = AES(K, 0¹²⁸) as its first and last 8 bytes, big-endian.
    init(hashSubkey: (high: UInt64, low: UInt64)) {
        h1 = hashSubkey.high
        h0 = hashSubkey.low
        h2 = h0 ^ h1
        h1r = Self.reversed(h1)
        h0r = Self.reversed(h0)
        h2r = h0r ^ h1r
    }

    /// Hashes `bytes` as whole blocks, the last one padded with zero bytes (SP 800-38D pads the
    /// AAD and the ciphertext each to a block boundary).
    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var offset = 0
        let whole = bytes.count & ~15
        while offset < whole {
            absorb(UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)),
                   UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self)))
            offset += 16
        }
        if offset < bytes.count {
            var block: (UInt64, UInt64) = (0, 0)
            withUnsafeMutableBytes(of: &block) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[offset...])) }
            absorb(UInt64(bigEndian: block.0), UInt64(bigEndian: block.1))
        }
    }

    /// Hashes one block given as its first and last 8 bytes (big-endian).
    mutating func absorb(_ blockHigh: UInt64, _ blockLow: UInt64) {
        let y1 = high ^ blockHigh
        let y0 = low ^ blockLow
        let y1r = Self.reversed(y1)
        let y0r = Self.reversed(y0)
        let y2 = y0 ^ y1
        let y2r = y0r ^ y1r

        // Karatsuba: the low halves of the three products, and (reversed) their high halves.
        let z0 = Self.multiply(y0, h0)
        let z1 = Self.multiply(y1, h1)
        var z2 = Self.multiply(y2, h2)
        var z0h = Self.multiply(y0r, h0r)
        var z1h = Self.multiply(y1r, h1r)
        var z2h = Self.multiply(y2r, h2r)
        z2 ^= z0 ^ z1
        z2h ^= z0h ^ z1h
        z0h = Self.reversed(z0h) >> 1
        z1h = Self.reversed(z1h) >> 1
        z2h = Self.reversed(z2h) >> 1

        // The 256-bit product v3:v2:v1:v0, shifted by one (GCM's bit order), then reduced
        // modulo x¹²⁸ + x⁷ + x² + x + 1.
        var v0 = z0
        var v1 = z0h ^ z2
        var v2 = z1 ^ z2h
        var v3 = z1h
        v3 = (v3 << 1) | (v2 >> 63)
        v2 = (v2 << 1) | (v1 >> 63)
        v1 = (v1 << 1) | (v0 >> 63)
        v0 = v0 << 1
        v2 ^= v0 ^ (v0 >> 1) ^ (v0 >> 2) ^ (v0 >> 7)
        v1 ^= (v0 << 63) ^ (v0 << 62) ^ (v0 << 57)
        v3 ^= v1 ^ (v1 >> 1) ^ (v1 >> 2) ^ (v1 >> 7)
        v2 ^= (v1 << 63) ^ (v1 << 62) ^ (v1 << 57)
        high = v3
        low = v2
    }

    /// Hashes the length block (bit lengths of the AAD and the ciphertext) and returns S.
    mutating func finalize(associatedDataCount: Int, textCount: Int) -> (high: UInt64, low: UInt64) {
        absorb(UInt64(associatedDataCount) &* 8, UInt64(textCount) &* 8)
        return (high, low)
    }

    /// The low 64 bits of the carry-less product of `x` and `y`.
    @inline(__always)
    private static func multiply(_ x: UInt64, _ y: UInt64) -> UInt64 {
        let m0: UInt64 = 0x1111_1111_1111_1111, m1: UInt64 = 0x2222_2222_2222_2222
        let m2: UInt64 = 0x4444_4444_4444_4444, m3: UInt64 = 0x8888_8888_8888_8888
        let x0 = x & m0, x1 = x & m1, x2 = x & m2, x3 = x & m3
        let y0 = y & m0, y1 = y & m1, y2 = y & m2, y3 = y & m3
        var z0 = (x0 &* y0) ^ (x1 &* y3) ^ (x2 &* y2) ^ (x3 &* y1)
        var z1 = (x0 &* y1) ^ (x1 &* y0) ^ (x2 &* y3) ^ (x3 &* y2)
        var z2 = (x0 &* y2) ^ (x1 &* y1) ^ (x2 &* y0) ^ (x3 &* y3)
        var z3 = (x0 &* y3) ^ (x1 &* y2) ^ (x2 &* y1) ^ (x3 &* y0)
        z0 &= m0
        z1 &= m1
        z2 &= m2
        z3 &= m3
        return z0 | z1 | z2 | z3
    }

    @inline(__always)
    private static func reversed(_ x: UInt64) -> UInt64 {
        var x = x
        x = ((x & 0x5555_5555_5555_5555) << 1) | ((x >> 1) & 0x5555_5555_5555_5555)
        x = ((x & 0x3333_3333_3333_3333) << 2) | ((x >> 2) & 0x3333_3333_3333_3333)
        x = ((x & 0x0F0F_0F0F_0F0F_0F0F) << 4) | ((x >> 4) & 0x0F0F_0F0F_0F0F_0F0F)
        return x.byteSwapped
    }
}
