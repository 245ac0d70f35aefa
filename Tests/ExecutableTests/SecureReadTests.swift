import Foundation
import Testing
import TestSupport

/// `hesctl read` against `meter-sim` with the security flags (HLS, ciphering, counters) and in
/// IEC 62056-21 programming mode: both executables as a user runs them.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct SecureReadTests {
    static let keys = ["--block-cipher-key", "000102030405060708090A0B0C0D0E0F", "--auth-key", "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"]

    @Test("hesctl read --auth hls-gmac --security both reads clock, register and profile equal to meter-sim expect", arguments: ["wrapper", "hdlc"])
    func gmacCiphered(framing: String) async throws {
        let port = try freeLoopbackPort()
        let sim = try await MeterSimTransportTests.startSim(["--meters", "1", "--framing", framing, "--port", String(port), "--example-keys"])
        let (from, to) = MeterSimTransportTests.window()
        let physical = framing == "hdlc" ? ["--physical", "16", "--max-info", "128"] : []
        let output = try await MeterSimTransportTests.hesctl(["--tcp", "127.0.0.1:\(port)", "--framing", framing, "--client", "1", "--auth", "hls-gmac",
                                                     "--security", "both", "--obis", "1.0.1.8.0.255", "--profile", "1.0.99.1.0.255",
                                                     "--from", from, "--to", to] + physical + Self.keys)
        let expected = try await MeterSimTransportTests.expectedRows(meter: 0, from: from, to: to)
        #expect(MeterSimTransportTests.rows((output?["profile"] as? [String: Any])?["rows"]) == expected)
        #expect(((output?["association"] as? [String: Any])?["serverSystemTitle"] as? String)?.hasPrefix("535748") == true)   // "SWH"
        #expect(((output?["meter"] as? [String: Any])?["security"] as? String)?.contains("authenticated and encrypted") == true)
        await MeterSimTransportTests.stop(sim)
    }

    @Test("wrong key, wrong HLS secret, keys missing: refused with the step on stderr, nothing printed")
    func refusals() async throws {
        let port = try freeLoopbackPort()
        let sim = try await MeterSimTransportTests.startSim(["--meters", "1", "--port", String(port), "--example-keys"])
        let endpoint = ["--tcp", "127.0.0.1:\(port)", "--client", "1"]
        var wrongKey = Self.keys
        wrongKey[3] = "D0D1D2D3D4D5D6D7D8D9DADBDCDDDE00"
        let badKey = try await ChildProcess.run(product: "hesctl", arguments: ["read"] + endpoint + ["--auth", "hls-gmac"] + wrongKey, timeout: .seconds(60))
        #expect(badKey.status == 1, "\(badKey.stderr)")
        #expect(badKey.stderr.contains("associate failed"), "\(badKey.stderr)")
        #expect(badKey.stdout.isEmpty)
        #expect(!badKey.stderr.contains("D0D1D2D3"), "a key leaked into the message: \(badKey.stderr)")

        let badSecret = try await ChildProcess.run(product: "hesctl", arguments: ["read"] + endpoint + ["--auth", "hls-sha256", "--password", "nope"] + Self.keys,
                                                   timeout: .seconds(60))
        #expect(badSecret.status == 1, "\(badSecret.stderr)")
        #expect(badSecret.stderr.contains("associationRejected"), "\(badSecret.stderr)")

        let noKeys = try await ChildProcess.run(product: "hesctl", arguments: ["read"] + endpoint + ["--auth", "hls-gmac"], timeout: .seconds(60))
        #expect(noKeys.status == 64, "\(noKeys.stderr)")

        // The meter is still usable afterwards, with the right secret.
        _ = try await MeterSimTransportTests.hesctl(endpoint + ["--auth", "hls-md5", "--password", "Gurux", "--clock"])
        await MeterSimTransportTests.stop(sim)
    }

    @Test("a stale invocation counter: refused when trusted, read once a counter file keeps the client ahead")
    func staleCounter() async throws {
        let port = try freeLoopbackPort()
        let sim = try await MeterSimTransportTests.startSim(["--meters", "1", "--port", String(port), "--example-keys", "--fault-stale-counter-fraction", "1"])
        let counters = FileManager.default.temporaryDirectory.appendingPathComponent("hes-counters-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: counters) }
        let base = ["--tcp", "127.0.0.1:\(port)", "--client", "1", "--auth", "hls-gmac", "--clock"] + Self.keys
        _ = try await MeterSimTransportTests.hesctl(base + ["--invocation-counter", "5000", "--counter-file", counters])
        let stale = try await ChildProcess.run(product: "hesctl", arguments: ["read"] + base, timeout: .seconds(60))
        #expect(stale.status == 1, "\(stale.stderr)")
        _ = try await MeterSimTransportTests.hesctl(base + ["--counter-file", counters])
        let stored = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: counters))) as? [String: Int]
        #expect((stored?.values.first ?? 0) > 5000)
        await MeterSimTransportTests.stop(sim)
    }

    @Test("keys wrapped with the master key (hesctl key wrap) read the meter; the wrong master key is refused")
    func wrappedKeys() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hes-master-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let masterFile = directory.appendingPathComponent("master.hex").path
        try "00112233445566778899AABBCCDDEEFF\n".write(toFile: masterFile, atomically: true, encoding: .utf8)
        let environment = ["HES_MASTER_KEY_FILE": masterFile]
        func wrap(_ key: String) async throws -> String {
            let result = try await ChildProcess.run(product: "hesctl", arguments: ["key", "wrap", "--key", key], environment: environment, timeout: .seconds(30))
            #expect(result.status == 0, "\(result.stderr)")
            #expect(!result.stdout.contains(key))
            return result.stdout.split(separator: "\n").last.map(String.init) ?? ""
        }
        let ek = try await wrap(Self.keys[1])
        let ak = try await wrap(Self.keys[3])
        #expect(ek.hasPrefix("wrapped:") && ak.hasPrefix("wrapped:"))

        let port = try freeLoopbackPort()
        let sim = try await MeterSimTransportTests.startSim(["--meters", "1", "--port", String(port), "--example-keys"])
        let arguments = ["read", "--tcp", "127.0.0.1:\(port)", "--client", "1", "--auth", "hls-gmac", "--clock", "--block-cipher-key", ek, "--auth-key", ak]
        let read = try await ChildProcess.run(product: "hesctl", arguments: arguments, environment: environment, timeout: .seconds(60))
        #expect(read.status == 0, "\(read.stderr)")
        #expect(read.stdout.contains("\"clock\""))

        try "0F0E0D0C0B0A09080706050403020100\n".write(toFile: masterFile, atomically: true, encoding: .utf8)
        let refused = try await ChildProcess.run(product: "hesctl", arguments: arguments, environment: environment, timeout: .seconds(60))
        #expect(refused.status == 64, "\(refused.stderr)")
        #expect(refused.stderr.contains("does not unwrap"), "\(refused.stderr)")
        await MeterSimTransportTests.stop(sim)
    }

    @Test("hesctl read --framing iec21 --password: programming mode R1 registers and the EMH load profile from meter-sim")
    func iec21ProgrammingMode() async throws {
        let path = MeterSimTransportTests.linePath()
        let sim = try await MeterSimTransportTests.startSim(["--meters", "1", "--transport", "serial", "--framing", "iec21", "--quirk", "emh", "--line-path", path])
        let (from, to) = MeterSimTransportTests.window()
        let output = try await MeterSimTransportTests.hesctl(["--serial", path, "--framing", "iec21", "--password", "12345678", "--meter-profile", "emh",
                                                     "--obis", "1.8.0", "--obis", "2.8.0", "--profile", "P.01", "--from", from, "--to", to, "--timeout", "10"])
        #expect(output?["operand"] as? String == "SIM00000001")
        let sets = (output?["dataSets"] as? [[String: Any]]) ?? []
        #expect(sets.compactMap { $0["address"] as? String } == ["1.8.0", "2.8.0"])
        let profile = output?["profile"] as? [String: Any]
        let rows = (profile?["rows"] as? [[String: Any]]) ?? []
        let expected = try await MeterSimTransportTests.expectedRows(meter: 0, from: from, to: to)
        #expect(rows.count == expected.count, "\(rows.count) rows, expected \(expected.count)")
        #expect(rows.first?["time"] as? String == from)
        #expect(profile?["periodMinutes"] as? Int == 15)

        let refused = try await ChildProcess.run(product: "hesctl", arguments: ["read", "--serial", path, "--framing", "iec21", "--password", "wrong",
                                                                                "--obis", "1.8.0", "--timeout", "10"], timeout: .seconds(60))
        #expect(refused.status == 1, "\(refused.stderr)")
        #expect(refused.stderr.contains("associationRejected"), "\(refused.stderr)")
        await MeterSimTransportTests.stop(sim)
    }
}
