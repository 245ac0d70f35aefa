#if canImport(Darwin)
import Darwin
#elseif canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// AES encryption (FIPS 197) in constant time, four blocks at a time: BearSSL's bitsliced "ct64"
/// implementation (Thomas Pornin), S-box after Boyar and Peralta's circuit. No table lookup,
/// no branch and no memory access depends on the key or the data.
///
/// It serves short GCM texts (``AESGCM``), where calling into swift-crypto costs more than the
/// AES itself; the key schedule is expanded once per key (``DLMSKey``). Only the encryption
/// direction exists: GCM needs no other.
///
/// The expanded key, the raw key and the GCM hash subkey live in one allocation that is wiped
/// (`explicit_bzero`/`memset_s`) when the key is released.
final class ConstantTimeAES: @unchecked Sendable {
    // @unchecked: the storage is written once in `init` and only read afterwards.

    /// 10, 12 or 14.
    let rounds: Int
    /// The raw key: 16, 24 or 32 bytes.
    let keyCount: Int
    /// H = AES(K, 0¹²⁸) as its first and last 8 bytes (big-endian), for GHASH.
    var hashSubkey: (high: UInt64, low: UInt64) { (storage[scheduleWords], storage[scheduleWords + 1]) }

    /// Expanded round keys (8 words a round), then H (2 words), then the raw key.
    private let storage: UnsafeMutablePointer<UInt64>
    private let scheduleWords: Int
    private let storageWords: Int

    /// - Parameter key: 16, 24 or 32 bytes.
    init(key: UnsafeRawBufferPointer) {
        switch key.count {
        case 16: rounds = 10
        case 24: rounds = 12
        case 32: rounds = 14
        default: preconditionFailure("AES keys have 16, 24 or 32 bytes")
        }
        keyCount = key.count
        scheduleWords = (rounds + 1) * 8
        storageWords = scheduleWords + 2 + 4
        storage = .allocate(capacity: storageWords)
        storage.initialize(repeating: 0, count: storageWords)
        UnsafeMutableRawPointer(storage + scheduleWords + 2).copyMemory(from: key.baseAddress!, byteCount: key.count)
        Self.expandKey(key, rounds: rounds, into: storage)
        // H: the words are little-endian loads, H's halves big-endian ones.
        var zero = Blocks()
        encrypt(&zero)
        storage[scheduleWords] = UInt64(zero.w0.byteSwapped) << 32 | UInt64(zero.w1.byteSwapped)
        storage[scheduleWords + 1] = UInt64(zero.w2.byteSwapped) << 32 | UInt64(zero.w3.byteSwapped)
    }

    deinit {
        Self.wipe(UnsafeMutableRawPointer(storage), storageWords * 8)
        storage.deallocate()
    }

