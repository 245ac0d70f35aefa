import Foundation
import Testing
import TestSupport

/// Our DLMS stack against an independent implementation, whole processes over real sockets:
/// Gurux's client (PyPI gurux-dlms, in a venv the test creates) reads our meter-sim; our
/// `hesctl read` reads Gurux's server (patched around its defects, Tests/Interop/gurux_meter.py)
/// and our meter-sim. Profile rows are compared with what each meter says it holds.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct InteropTests {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let interop = repositoryRoot.appendingPathComponent("Tests/Interop")

    /// The venv's interpreter (created on first use: needs PyPI once).
    static func python() async throws -> String {
        let result = try await ChildProcess.run(executable: "/bin/bash", name: "run_interop.sh",
                                                arguments: [interop.appendingPathComponent("run_interop.sh").path], timeout: .seconds(600))
        guard result.status == 0, let path = result.stdout.split(separator: "\n").last.map(String.init) else {
            throw ChildProcessError(reason: "creating the interop venv failed: \(result.stderr)")
        }
        return path
    }

    /// A profile window safely in the past, on 15-minute boundaries.
    static func window(hours: Int) -> (from: String, to: String, now: String) {
        let formatter = ISO8601DateFormatter()
        let end = (Date().timeIntervalSince1970 / 900).rounded(.down) * 900 - 3600
        return (formatter.string(from: Date(timeIntervalSince1970: end - Double(hours) * 3600)),
                formatter.string(from: Date(timeIntervalSince1970: end)),
                formatter.string(from: Date(timeIntervalSince1970: end + 3600)))
    }

    static func json(_ text: String) throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw ChildProcessError(reason: "not a JSON object: \(text.prefix(500))")
        }
        return object
    }

    /// Rows as comparable strings (numbers and ISO times print the same from every tool).
    static func rows(_ value: Any?) -> [String] {
        (value as? [[Any]] ?? []).map { row in row.map { "\($0)" }.joined(separator: ",") }
    }

    static func startMeterSim(framing: String) async throws -> (ChildProcess, port: Int) {
        let port = try freeLoopbackPort()
        let child = try ChildProcess(product: "meter-sim", arguments: [
            "--meters", "1", "--framing", framing, "--port", String(port), "--admin-port", "0",
        ])
        try await child.waitForOutput(containing: "meter-sim ready", timeout: .seconds(30))
        return (child, port)
    }

    static func expectedSimRows(from: String, to: String) async throws -> [String] {
        let expect = try await ChildProcess.run(product: "meter-sim", arguments: [
            "expect", "--meter", "0", "--profile", "1.0.99.1.0.255", "--from", from, "--to", to,
        ])
        #expect(expect.status == 0, "stderr: \(expect.stderr)")
        return rows(try json(expect.stdout)["rows"])
    }

    @Test("hesctl read reads meter-sim: clock, register, profile equal to meter-sim expect", arguments: ["wrapper", "hdlc"])
    func hesctlReadsMeterSim(framing: String) async throws {
        let (meter, port) = try await Self.startMeterSim(framing: framing)
        defer { meter.signal(SIGTERM) }
        let range = Self.window(hours: 6)
        var arguments = ["read", "--tcp", "127.0.0.1:\(port)", "--framing", framing, "--client", "17", "--password", "12345678",
                         "--clock", "--obis", "1.0.1.8.0.255", "--profile", "1.0.99.1.0.255", "--from", range.from, "--to", range.to]
        if framing == "hdlc" { arguments += ["--physical", "16", "--max-info", "128"] }
        let read = try await ChildProcess.run(product: "hesctl", arguments: arguments)
        #expect(read.status == 0, "stderr: \(read.stderr)")
        let output = try Self.json(read.stdout)
        let profile = output["profile"] as? [String: Any]
        let rows = Self.rows(profile?["rows"])
        #expect(rows.count == 25)
        #expect(rows == (try await Self.expectedSimRows(from: range.from, to: range.to)))
        #expect((output["clock"] as? [String: Any])?["time"] is String)
        #expect((output["registers"] as? [[String: Any]])?.first?["unit"] as? String == "Wh")
    }

    @Test("Gurux's client reads meter-sim: object list, clock, registers, profile equal to meter-sim expect", arguments: ["wrapper", "hdlc"])
    func guruxReadsMeterSim(framing: String) async throws {
        let python = try await Self.python()
        let (meter, port) = try await Self.startMeterSim(framing: framing)
        defer { meter.signal(SIGTERM) }
        let range = Self.window(hours: 4)
        var arguments = [Self.interop.appendingPathComponent("gurux_read.py").path, "--host", "127.0.0.1", "--port", String(port),
                         "--framing", framing, "--client", "17", "--password", "12345678", "--server", "1", "--max-info", "128",
                         "--register", "1.0.1.8.0.255", "--register", "1.0.2.8.0.255",
                         "--profile", "1.0.99.1.0.255", "--from", range.from, "--to", range.to]
        if framing == "hdlc" { arguments += ["--physical", "16"] }
        let read = try await ChildProcess.run(executable: python, name: "gurux_read.py", arguments: arguments, timeout: .seconds(60))
        #expect(read.status == 0, "stderr: \(read.stderr)")
        let output = try Self.json(read.stdout)
        let objects = output["objects"] as? [String] ?? []
        for code in ["0.0.40.0.0.255", "0.0.1.0.0.255", "1.0.1.8.0.255", "1.0.2.8.0.255", "1.0.99.1.0.255", "0.0.96.3.10.255"] {
            #expect(objects.contains(code), "object list lacks \(code): \(objects)")
        }
        #expect(output["clock"] is String)
        let rows = Self.rows((output["profile"] as? [String: Any])?["rows"])
        #expect(rows.count == 17)
        #expect(rows == (try await Self.expectedSimRows(from: range.from, to: range.to)))
    }

    @Test("hesctl read reads Gurux's server with 128-byte HDLC fields and 256-byte PDUs (segmentation and block transfer)", arguments: ["wrapper", "hdlc"])
    func hesctlReadsGurux(framing: String) async throws {
        let python = try await Self.python()
        let range = Self.window(hours: 12)
        let meter = try ChildProcess(executable: python, name: "gurux_meter.py", arguments: [
            Self.interop.appendingPathComponent("gurux_meter.py").path, "--port", "0", "--framing", framing, "--password", "12345678",
            "--max-pdu", "256", "--max-info", "128", "--physical", "17", "--now", range.now, "--days", "2",
        ])
        defer { meter.signal(SIGTERM) }
        try await meter.waitForOutput(containing: "READY", timeout: .seconds(60))
        let ready = try String(contentsOfFile: meter.stdoutPath, encoding: .utf8)
        guard let port = ready.split(separator: "\n").first(where: { $0.hasPrefix("READY") })?.split(separator: " ").last.flatMap({ Int($0) }) else {
            throw ChildProcessError(reason: "gurux_meter.py printed no port: \(ready)")
        }
        var arguments = ["read", "--tcp", "127.0.0.1:\(port)", "--framing", framing, "--client", "17", "--password", "12345678",
                         "--clock", "--obis", "1.0.2.8.0.255", "--profile", "1.0.99.1.0.255", "--from", range.from, "--to", range.to]
        if framing == "hdlc" { arguments += ["--physical", "17", "--max-info", "128"] }
        let read = try await ChildProcess.run(product: "hesctl", arguments: arguments)
        #expect(read.status == 0, "stderr: \(read.stderr)")
        let output = try Self.json(read.stdout)
        let register = (output["registers"] as? [[String: Any]])?.first
        #expect(register?["scaler"] as? Int == -3)

        let expect = try await ChildProcess.run(executable: python, name: "gurux_meter.py", arguments: [
            Self.interop.appendingPathComponent("gurux_meter.py").path, "--expect-profile", "--now", range.now, "--days", "2",
            "--from", range.from, "--to", range.to,
        ])
        #expect(expect.status == 0, "stderr: \(expect.stderr)")
        let expected = Self.rows(try Self.json(expect.stdout)["rows"])
        let rows = Self.rows((output["profile"] as? [String: Any])?["rows"])
        #expect(rows.count == 49)
        #expect(rows == expected)
    }
}
