import Foundation
import Testing
import TestSupport

/// `hesctl dlms decode|encode` as an engineer uses it on a trace, including deciphering.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct HESCtlDLMSTests {
    /// The Green Book's glo-get-request (SC 0x30, system title 4D4D4D0000BC614E, IC 01234567).
    static let gloGetRequest = "C81E3001234567411312FF935A47566827C467BC7D825C3BE4A77C3FCC056B6B"
    static let keys = ["--block-cipher-key", "000102030405060708090A0B0C0D0E0F", "--auth-key", "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"]

    static func hesctl(_ arguments: [String]) async throws -> (status: Int32, stdout: String, stderr: String) {
        try await ChildProcess.run(product: "hesctl", arguments: ["dlms"] + arguments, timeout: .seconds(30))
    }

    @Test("decode then encode gives back the same bytes (a wrapper frame with a GET-Request)")
    func roundTrip() async throws {
        let frame = "000100110001000DC001C100080000010000FF0200"
        let decoded = try await Self.hesctl(["decode", frame])
        #expect(decoded.status == 0, "\(decoded.stderr)")
        #expect(decoded.stdout.contains("\"instance\" : \"0.0.1.0.0.255\""), "\(decoded.stdout)")
        let encoded = try await Self.hesctl(["encode", decoded.stdout])
        #expect(encoded.status == 0, "\(encoded.stderr)")
        #expect(encoded.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == frame)
    }

    @Test("with the keys, a ciphered APDU is deciphered next to its ciphered form; a tampered one fails without output")
    func decipher() async throws {
        let ok = try await Self.hesctl(["decode", Self.gloGetRequest, "--system-title", "4D4D4D0000BC614E"] + Self.keys)
        #expect(ok.status == 0, "\(ok.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(ok.stdout.utf8)) as? [String: Any]
        let deciphered = json?["deciphered"] as? [String: Any]
        let request = (deciphered?["getRequest"] as? [String: Any])?["normal"] as? [String: Any]
        #expect((request?["attribute"] as? [String: Any])?["instance"] as? String == "0.0.1.0.0.255", "\(ok.stdout)")
        #expect(json?["apdu"] != nil)
        #expect(!ok.stdout.contains("000102030405060708090A0B0C0D0E0F"))

        let tampered = String(Self.gloGetRequest.dropLast()) + "C"
        let bad = try await Self.hesctl(["decode", tampered, "--system-title", "4D4D4D0000BC614E"] + Self.keys)
        #expect(bad.status != 0)
        #expect(bad.stdout.isEmpty)
        #expect(bad.stderr.contains("authenticationFailed"), "\(bad.stderr)")
        #expect(!bad.stderr.contains("D0D1D2D3"), "a key leaked: \(bad.stderr)")

        let noTitle = try await Self.hesctl(["decode", Self.gloGetRequest] + Self.keys)
        #expect(noTitle.status != 0)
        #expect(noTitle.stderr.contains("--system-title"), "\(noTitle.stderr)")
    }
}
