import Crypto

/// SHA-256 hex digests for migration checksums (swift-crypto; FIPS 180-4).
enum SHA256 {
    /// The digest of `bytes` as 64 lowercase hex digits.
    static func hexDigest<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> String {
        let digest = Crypto.SHA256.hash(data: Array(bytes))
        return digest.map { byte in
            let hex = String(byte, radix: 16)
            return byte < 0x10 ? "0" + hex : hex
        }.joined()
    }
}
