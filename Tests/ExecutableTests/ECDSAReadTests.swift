import Foundation
import Testing
import TestSupport

/// `hesctl read --auth hls-ecdsa` against `meter-sim --signing-key … --client-public-key …`:
/// HLS mechanism 7 through both executables, keys as hex, from the environment and as
/// OpenSSL-written PEM files.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct ECDSAReadTests {
    /// Suite 1 (P-256) key pairs, generated with Python `cryptography` (Tests/Interop/capture_ecdsa.py).
    static let clientPrivate = "004FDB25169ECA03839E95EC77277E63AC2FC82E1B1455F21940F67D4FF4AB51"
    static let clientPublic = "04955CAFC61FA21657637E6C5A31FBB5E9EC59BFBF6795A916534C745901D890E14353EB800D223DB65E0871A7C3755BB42D37B1F0E2394E0E056BCC4946138064"
    static let meterPrivate = "0022A8E1F013DFA578E1580C1D99ECD097FD18A2A54719B2C451DD66B48C6A0B"
    static let meterPublic = "0463A07BCC9440DC313E97D0A92C51318C720A7E8D475C2F667BCFDDBF12E42BB22E6A9F13AE88D697369609D0F7EC8EB9470163CA3E3BC2DB793FFEFDC3E73D0F"

    /// A P-384 (suite 2) public key, for mismatches.
    static let p384Public = "044210D3AACEC1356F5D08E5DE14C940F040A5F7A82238E05263C598528F8631014EDFDB59C50D71008DE8BB960559C5AB3BF0A9F4FF11D124B0680B262C50331ED7A71328974F166F6A96A9E83C7098DF59AF40A379FF58C7E71DE9FA48D4BAF6"

    static func sim(port: Int, extra: [String] = []) async throws -> ChildProcess {
        try await MeterSimTransportTests.startSim(["--meters", "1", "--port", String(port), "--example-keys",
                                                   "--signing-key", meterPrivate, "--client-public-key", clientPublic] + extra)
    }

    @Test("suite 1: the clock and a register through HLS-ECDSA, in the clear and ciphered; the meter public key from the environment")
    func suite1() async throws {
        let port = try freeLoopbackPort()
        let sim = try await Self.sim(port: port)
        let base = ["--tcp", "127.0.0.1:\(port)", "--client", "1", "--auth", "hls-ecdsa", "--signing-key", Self.clientPrivate]
        let output = try await MeterSimTransportTests.hesctl(base + ["--meter-public-key", Self.meterPublic, "--clock", "--obis", "1.0.1.8.0.255"])
        #expect((output?["clock"] as? [String: Any])?["time"] as? String != nil)
        #expect(((output?["meter"] as? [String: Any])?["authentication"] as? String) == "hls-ecdsa")
        #expect(((output?["association"] as? [String: Any])?["serverSystemTitle"] as? String)?.hasPrefix("535748") == true)
        #expect((output?["registers"] as? [Any])?.count == 1)

        let ciphered = try await ChildProcess.run(product: "hesctl", arguments: ["read"] + base + SecureReadTests.keys + ["--security", "both", "--clock"],
                                                  environment: ["HES_DLMS_METER_PUBLIC_KEY": Self.meterPublic], timeout: .seconds(60))
        #expect(ciphered.status == 0, "\(ciphered.stderr)")
        #expect(ciphered.stdout.contains("authenticated and encrypted"), "\(ciphered.stdout)")
        await MeterSimTransportTests.stop(sim)
    }

    @Test("suite 2: P-384 keys from PEM files written by openssl, on both sides", .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl")))
    func suite2PEM() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hes-ecdsa-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        func openssl(_ arguments: [String]) async throws {
            let result = try await ChildProcess.run(executable: "/usr/bin/openssl", name: "openssl", arguments: arguments, timeout: .seconds(30))
            #expect(result.status == 0, "openssl \(arguments): \(result.stderr)")
        }
        for party in ["client", "meter"] {
            let key = directory.appendingPathComponent("\(party).pem").path
            try await openssl(["ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", key])
            try await openssl(["ec", "-in", key, "-pubout", "-out", directory.appendingPathComponent("\(party).pub.pem").path])
        }
        func file(_ name: String) -> String { "@" + directory.appendingPathComponent(name).path }
        let port = try freeLoopbackPort()
        let sim = try await MeterSimTransportTests.startSim(["--meters", "1", "--port", String(port), "--example-keys",
                                                             "--signing-key", file("meter.pem"), "--client-public-key", file("client.pub.pem")])
        let base = ["--tcp", "127.0.0.1:\(port)", "--client", "1", "--auth", "hls-ecdsa", "--clock"]
        let output = try await MeterSimTransportTests.hesctl(base + ["--signing-key", file("client.pem"), "--meter-public-key", file("meter.pub.pem")])
        #expect((output?["clock"] as? [String: Any])?["time"] as? String != nil)
        // The meter's own key is not the client's: swapping them is refused by the client.
        let swapped = try await ChildProcess.run(product: "hesctl", arguments: ["read"] + base + ["--signing-key", file("client.pem"), "--meter-public-key", file("client.pub.pem")],
                                                 timeout: .seconds(60))
        #expect(swapped.status == 1, "\(swapped.stderr)")
        #expect(swapped.stderr.contains("securityFailed"), "\(swapped.stderr)")
        await MeterSimTransportTests.stop(sim)
    }

    @Test("a wrong client key, a wrong meter key, missing or mismatched keys: refused with the step on stderr, no key quoted, the meter still usable")
    func refusals() async throws {
        let port = try freeLoopbackPort()
        let sim = try await Self.sim(port: port)
        let endpoint = ["--tcp", "127.0.0.1:\(port)", "--client", "1", "--auth", "hls-ecdsa", "--clock"]
        let otherKey = "00" + String(repeating: "5A", count: 31)

        let wrongClient = try await ChildProcess.run(product: "hesctl", arguments: ["read"] + endpoint + ["--signing-key", otherKey, "--meter-public-key", Self.meterPublic],
                                                     timeout: .seconds(60))
        #expect(wrongClient.status == 1, "\(wrongClient.stderr)")
        #expect(wrongClient.stderr.contains("associate failed: associationRejected"), "\(wrongClient.stderr)")
        #expect(wrongClient.stdout.isEmpty)
        #expect(!wrongClient.stderr.contains("5A5A5A"), "a key leaked into the message: \(wrongClient.stderr)")

        // The meter signs with its key, but we hold another meter's public key.
        let otherMeterPublic = Self.clientPublic
        let wrongMeter = try await ChildProcess.run(product: "hesctl", arguments: ["read"] + endpoint + ["--signing-key", Self.clientPrivate, "--meter-public-key", otherMeterPublic],
                                                    timeout: .seconds(60))
        #expect(wrongMeter.status == 1, "\(wrongMeter.stderr)")
        #expect(wrongMeter.stderr.contains("associate failed: securityFailed"), "\(wrongMeter.stderr)")
        #expect(!wrongMeter.stderr.contains(String(Self.clientPrivate.dropFirst(2).prefix(16))), "a key leaked into the message: \(wrongMeter.stderr)")

        let missing = try await ChildProcess.run(product: "hesctl", arguments: ["read"] + endpoint + ["--signing-key", Self.clientPrivate], timeout: .seconds(60))
        #expect(missing.status == 64, "\(missing.stderr)")
        #expect(missing.stderr.contains("--meter-public-key"), "\(missing.stderr)")

        let p384Private = "00" + String(repeating: "11", count: 47)
        let mixed = try await ChildProcess.run(product: "hesctl", arguments: ["read"] + endpoint + ["--signing-key", p384Private, "--meter-public-key", Self.meterPublic],
                                               timeout: .seconds(60))
        #expect(mixed.status == 64, "\(mixed.stderr)")
        #expect(mixed.stderr.contains("P-384") && mixed.stderr.contains("P-256"), "\(mixed.stderr)")

        let badHex = try await ChildProcess.run(product: "hesctl", arguments: ["read"] + endpoint + ["--signing-key", Self.clientPrivate.dropLast(2) + "ZZ", "--meter-public-key", Self.meterPublic],
                                                timeout: .seconds(60))
        #expect(badHex.status == 64, "\(badHex.stderr)")
        #expect(!badHex.stderr.contains(String(Self.clientPrivate.dropFirst(2).prefix(16))), "a key leaked into the message: \(badHex.stderr)")

        _ = try await MeterSimTransportTests.hesctl(endpoint + ["--signing-key", Self.clientPrivate, "--meter-public-key", Self.meterPublic])
        await MeterSimTransportTests.stop(sim)
    }

    @Test("meter-sim: --signing-key without --client-public-key, keys of two curves, or without the suite 0 keys are usage errors")
    func simValidation() async throws {
        for arguments in [["--example-keys", "--signing-key", Self.meterPrivate],
                          ["--example-keys", "--signing-key", Self.meterPrivate, "--client-public-key", Self.p384Public],
                          ["--signing-key", Self.meterPrivate, "--client-public-key", Self.clientPublic],
                          ["--client-public-key", Self.clientPublic]] {
            let result = try await ChildProcess.run(product: "meter-sim", arguments: ["--meters", "1", "--port", "0", "--admin-port", "0"] + arguments, timeout: .seconds(30))
            #expect(result.status == 64, "\(arguments): \(result.stderr)")
            #expect(!result.stderr.contains(String(Self.meterPrivate.dropFirst(2).prefix(16))), "a key leaked into the message: \(result.stderr)")
        }
    }
}
