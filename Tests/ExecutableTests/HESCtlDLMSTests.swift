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

    /// HDLC frames as engineers paste them from serial traces. SNRM, AARQ and GET were made by
    /// Gurux's client (gurux-dlms 1.0.203, `snrmRequest`, `aarqRequest`, `read(clock, 2)`); the
    /// UA with its negotiated parameters came from meter-sim; the ciphered AARE (with 7E 7E in its
    /// data) and the last segment of a ciphered profile are the dlms-cosem captures of
    /// HDLCFrameDecoderTests.
    static let hdlcFrames: [(hex: String, control: String, shows: String)] = [
        ("7EA0070321930F017E", "SNRM", #""control" : "SNRM""#),
        ("7EA02B032110FBAFE6E600601DA109060760857405080101BE10040E01000000065F1F0400401E5DFFFF91237E", "I", #""aarq""#),
        ("7EA0190321326FD8E6E600C001C100080000010000FF0200601A7E", "I", #""instance" : "0.0.1.0.0.255""#),
        ("7EA01F21022373E6C7818012050180060180070400000001080400000001533B7E", "UA", #""maximumInformationLengthReceive" : 128"#),
        ("7EA0780302213083A3E6E7006169A109060760857405080103A203020100A305A10302010EA40A04085357482A1CE348"
            + "6388020780890760857405080205AA128010F4F856A5CE315C869199436C90EF5BB9BE230421281F30000000335D1BA0"
            + "B02121FB820EEC6BED24DF12111BCD8FC15C7126843731377E7E", "I", #""aare""#),
        ("7EA06D0302213ACD9E88BE1E9BC62AED79B2CEE4D703743C6DC44955831F7E7EDD880436273A1FA3F0590E536F71BFC3"
            + "11115E878B9B31728F42CF827AFD8E795030B2A63E175C02EBB30A4FF6564A82ABD43DC366D2AA7E52D89001B177ACC0"
            + "CA0A5655ACE274A4DFBB9FD8A1057E", "I", #""information""#),
        ("7EA00703215303C77E", "DISC", #""control" : "DISC""#),
    ]

    @Test("HDLC frames (Gurux's SNRM, AARQ and GET, meter-sim's UA, captured AARE and segments, DISC): decoded with their fields and APDU, encoded back to the same bytes")
    func hdlcFramesRoundTrip() async throws {
        for frame in Self.hdlcFrames {
            let decoded = try await Self.hesctl(["decode", frame.hex])
            #expect(decoded.status == 0, "\(frame.hex): \(decoded.stderr)")
            #expect(decoded.stdout.contains(#""control" : "\#(frame.control)""#) && decoded.stdout.contains(frame.shows), "\(frame.hex): \(decoded.stdout)")
            let encoded = try await Self.hesctl(["encode", decoded.stdout])
            #expect(encoded.status == 0, "\(encoded.stderr)")
            #expect(encoded.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == frame.hex, "\(frame.control) did not round-trip")
        }
        // A frame whose FCS was altered is refused with the reason, not decoded.
        let broken = try await Self.hesctl(["decode", "7EA0190321326FD8E6E600C001C100080000010000FF0200601B7E"])
        #expect(broken.status != 0 && broken.stdout.isEmpty, "\(broken.stdout)")
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