    /// Calls `body` with the raw key bytes.
    func withKeyBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: UnsafeRawPointer(storage + scheduleWords + 2), count: keyCount))
    }

    /// Four 16-byte blocks as sixteen 32-bit words, each loaded little-endian (BearSSL's layout).
    struct Blocks {
        var w0: UInt32 = 0, w1: UInt32 = 0, w2: UInt32 = 0, w3: UInt32 = 0
        var w4: UInt32 = 0, w5: UInt32 = 0, w6: UInt32 = 0, w7: UInt32 = 0
        var w8: UInt32 = 0, w9: UInt32 = 0, w10: UInt32 = 0, w11: UInt32 = 0
        var w12: UInt32 = 0, w13: UInt32 = 0, w14: UInt32 = 0, w15: UInt32 = 0

        /// The 64 bytes of the four blocks.
        @inline(__always)
        func store(into bytes: UnsafeMutableRawBufferPointer) {
            precondition(bytes.count >= 64)
            let p = bytes.baseAddress!
            p.storeBytes(of: w0.littleEndian, toByteOffset: 0, as: UInt32.self)
            p.storeBytes(of: w1.littleEndian, toByteOffset: 4, as: UInt32.self)
            p.storeBytes(of: w2.littleEndian, toByteOffset: 8, as: UInt32.self)
            p.storeBytes(of: w3.littleEndian, toByteOffset: 12, as: UInt32.self)
            p.storeBytes(of: w4.littleEndian, toByteOffset: 16, as: UInt32.self)
            p.storeBytes(of: w5.littleEndian, toByteOffset: 20, as: UInt32.self)
            p.storeBytes(of: w6.littleEndian, toByteOffset: 24, as: UInt32.self)
            p.storeBytes(of: w7.littleEndian, toByteOffset: 28, as: UInt32.self)
            p.storeBytes(of: w8.littleEndian, toByteOffset: 32, as: UInt32.self)
            p.storeBytes(of: w9.littleEndian, toByteOffset: 36, as: UInt32.self)
            p.storeBytes(of: w10.littleEndian, toByteOffset: 40, as: UInt32.self)
            p.storeBytes(of: w11.littleEndian, toByteOffset: 44, as: UInt32.self)
            p.storeBytes(of: w12.littleEndian, toByteOffset: 48, as: UInt32.self)
            p.storeBytes(of: w13.littleEndian, toByteOffset: 52, as: UInt32.self)
            p.storeBytes(of: w14.littleEndian, toByteOffset: 56, as: UInt32.self)
            p.storeBytes(of: w15.littleEndian, toByteOffset: 60, as: UInt32.self)
        }
    }

    /// Encrypts the four blocks in place.
    func encrypt(_ b: inout Blocks) {
        var q = Slices()
        (q.q0, q.q4) = Self.interleaveIn(b.w0, b.w1, b.w2, b.w3)
        (q.q1, q.q5) = Self.interleaveIn(b.w4, b.w5, b.w6, b.w7)
        (q.q2, q.q6) = Self.interleaveIn(b.w8, b.w9, b.w10, b.w11)
        (q.q3, q.q7) = Self.interleaveIn(b.w12, b.w13, b.w14, b.w15)
        q.ortho()
        q.addRoundKey(storage)
        // One loop body for all rounds (the last skips MixColumns): the code stays small, which
        // matters more than a branch per round when it runs once per APDU with cold caches.
        for round in 1...rounds {
            q.substitute()
            q.shiftRows()
            if round != rounds { q.mixColumns() }
            q.addRoundKey(storage + round * 8)
        }
        q.ortho()
        (b.w0, b.w1, b.w2, b.w3) = Self.interleaveOut(q.q0, q.q4)
        (b.w4, b.w5, b.w6, b.w7) = Self.interleaveOut(q.q1, q.q5)
        (b.w8, b.w9, b.w10, b.w11) = Self.interleaveOut(q.q2, q.q6)
        (b.w12, b.w13, b.w14, b.w15) = Self.interleaveOut(q.q3, q.q7)
    }

    // MARK: - Bitsliced state

    /// Eight 64-bit words holding four blocks bit-sliced: word i has bit i of every byte.
    struct Slices {
        var q0: UInt64 = 0, q1: UInt64 = 0, q2: UInt64 = 0, q3: UInt64 = 0
        var q4: UInt64 = 0, q5: UInt64 = 0, q6: UInt64 = 0, q7: UInt64 = 0

        @inline(__always)
        mutating func addRoundKey(_ key: UnsafePointer<UInt64>) {
            q0 ^= key[0]; q1 ^= key[1]; q2 ^= key[2]; q3 ^= key[3]
            q4 ^= key[4]; q5 ^= key[5]; q6 ^= key[6]; q7 ^= key[7]
        }

        /// Transposes between four blocks interleaved and the bit-sliced form (an involution).
        @inline(never)
        mutating func ortho() {
            @inline(__always)
            func swap(_ x: inout UInt64, _ y: inout UInt64, _ low: UInt64, _ high: UInt64, _ shift: UInt64) {
                let a = x, b = y
                x = (a & low) | ((b & low) << shift)
                y = ((a & high) >> shift) | (b & high)
            }
            swap(&q0, &q1, 0x5555_5555_5555_5555, 0xAAAA_AAAA_AAAA_AAAA, 1)
            swap(&q2, &q3, 0x5555_5555_5555_5555, 0xAAAA_AAAA_AAAA_AAAA, 1)
            swap(&q4, &q5, 0x5555_5555_5555_5555, 0xAAAA_AAAA_AAAA_AAAA, 1)
            swap(&q6, &q7, 0x5555_5555_5555_5555, 0xAAAA_AAAA_AAAA_AAAA, 1)

            swap(&q0, &q2, 0x3333_3333_3333_3333, 0xCCCC_CCCC_CCCC_CCCC, 2)
            swap(&q1, &q3, 0x3333_3333_3333_3333, 0xCCCC_CCCC_CCCC_CCCC, 2)
            swap(&q4, &q6, 0x3333_3333_3333_3333, 0xCCCC_CCCC_CCCC_CCCC, 2)
            swap(&q5, &q7, 0x3333_3333_3333_3333, 0xCCCC_CCCC_CCCC_CCCC, 2)

            swap(&q0, &q4, 0x0F0F_0F0F_0F0F_0F0F, 0xF0F0_F0F0_F0F0_F0F0, 4)
            swap(&q1, &q5, 0x0F0F_0F0F_0F0F_0F0F, 0xF0F0_F0F0_F0F0_F0F0, 4)
            swap(&q2, &q6, 0x0F0F_0F0F_0F0F_0F0F, 0xF0F0_F0F0_F0F0_F0F0, 4)
            swap(&q3, &q7, 0x0F0F_0F0F_0F0F_0F0F, 0xF0F0_F0F0_F0F0_F0F0, 4)
        }

        @inline(__always)
        mutating func shiftRows() {
            @inline(__always)
            func shift(_ x: UInt64) -> UInt64 {
                (x & 0x0000_0000_0000_FFFF)
                    | ((x & 0x0000_0000_FFF0_0000) >> 4)
                    | ((x & 0x0000_0000_000F_0000) << 12)
                    | ((x & 0x0000_FF00_0000_0000) >> 8)
                    | ((x & 0x0000_00FF_0000_0000) << 8)
                    | ((x & 0xF000_0000_0000_0000) >> 12)
                    | ((x & 0x0FFF_0000_0000_0000) << 4)
            }
            q0 = shift(q0); q1 = shift(q1); q2 = shift(q2); q3 = shift(q3)
            q4 = shift(q4); q5 = shift(q5); q6 = shift(q6); q7 = shift(q7)
        }

        @inline(__always)
        mutating func mixColumns() {
            @inline(__always)
            func rotr16(_ x: UInt64) -> UInt64 { (x >> 16) | (x << 48) }
            @inline(__always)
            func rotr32(_ x: UInt64) -> UInt64 { (x << 32) | (x >> 32) }
            let r0 = rotr16(q0), r1 = rotr16(q1), r2 = rotr16(q2), r3 = rotr16(q3)
            let r4 = rotr16(q4), r5 = rotr16(q5), r6 = rotr16(q6), r7 = rotr16(q7)
            let n0 = q7 ^ r7 ^ r0 ^ rotr32(q0 ^ r0)
            let n1 = q0 ^ r0 ^ q7 ^ r7 ^ r1 ^ rotr32(q1 ^ r1)
            let n2 = q1 ^ r1 ^ r2 ^ rotr32(q2 ^ r2)
            let n3 = q2 ^ r2 ^ q7 ^ r7 ^ r3 ^ rotr32(q3 ^ r3)
            let n4 = q3 ^ r3 ^ q7 ^ r7 ^ r4 ^ rotr32(q4 ^ r4)
            let n5 = q4 ^ r4 ^ r5 ^ rotr32(q5 ^ r5)
            let n6 = q5 ^ r5 ^ r6 ^ rotr32(q6 ^ r6)
            let n7 = q6 ^ r6 ^ r7 ^ rotr32(q7 ^ r7)
            q0 = n0; q1 = n1; q2 = n2; q3 = n3; q4 = n4; q5 = n5; q6 = n6; q7 = n7
        }

        /// SubBytes on all 128 bytes at once: Boyar and Peralta's circuit ("A new combinational
        /// logic minimization technique with applications to cryptology", 2009: 113 gates).
        /// x0 is the high bit (q7), x7 the low bit (q0).
        @inline(__always)
        mutating func substitute() {
            let x0 = q7, x1 = q6, x2 = q5, x3 = q4, x4 = q3, x5 = q2, x6 = q1, x7 = q0

            // Top linear transformation.
            let y14 = x3 ^ x5
            let y13 = x0 ^ x6
            let y9 = x0 ^ x3
            let y8 = x0 ^ x5
            let t0 = x1 ^ x2
            let y1 = t0 ^ x7
            let y4 = y1 ^ x3
            let y12 = y13 ^ y14
            let y2 = y1 ^ x0
            let y5 = y1 ^ x6
            let y3 = y5 ^ y8
            let t1 = x4 ^ y12
            let y15 = t1 ^ x5
            let y20 = t1 ^ x1
            let y6 = y15 ^ x7
            let y10 = y15 ^ t0
            let y11 = y20 ^ y9
            let y7 = x7 ^ y11
            let y17 = y10 ^ y11
            let y19 = y10 ^ y8
            let y16 = t0 ^ y11
            let y21 = y13 ^ y16
            let y18 = x0 ^ y16

            // Non-linear section.
            let t2 = y12 & y15
            let t3 = y3 & y6
            let t4 = t3 ^ t2
            let t5 = y4 & x7
            let t6 = t5 ^ t2
            let t7 = y13 & y16
            let t8 = y5 & y1
            let t9 = t8 ^ t7
            let t10 = y2 & y7
            let t11 = t10 ^ t7
            let t12 = y9 & y11
            let t13 = y14 & y17
            let t14 = t13 ^ t12
            let t15 = y8 & y10
            let t16 = t15 ^ t12
            let t17 = t4 ^ t14
            let t18 = t6 ^ t16
            let t19 = t9 ^ t14
            let t20 = t11 ^ t16
            let t21 = t17 ^ y20
            let t22 = t18 ^ y19
            let t23 = t19 ^ y21
            let t24 = t20 ^ y18

            let t25 = t21 ^ t22
            let t26 = t21 & t23
            let t27 = t24 ^ t26
            let t28 = t25 & t27
            let t29 = t28 ^ t22
            let t30 = t23 ^ t24
            let t31 = t22 ^ t26
            let t32 = t31 & t30
            let t33 = t32 ^ t24
            let t34 = t23 ^ t33
            let t35 = t27 ^ t33
            let t36 = t24 & t35
            let t37 = t36 ^ t34
            let t38 = t27 ^ t36
            let t39 = t29 & t38
            let t40 = t25 ^ t39

            let t41 = t40 ^ t37
            let t42 = t29 ^ t33
            let t43 = t29 ^ t40
            let t44 = t33 ^ t37
            let t45 = t42 ^ t41
            let z0 = t44 & y15
            let z1 = t37 & y6
            let z2 = t33 & x7
            let z3 = t43 & y16
            let z4 = t40 & y1
            let z5 = t29 & y7
            let z6 = t42 & y11
            let z7 = t45 & y17
            let z8 = t41 & y10
            let z9 = t44 & y12
            let z10 = t37 & y3
            let z11 = t33 & y4
            let z12 = t43 & y13
            let z13 = t40 & y5
            let z14 = t29 & y2
            let z15 = t42 & y9
            let z16 = t45 & y14
            let z17 = t41 & y8

            // Bottom linear transformation.
            let t46 = z15 ^ z16
            let t47 = z10 ^ z11
            let t48 = z5 ^ z13
            let t49 = z9 ^ z10
            let t50 = z2 ^ z12
            let t51 = z2 ^ z5
            let t52 = z7 ^ z8
            let t53 = z0 ^ z3
            let t54 = z6 ^ z7
            let t55 = z16 ^ z17
            let t56 = z12 ^ t48
            let t57 = t50 ^ t53
            let t58 = z4 ^ t46
            let t59 = z3 ^ t54
            let t60 = t46 ^ t57
            let t61 = z14 ^ t57
            let t62 = t52 ^ t58
            let t63 = t49 ^ t58
            let t64 = z4 ^ t59
            let t65 = t61 ^ t62
            let t66 = z1 ^ t63
            let s0 = t59 ^ t63
            let s6 = t56 ^ ~t62
            let s7 = t48 ^ ~t60
            let t67 = t64 ^ t65
            let s3 = t53 ^ t66
            let s4 = t51 ^ t66
            let s5 = t47 ^ t65
            let s1 = t64 ^ ~s3
            let s2 = t55 ^ ~t67

            q7 = s0; q6 = s1; q5 = s2; q4 = s3; q3 = s4; q2 = s5; q1 = s6; q0 = s7
        }
    }

    // MARK: - Layout

    /// One block's four words into two words of the interleaved form.
    @inline(__always)
    private static func interleaveIn(_ w0: UInt32, _ w1: UInt32, _ w2: UInt32, _ w3: UInt32) -> (UInt64, UInt64) {
        @inline(__always)
        func spread(_ w: UInt32) -> UInt64 {
            var x = UInt64(w)
            x |= x << 16
            x &= 0x0000_FFFF_0000_FFFF
            x |= x << 8
            x &= 0x00FF_00FF_00FF_00FF
            return x
        }
        let x0 = spread(w0), x1 = spread(w1), x2 = spread(w2), x3 = spread(w3)
        return (x0 | (x2 << 8), x1 | (x3 << 8))
    }

    @inline(__always)
    private static func interleaveOut(_ q0: UInt64, _ q1: UInt64) -> (UInt32, UInt32, UInt32, UInt32) {
        @inline(__always)
        func gather(_ x: UInt64) -> UInt32 {
            var x = x
            x |= x >> 8
            x &= 0x0000_FFFF_0000_FFFF
            return UInt32(truncatingIfNeeded: x) | UInt32(truncatingIfNeeded: x >> 16)
        }
        return (gather(q0 & 0x00FF_00FF_00FF_00FF), gather(q1 & 0x00FF_00FF_00FF_00FF),
                gather((q0 >> 8) & 0x00FF_00FF_00FF_00FF), gather((q1 >> 8) & 0x00FF_00FF_00FF_00FF))
    }

    // MARK: - Key schedule (FIPS 197 §5.2)

    /// SubWord of the key schedule: the S-box on each byte of `x`.
    static func subWord(_ x: UInt32) -> UInt32 {
        var q = Slices()
        q.q0 = UInt64(x)
        q.ortho()
        q.substitute()
        q.ortho()
        return UInt32(truncatingIfNeeded: q.q0)
    }

    private static func expandKey(_ key: UnsafeRawBufferPointer, rounds: Int, into schedule: UnsafeMutablePointer<UInt64>) {
        let rcon: [UInt32] = [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x1B, 0x36]
        let nk = key.count / 4
        let total = (rounds + 1) * 4
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 60) { words in
            defer { wipe(UnsafeMutableRawPointer(words.baseAddress!), 60 * 4) }
            for i in 0..<nk { words[i] = UInt32(littleEndian: key.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)) }
            var tmp = words[nk - 1]
            var j = 0, k = 0
            for i in nk..<total {
                if j == 0 {
                    tmp = (tmp << 24) | (tmp >> 8)
                    tmp = subWord(tmp) ^ rcon[k]
                } else if nk > 6 && j == 4 {
                    tmp = subWord(tmp)
                }
                tmp ^= words[i - nk]
                words[i] = tmp
                j += 1
                if j == nk {
                    j = 0
                    k += 1
                }
            }
            // Each round key bit-sliced (the same key for all four blocks), then spread to the
            // eight words the rounds XOR in (BearSSL's keysched + skey_expand).
            for round in 0...rounds {
                var q = Slices()
                (q.q0, q.q4) = interleaveIn(words[round * 4], words[round * 4 + 1], words[round * 4 + 2], words[round * 4 + 3])
                q.q1 = q.q0; q.q2 = q.q0; q.q3 = q.q0
                q.q5 = q.q4; q.q6 = q.q4; q.q7 = q.q4
                q.ortho()
                let compressed0 = (q.q0 & 0x1111_1111_1111_1111) | (q.q1 & 0x2222_2222_2222_2222)
                    | (q.q2 & 0x4444_4444_4444_4444) | (q.q3 & 0x8888_8888_8888_8888)
                let compressed1 = (q.q4 & 0x1111_1111_1111_1111) | (q.q5 & 0x2222_2222_2222_2222)
                    | (q.q6 & 0x4444_4444_4444_4444) | (q.q7 & 0x8888_8888_8888_8888)
                spread(compressed0, into: schedule + round * 8)
                spread(compressed1, into: schedule + round * 8 + 4)
            }
        }
    }

    /// Each bit of a compressed round key word copied to the four bits of its nibble.
    private static func spread(_ compressed: UInt64, into words: UnsafeMutablePointer<UInt64>) {
        let x0 = compressed & 0x1111_1111_1111_1111
        let x1 = (compressed & 0x2222_2222_2222_2222) >> 1
        let x2 = (compressed & 0x4444_4444_4444_4444) >> 2
        let x3 = (compressed & 0x8888_8888_8888_8888) >> 3
        words[0] = (x0 << 4) &- x0
        words[1] = (x1 << 4) &- x1
        words[2] = (x2 << 4) &- x2
        words[3] = (x3 << 4) &- x3
    }

    static func wipe(_ pointer: UnsafeMutableRawPointer, _ count: Int) {
        #if canImport(Darwin)
        _ = memset_s(pointer, count, 0, count)
        #else
        explicit_bzero(pointer, count)
        #endif
    }
}
