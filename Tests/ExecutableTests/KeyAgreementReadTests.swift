import Foundation
import Testing
import TestSupport

/// `hesctl read --agree-key … --key-out FILE` against `meter-sim` (HLS-ECDSA suite 1, ciphered):
/// the security setup's key_agreement through both executables, then reads with the new key.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct KeyAgreementReadTests {
    @Test("--agree-key unicast writes the new key (mode 0600, never printed); the meter then reads ciphered with it, not with the old one")
    func unicast() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hes-agree-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let keyFile = directory.appendingPathComponent("new-ek.hex").path
        let port = try freeLoopbackPort()
        let sim = try await ECDSAReadTests.sim(port: port)
        let base = ["--tcp", "127.0.0.1:\(port)", "--client", "1", "--auth", "hls-ecdsa", "--signing-key", ECDSAReadTests.clientPrivate,
                    "--meter-public-key", ECDSAReadTests.meterPublic, "--security", "both"]
        let oldKeys = SecureReadTests.keys

        let agreed = try await ChildProcess.run(product: "hesctl", arguments: ["read"] + base + oldKeys + ["--agree-key", "unicast", "--key-out", keyFile],
                                                timeout: .seconds(60))
        #expect(agreed.status == 0, "\(agreed.stderr)")
        let key = try String(contentsOfFile: keyFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(key.count == 32 && key.allSatisfy(\.isHexDigit), "\(key.count) characters")
        #expect(key != "000102030405060708090A0B0C0D0E0F")
        let permissions = try FileManager.default.attributesOfItem(atPath: keyFile)[.posixPermissions] as? Int
        #expect(permissions == 0o600)
        #expect(!agreed.stdout.contains(key) && !agreed.stderr.contains(key), "the key was printed")
        let output = try MeterSimTransportTests.json(agreed.stdout)
        #expect((output["agreedKey"] as? [String: Any])?["keyID"] as? String == "unicast")
        #expect(output["clock"] == nil)

        // The next association ciphers with the new key and reads the clock.
        let newKeys = ["--block-cipher-key", "@" + keyFile, "--auth-key", "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"]
        let read = try await MeterSimTransportTests.hesctl(base + newKeys + ["--clock"])
        #expect((read?["clock"] as? [String: Any])?["time"] as? String != nil)
        // The old key no longer associates.
        let old = try await ChildProcess.run(product: "hesctl", arguments: ["read"] + base + oldKeys + ["--clock"], timeout: .seconds(60))
        #expect(old.status != 0, "\(old.stdout)")

        // An existing --key-out file is refused before anything is sent (the meter keeps the new key).
        let existing = try await ChildProcess.run(product: "hesctl", arguments: ["read"] + base + newKeys + ["--agree-key", "unicast", "--key-out", keyFile],
                                                  timeout: .seconds(60))
        #expect(existing.status != 0)
        #expect(try String(contentsOfFile: keyFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) == key)
        _ = try await MeterSimTransportTests.hesctl(base + newKeys + ["--clock"])
        await MeterSimTransportTests.stop(sim)
    }

    @Test("usage: --agree-key needs --key-out, hls-ecdsa and ciphering keys; unknown key ids are refused")
    func usage() async throws {
        let base = ["--tcp", "127.0.0.1:9", "--client", "1"]
        let ecdsa = ["--auth", "hls-ecdsa", "--signing-key", ECDSAReadTests.clientPrivate, "--meter-public-key", ECDSAReadTests.meterPublic]
        for (arguments, message) in [
            (ecdsa + SecureReadTests.keys + ["--agree-key", "unicast"], "--key-out"),
            (ecdsa + SecureReadTests.keys + ["--agree-key", "dedicated", "--key-out", "/tmp/x"], "--agree-key must be"),
            (["--auth", "hls-gmac"] + SecureReadTests.keys + ["--agree-key", "unicast", "--key-out", "/tmp/x"], "hls-ecdsa"),
            (ecdsa + ["--agree-key", "unicast", "--key-out", "/tmp/x"], "ciphered"),
            (ecdsa + ["--key-out", "/tmp/x"], "--agree-key"),
        ] {
            let result = try await ChildProcess.run(product: "hesctl", arguments: ["read"] + base + arguments, timeout: .seconds(60))
            #expect(result.status == 64, "\(arguments): \(result.stderr)")
            #expect(result.stderr.contains(message), "\(arguments): \(result.stderr)")
        }
    }
}
