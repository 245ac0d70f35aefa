/// Hexadecimal text for bytes: the one encoder and decoder the tree shares (keys and system titles
/// on command lines and in files, captures in tests, bytes in error reasons and JSON).
///
/// Encoding is upper case without separators, as DLMS captures and the Green Book print bytes.
public enum Hex {
    @usableFromInline
    static let digits: [UInt8] = Array("0123456789ABCDEF".utf8)

    /// Two upper-case digits per byte, without separators.
    /// - Parameters:
    ///   - bytes: the bytes to show.
    ///   - limit: at most this many bytes are shown, then `…` (for error reasons quoting wire data).
    @inlinable
    public static func encode(_ bytes: some Sequence<UInt8>, limit: Int = .max) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.underestimatedCount * 2)
        var count = 0
        for byte in bytes {
            if count == limit { return String(decoding: out, as: UTF8.self) + "…" }
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
            count += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The byte's two upper-case digits.
    @inlinable
    public static func encode(_ byte: UInt8) -> String {
        String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]], as: UTF8.self)
    }

    /// Parses hexadecimal digits of either case, ignoring ASCII whitespace.
    ///
    /// Strict: any other character, a `0x` prefix or an odd number of digits gives `nil`, and
    /// nothing says which character it was, so a key with a typo never reaches an error message.
    /// - Returns: the bytes, or `nil` when `text` is not hexadecimal.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        try? decode(text, allowingSeparators: false).get()
    }

    /// Parses hexadecimal as pasted from a capture or a standard's example: either case, ASCII
    /// whitespace, `:` and `-` separators and a leading `0x` are accepted.
    /// - Throws: `DLMSError` `.invalidValue` naming the first character that is not a digit, or an
    ///   odd number of digits.
    public static func decode(capture text: some StringProtocol) throws -> [UInt8] {
        switch decode(text, allowingSeparators: true) {
        case .success(let bytes):
            return bytes
        case .failure(.notADigit(let c)):
            throw DLMSError.invalidValue("not a hexadecimal digit: \(Character(Unicode.Scalar(c)))")
        case .failure(.oddDigitCount):
            throw DLMSError.invalidValue("odd number of hexadecimal digits")
        }
    }

    // MARK: - Decoding core

    enum DecodingFailure: Error {
        case notADigit(UInt8)
        case oddDigitCount
    }

    static func decode(_ text: some StringProtocol, allowingSeparators: Bool) -> Result<[UInt8], DecodingFailure> {
        var utf8 = Substring(text).utf8[...]
        if allowingSeparators, utf8.starts(with: "0x".utf8) || utf8.starts(with: "0X".utf8) { utf8 = utf8.dropFirst(2) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count / 2)
        var high: UInt8? = nil
        for c in utf8 {
            let nibble: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): nibble = c - UInt8(ascii: "A") + 10
            case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                continue
            case UInt8(ascii: ":") where allowingSeparators, UInt8(ascii: "-") where allowingSeparators:
                continue
            default:
                return .failure(.notADigit(c))
            }
            if let h = high {
                bytes.append(h << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        return high == nil ? .success(bytes) : .failure(.oddDigitCount)
    }
}
