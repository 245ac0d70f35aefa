import COSEM
import DLMSCodec
import NIOCore
import TestSupport
import Testing

@Suite struct MalformedInputTests {
    static let samples: [String] = GuruxInteropTests.wellFormed.map(\.hex) + StandardVectorTests.vectors.map { hexBuffer($0.0).dlmsHex }

    /// Every proper prefix of every valid APDU must be rejected with a typed error.
    @Test func everyTruncationIsATypedError() {
        var checked = 0
        for hex in Self.samples {
            let bytes = Array(hexBuffer(hex).readableBytesView)
            for cut in 0..<bytes.count {
                do {
                    // A prefix may itself be a complete APDU (an exception-response without its
                    // optional invocation counter, an action-response whose last return-parameters
                    // flag is missing); then it must re-encode to itself (plus that one flag).
                    let prefix = ByteBuffer(dlmsBytes: bytes[..<cut])
                    let apdu = try DLMSAPDU(exactly: prefix)
                    var expected = prefix
                    if case .actionResponse = apdu, apdu.encoded.readableBytes == prefix.readableBytes + 1 { expected.writeInteger(UInt8(0)) }
                    #expect(apdu.encoded == expected, "prefix of \(cut) bytes of \(hex) decoded as something else")
                } catch is DLMSError {
                    checked += 1
                } catch {
                    Issue.record("untyped error \(error)")
                }
            }
        }
        #expect(checked > 1000)
    }

    /// Trailing bytes after a complete APDU are reported, not ignored.
    @Test func trailingBytes() {
        #expect(throws: DLMSError.trailingBytes(0, after: "")) { try DLMSAPDU(exactly: hexBuffer("C001C100080000010000FF020000")) }
    }

    static let malformed: [(String, DLMSError)] = [
        ("", .truncated("")),
        ("FF", .unexpectedTag(0, in: "")),
        ("C0", .truncated("")),
        ("C009C1", .unexpectedTag(0, in: "")),
        ("C001C100080000010000FF0202", .invalidValue("")),
        ("C003C184FFFFFFFF", .lengthLimitExceeded("")),
        ("C401C102", .unexpectedTag(0, in: "")),
        ("C402C1010000000200 84FFFFFFFF", .lengthLimitExceeded("")),
        ("C401C100 0984FFFFFFFF00", .lengthLimitExceeded("")),
        ("6084FFFFFFFF", .lengthLimitExceeded("")),
        ("6080A100", .lengthLimitExceeded("")),  // indefinite length
        ("6085", .lengthLimitExceeded("")),
        ("6000", .invalidValue("")),  // no application context
        ("6005A103040100", .unexpectedTag(0, in: "")),
        ("6104A1020600", .invalidValue("")),
        ("6106BE0404027700", .unexpectedTag(0, in: "")),
        ("0F0000000184", .truncated("")),
        ("0F000000010D", .lengthLimitExceeded("")),
        ("C8 04 300000", .lengthLimitExceeded("")),
        ("C8 03 300000", .invalidValue("")),
        ("01000000065F1E040000101D0400", .invalidValue("")),
        ("05", .unsupported("")),
        ("DD00", .unexpectedTag(0, in: "")),
        ("C2020046000060030AFF020301", .invalidValue("")),
    ]

    @Test(arguments: malformed)
    func rejects(hex: String, error: DLMSError) {
        #expect(throws: error) { try DLMSAPDU(exactly: hexBuffer(hex)) }
    }

    @Test func deepNestingInsideAResponse() {
        var bytes: [UInt8] = [0xC4, 0x01, 0xC1, 0x00]
        for _ in 0..<5_000 { bytes += [0x02, 0x01] }
        bytes.append(0x00)
        #expect(throws: DLMSError.nestingLimitExceeded("")) { try DLMSAPDU(exactly: ByteBuffer(dlmsBytes: bytes)) }
    }

    /// Random mutations of valid APDUs never trap and only ever throw `DLMSError`.
    @Test func mutationsNeverTrap() {
        var rng = SystemRandomNumberGenerator()
        let samples = Self.samples.map { Array(hexBuffer($0).readableBytesView) }
        for _ in 0..<30_000 {
            var bytes = samples.randomElement(using: &rng)!
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                switch Int.random(in: 0..<3, using: &rng) {
                case 0 where !bytes.isEmpty: bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                case 1 where !bytes.isEmpty: bytes.remove(at: Int.random(in: 0..<bytes.count, using: &rng))
                default: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: Int.random(in: 0...bytes.count, using: &rng))
                }
            }
            do {
                let apdu = try DLMSAPDU(exactly: ByteBuffer(dlmsBytes: bytes))
                _ = apdu.encoded
            } catch is DLMSError {
            } catch {
                Issue.record("untyped error \(error)")
            }
        }
    }
}
