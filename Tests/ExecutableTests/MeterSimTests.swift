#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Testing
import TestSupport

/// Sends `request` to 127.0.0.1:`port` and returns what arrives until `expected` bytes came
/// (or the 5 s receive timeout passes).
private func exchange(port: Int, _ request: [UInt8], expected: Int) throws -> [UInt8] {
    let socketDescriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard socketDescriptor >= 0 else { throw MeterSimTestError(reason: "socket() failed") }
    defer { close(socketDescriptor) }
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(socketDescriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socketDescriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { throw MeterSimTestError(reason: "connect to port \(port) failed: errno \(errno)") }
    _ = request.withUnsafeBytes { send(socketDescriptor, $0.baseAddress, $0.count, 0) }
    var response: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while response.count < expected {
        let count = chunk.withUnsafeMutableBytes { recv(socketDescriptor, $0.baseAddress, $0.count, 0) }
        if count <= 0 { break }
        response.append(contentsOf: chunk[0..<count])
    }
    return response
}

private struct MeterSimTestError: Error { let reason: String }

/// The meter-sim executable: serves wrapper and HDLC meters, prints expected values, stops on
/// SIGTERM, rejects bad flags.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct MeterSimTests {
    /// An LLS AARQ (password 12345678) as the Gurux client sends it.
    static let aarq = hexBytes("6036A1090607608574050801018A0207808B0760857405080201AC0A80083132333435363738BE10040E01000000065F1F0400401E5D0400")

    @Test func wrapperAARQGetsAcceptedAAREFromEachMeterAndStopsOnSIGTERM() async throws {
        let port = try freeLoopbackPorts(count: 3)
        let adminPort = try freeLoopbackPort()
        let child = try ChildProcess(product: "meter-sim", arguments: [
            "--meters", "3", "--framing", "wrapper", "--port", String(port), "--admin-port", String(adminPort)])
        try await child.waitForOutput(containing: "meter-sim ready: 3 meter(s)", timeout: .seconds(20))

        for meter in 0..<3 {
            // wPort source 17 (management client), destination 1, length, AARQ.
            let request = [0x00, 0x01, 0x00, 0x11, 0x00, 0x01, 0x00, UInt8(Self.aarq.count)] + Self.aarq
            let response = try exchange(port: port + meter, request, expected: 8)
            #expect(Array(response.prefix(6)) == [0x00, 0x01, 0x00, 0x01, 0x00, 0x11], "meter \(meter): \(response)")
            #expect(response.count > 8 && response[8] == 0x61, "meter \(meter): no AARE: \(response)")
            // result (A2 03 02 01 00): accepted
            let aare = Array(response.dropFirst(8))
            #expect(aare.windowsContains([0xA2, 0x03, 0x02, 0x01, 0x00]), "meter \(meter): not accepted: \(aare)")
        }

        let metrics = try httpGet(port: adminPort, path: "/metrics")
        #expect(metrics.body.contains("hes_sim_sessions_total 3"), "metrics: \(metrics.body)")
        #expect(metrics.body.contains("hes_sim_requests_total"))
        #expect(metrics.body.contains("hes_sim_connections_open"))
        #expect(try httpGet(port: adminPort, path: "/readyz").status == 200)
        let meters = try httpGet(port: adminPort, path: "/meters")
        #expect(meters.status == 200)
        let list = try JSONSerialization.jsonObject(with: Data(meters.body.utf8)) as? [[String: Any]]
        #expect(list?.map { $0["serial"] as? String } == ["SIM00000001", "SIM00000002", "SIM00000003"])
        #expect(list?.allSatisfy { $0["sessions"] as? Int == 1 } == true, "\(meters.body)")
        #expect(list?.first?["address"] as? String == "127.0.0.1:\(port)")

        child.signal(SIGTERM)
        #expect(await child.waitForExit(timeout: .seconds(5)) == 0, "stderr: \(child.standardError)")
    }

    @Test func hdlcSNRMGetsUA() async throws {
        let port = try freeLoopbackPorts(count: 2)
        let child = try ChildProcess(product: "meter-sim", arguments: [
            "--meters", "2", "--framing", "hdlc", "--port", String(port), "--admin-port", "0"])
        try await child.waitForOutput(containing: "meter-sim ready: 2 meter(s)", timeout: .seconds(20))
        // Meter 1 has physical address 16 + 1 = 17: the Gurux SNRM to 1/17 from client 16.
        let response = try exchange(port: port + 1, hexBytes("7EA00802232193BD647E"), expected: 33)
        #expect(response.count == 33, "\(response)")
        #expect(response.first == 0x7E && response.last == 0x7E)
        #expect(response.count > 6 && response[6] == 0x73, "not a UA: \(response)")  // 7E A0 1F, client 21, server 02 23, control 73
        child.signal(SIGTERM)
        #expect(await child.waitForExit(timeout: .seconds(5)) == 0, "stderr: \(child.standardError)")
    }

    @Test func expectPrintsValidJSON() async throws {
        let profile = try await ChildProcess.run(product: "meter-sim", arguments: [
            "expect", "--meter", "SIM00000001", "--profile", "1.0.99.1.0.255",
            "--from", "2026-11-26T00:00:00Z", "--to", "2026-11-26T01:00:00Z"])
        #expect(profile.status == 0, "stderr: \(profile.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(profile.stdout.utf8)) as? [String: Any]
        #expect(object?["meter"] as? String == "SIM00000001")
        #expect((object?["columns"] as? [String])?.count == 4)
        let rows = object?["rows"] as? [[Any]]
        #expect(rows?.count == 5)
        #expect(rows?.first?.first as? String == "2026-11-26T00:00:00Z")

        let register = try await ChildProcess.run(product: "meter-sim", arguments: [
            "expect", "--meter", "0", "--obis", "1.0.1.8.0.255", "--at", "2026-11-26T00:30:00Z"])
        #expect(register.status == 0, "stderr: \(register.stderr)")
        let value = try JSONSerialization.jsonObject(with: Data(register.stdout.utf8)) as? [String: Any]
        #expect(value?["meter"] as? String == "SIM00000001")
        #expect(value?["value"] is NSNumber)
    }

    @Test(arguments: [["--framing", "serial"], ["--meters", "0"], ["--bogus"], ["--fault-drop-fraction", "2"]])
    func badFlagsExit64(arguments: [String]) async throws {
        let result = try await ChildProcess.run(product: "meter-sim", arguments: arguments + ["--admin-port", "0"])
        #expect(result.status == 64, "status \(result.status), stderr: \(result.stderr)")
    }
}

private extension Array where Element == UInt8 {
    func windowsContains(_ needle: [UInt8]) -> Bool {
        guard needle.count <= count else { return false }
        return (0...(count - needle.count)).contains { Array(self[$0..<$0 + needle.count]) == needle }
    }
}

// MARK: - Transports, serial lines, IEC 62056-21, families, fleet files

/// A client end of a serial line for scripted exchanges: opens the device raw and reads with
/// a deadline.
private final class LineClient {
    let descriptor: Int32

    init(path: String) throws {
        descriptor = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK)
        guard descriptor >= 0 else { throw MeterSimTestError(reason: "open \(path): errno \(errno)") }
        var options = termios()
        tcgetattr(descriptor, &options)
        cfmakeraw(&options)
        tcsetattr(descriptor, TCSANOW, &options)
    }

    deinit { close(descriptor) }

    func write(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
    }

    /// Reads until `count` bytes arrived, or until the line is quiet for `quiet` after the
    /// first byte, or `timeout` passes.
    func read(count: Int = .max, timeout: Duration = .seconds(10), quiet: Duration = .milliseconds(400)) -> [UInt8] {
        var collected: [UInt8] = []
        let deadline = ContinuousClock.now + timeout
        var lastByte = ContinuousClock.now
        while collected.count < count, ContinuousClock.now < deadline {
            if !collected.isEmpty, ContinuousClock.now - lastByte > quiet { break }
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 20) > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, min($0.count, count - collected.count)) }
            if n > 0 {
                collected += chunk[..<n]
                lastByte = ContinuousClock.now
            }
        }
        return collected
    }
}

/// `SOH C D [STX data] ETX BCC` as a client sends it.
private func command(_ code: String, _ data: String?) -> [UInt8] {
    var body = Array(code.utf8)
    if let data { body += [0x02] + Array(data.utf8) }
    body.append(0x03)
    return [0x01] + body + [body.reduce(0, ^)]
}

/// `STX text ETX BCC`.
private func dataBlock(_ text: String) -> [UInt8] {
    let body = Array(text.utf8) + [0x03]
    return [0x02] + body + [body.reduce(0, ^)]
}

/// meter-sim's transports, serial lines, IEC 62056-21, meter families and fleet files, read by
/// the real `hesctl read` (and, for programming mode, a scripted client); values are checked
/// against `meter-sim expect`.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct MeterSimTransportTests {
    static let serialOBIS = "0.0.96.1.0.255"

    static func startSim(_ arguments: [String]) async throws -> ChildProcess {
        let child = try ChildProcess(product: "meter-sim", arguments: arguments + (arguments.contains("--admin-port") ? [] : ["--admin-port", "0"]))
        try await child.waitForOutput(containing: "meter-sim ready", timeout: .seconds(30))
        return child
    }

    static func stop(_ child: ChildProcess) async {
        child.signal(SIGTERM)
        let status = await child.waitForExit(timeout: .seconds(5))
        #expect(status == 0, "meter-sim exit \(String(describing: status)), stderr: \(child.standardError.suffix(2000))")
    }

    static func json(_ text: String) throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw MeterSimTestError(reason: "not a JSON object: \(text.prefix(500))")
        }
        return object
    }

    /// Runs `hesctl read` and returns its JSON; records a failure (and returns nil) on a non-zero exit.
    static func hesctl(_ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) async throws -> [String: Any]? {
        let result = try await ChildProcess.run(product: "hesctl", arguments: ["read"] + arguments, timeout: .seconds(90))
        #expect(result.status == 0, "hesctl read \(arguments.joined(separator: " ")): \(result.stderr)", sourceLocation: sourceLocation)
        return result.status == 0 ? try json(result.stdout) : nil
    }

    /// A one-hour profile window safely in the past, on 15-minute boundaries.
    static func window() -> (from: String, to: String) {
        let formatter = ISO8601DateFormatter()
        let end = (Date().timeIntervalSince1970 / 900).rounded(.down) * 900 - 3600
        return (formatter.string(from: Date(timeIntervalSince1970: end - 3600)), formatter.string(from: Date(timeIntervalSince1970: end)))
    }

    static func rows(_ value: Any?) -> [String] {
        (value as? [[Any]] ?? []).map { row in row.map { "\($0)" }.joined(separator: ",") }
    }

    static func expectedRows(meter: Int, from: String, to: String) async throws -> [String] {
        let expect = try await ChildProcess.run(product: "meter-sim", arguments: [
            "expect", "--meter", String(meter), "--profile", "1.0.99.1.0.255", "--from", from, "--to", to,
        ])
        #expect(expect.status == 0, "stderr: \(expect.stderr)")
        return rows(try json(expect.stdout)["rows"])
    }

    static func serial(_ meter: Int) -> String {
        let number = String(meter + 1)
        return "SIM" + String(repeating: "0", count: 8 - number.count) + number
    }

    /// Reads meter `meter`'s serial number and a one-hour load profile through `endpoint` and
    /// checks both against what the meter says it holds.
    static func readAndCheck(_ endpoint: [String], meter: Int, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let (from, to) = window()
        guard let output = try await hesctl(endpoint + ["--client", "17", "--password", "12345678", "--obis", serialOBIS,
                                                        "--profile", "1.0.99.1.0.255", "--from", from, "--to", to],
                                            sourceLocation: sourceLocation) else { return }
        let registers = output["registers"] as? [[String: Any]]
        #expect(registers?.first?["raw"] as? String == serial(meter), "\(endpoint): \(String(describing: registers))", sourceLocation: sourceLocation)
        let profile = output["profile"] as? [String: Any]
        let read = rows(profile?["rows"])
        #expect(read.count == 5, "\(endpoint): \(read)", sourceLocation: sourceLocation)
        #expect(read == (try await expectedRows(meter: meter, from: from, to: to)), "\(endpoint)", sourceLocation: sourceLocation)
    }

    static func linePath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("hes-line-\(UUID().uuidString.prefix(8))").path
    }

    @Test("wrapper over UDP: one socket per meter, one wrapper frame per datagram")
    func wrapperOverUDP() async throws {
        let port = try freeLoopbackPorts(count: 2)
        let sim = try await Self.startSim(["--meters", "2", "--transport", "udp", "--port", String(port)])
        for meter in 0..<2 {
            try await Self.readAndCheck(["--udp", "127.0.0.1:\(port + meter)"], meter: meter)
        }
        await Self.stop(sim)
    }

    @Test("UDP serial gateway: three HDLC meters behind one port, told apart by physical address")
    func gatewayUDP() async throws {
        let port = try freeLoopbackPort()
        let sim = try await Self.startSim(["--meters", "3", "--transport", "gateway-udp", "--meters-per-line", "3",
                                           "--hdlc-physical-base", "17", "--port", String(port)])
        for meter in [2, 0, 1] {
            try await Self.readAndCheck(["--gateway-udp", "127.0.0.1:\(port)", "--physical", String(17 + meter)], meter: meter)
        }
        await Self.stop(sim)
    }

    @Test("HDLC over meter-sim's pseudo-terminal: three meters on one multi-drop line")
    func hdlcMultiDropLine() async throws {
        let path = Self.linePath()
        let sim = try await Self.startSim(["--meters", "3", "--transport", "serial", "--framing", "hdlc", "--meters-per-line", "3",
                                           "--hdlc-physical-base", "17", "--line-path", path])
        #expect(sim.standardError.contains("line-0: \(path) → /dev/pts/"), "\(sim.standardError)")
        let target = try FileManager.default.destinationOfSymbolicLink(atPath: path)
        #expect(target.hasPrefix("/dev/pts/"))
        for meter in 0..<3 {
            try await Self.readAndCheck(["--serial", path, "--physical", String(17 + meter)], meter: meter)
        }
        await Self.stop(sim)
        #expect(!FileManager.default.fileExists(atPath: path), "the line's link is removed on exit")
    }

    @Test("bus contention: two meters with one physical address corrupt each other's answers; reported in log and metric")
    func busContention() async throws {
        let path = Self.linePath()
        let adminPort = try freeLoopbackPort()
        let sim = try await Self.startSim(["--meters", "3", "--transport", "serial", "--meters-per-line", "3",
                                           "--physical-addresses", "17,17,18", "--line-path", path, "--admin-port", String(adminPort)])
        #expect(sim.standardError.contains("meters SIM00000001, SIM00000002 share HDLC physical address 17"))
        let collided = try await ChildProcess.run(product: "hesctl", arguments: [
            "read", "--serial", path, "--physical", "17", "--timeout", "2"])
        #expect(collided.status != 0, "a read through colliding answers succeeded: \(collided.stdout)")
        // The third meter, alone at its address, still reads.
        try await Self.readAndCheck(["--serial", path, "--physical", "18"], meter: 2)
        #expect(sim.standardError.contains("bus contention on line line-0: meters SIM00000001, SIM00000002 answered the same frame"))
        let metrics = try httpGet(port: adminPort, path: "/metrics").body
        let count = metrics.split(separator: "\n").first { $0.hasPrefix("hes_sim_bus_contentions_total ") }
            .flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
        #expect(count >= 1, "\(metrics)")
        await Self.stop(sim)
    }

    @Test("bus contention: a frame sent while a meter still transmits cuts the transmission off and is reported")
    func contentionWhileTransmitting() async throws {
        let path = Self.linePath()
        let adminPort = try freeLoopbackPort()
        let sim = try await Self.startSim(["--meters", "1", "--transport", "serial", "--baud", "300", "--line-path", path,
                                           "--admin-port", String(adminPort)])
        let line = try LineClient(path: path)
        // SNRM to 1/16 from client 16: the UA (with parameters, ~30 bytes) takes a second at 300 Bd.
        line.write(hexBytes("7EA0080221219305D17E"))
        let first = line.read(timeout: .milliseconds(300), quiet: .seconds(1))
        line.write(hexBytes("7EA0080221219305D17E"))
        let rest = line.read(timeout: .seconds(3))
        #expect(!first.isEmpty && first.count + rest.count < 30, "the meter kept transmitting: \(first) \(rest)")
        #expect(try await eventually(timeout: .seconds(3)) { sim.standardError.contains("arrived while a meter was still transmitting") },
                "\(sim.standardError)")
        #expect(try httpGet(port: adminPort, path: "/metrics").body.contains("hes_sim_bus_contentions_total 1"))
        await Self.stop(sim)
    }

    @Test("IEC 62056-21 readout through the UDP serial gateway")
    func iec21OverGateway() async throws {
        let port = try freeLoopbackPort()
        let sim = try await Self.startSim(["--meters", "1", "--transport", "gateway-udp", "--framing", "iec21", "--port", String(port)])
        let output = try await Self.hesctl(["--gateway-udp", "127.0.0.1:\(port)", "--framing", "iec21"])
        #expect(output?["identification"] as? String == "SIM00000001")
        #expect((output?["dataSets"] as? [[String: Any]])?.contains { $0["address"] as? String == "1.8.0" } == true)
        await Self.stop(sim)
    }

    @Test("IEC 62056-21 mode C readout over a pseudo-terminal: registers equal meter-sim expect at the readout's time")
    func iec21Readout() async throws {
        let path = Self.linePath()
        let sim = try await Self.startSim(["--meters", "2", "--transport", "serial", "--framing", "iec21", "--line-path", path])
        // Two lines of one meter each: the second meter's line is path-1.
        guard let output = try await Self.hesctl(["--serial", "\(path)-1", "--framing", "iec21", "--timeout", "10"]) else { return }
        #expect(output["manufacturer"] as? String == "SIM")
        #expect(output["identification"] as? String == "SIM00000002")
        let sets = (output["dataSets"] as? [[String: Any]] ?? []).reduce(into: [String: (String, String?)]()) { result, set in
            let value = (set["values"] as? [[String: Any]])?.first
            result[set["address"] as? String ?? ""] = (value?["value"] as? String ?? "", value?["unit"] as? String)
        }
        #expect(sets["C.1.0"]?.0 == "SIM00000002")
        let time = try #require(sets["0.9.1"]?.0), date = try #require(sets["0.9.2"]?.0)
        let at = "20\(date.prefix(2))-\(date.dropFirst(2).prefix(2))-\(date.suffix(2))T\(time.prefix(2)):\(time.dropFirst(2).prefix(2)):\(time.suffix(2))Z"
        for (address, obis) in [("1.8.0", "1.0.1.8.0.255"), ("1.8.1", "1.0.1.8.1.255"), ("1.8.2", "1.0.1.8.2.255"), ("2.8.0", "1.0.2.8.0.255")] {
            let expect = try await ChildProcess.run(product: "meter-sim", arguments: ["expect", "--meter", "1", "--obis", obis, "--at", at])
            let wh = try #require(try Self.json(expect.stdout)["value"] as? Int)
            let kWh = String(format: "%010.3f", Double(wh) / 1000)
            #expect(sets[address]?.0 == kWh, "\(address) at \(at): \(String(describing: sets[address])) vs \(wh) Wh")
            #expect(sets[address]?.1 == "kWh")
        }
        await Self.stop(sim)
    }

    @Test("IEC 62056-21 on a multi-drop line: each meter answers its own device address; a sign-on without address collides")
    func iec21MultiDrop() async throws {
        let path = Self.linePath()
        let sim = try await Self.startSim(["--meters", "2", "--transport", "serial", "--framing", "iec21", "--meters-per-line", "2",
                                           "--line-path", path])
        for meter in [1, 0] {
            let output = try await Self.hesctl(["--serial", path, "--framing", "iec21", "--device-address", Self.serial(meter)])
            #expect(output?["identification"] as? String == Self.serial(meter))
        }
        let collided = try await ChildProcess.run(product: "hesctl", arguments: ["read", "--serial", path, "--framing", "iec21", "--timeout", "3"])
        #expect(collided.status != 0, "\(collided.stdout)")
        #expect(sim.standardError.contains("bus contention on line line-0: meters SIM00000001, SIM00000002 answered the same frame"))
        await Self.stop(sim)
    }

    @Test("IEC 62056-21 mode E: sign-on at 300 Bd, ACK 2 Z 2, then an HDLC association on the same line")
    func iec21ModeE() async throws {
        let path = Self.linePath()
        let sim = try await Self.startSim(["--meters", "1", "--transport", "serial", "--framing", "iec21", "--line-path", path])
        try await Self.readAndCheck(["--serial", path, "--optical", "--physical", "16"], meter: 0)
        // After the DISC the meter is back at 300 Bd and answers a readout.
        let readout = try await Self.hesctl(["--serial", path, "--framing", "iec21"])
        #expect(readout?["identification"] as? String == "SIM00000001")
        await Self.stop(sim)
    }

    @Test("IEC 62056-21 programming mode, byte-exact: P0, P1, R1, R5 P.01 (EMH family), B0")
    func iec21ProgrammingMode() async throws {
        let path = Self.linePath()
        let sim = try await Self.startSim(["--meters", "1", "--transport", "serial", "--framing", "iec21", "--quirk", "emh", "--line-path", path])
        let line = try LineClient(path: path)
        line.write(Array("/?00000001!\r\n".utf8))
        #expect(line.read(count: 21) == Array("/EMH5\\2LZQJ00000001\r\n".utf8))
        line.write([0x06, 0x30, 0x35, 0x31, 0x0D, 0x0A])
        #expect(line.read(count: 19) == command("P0", "(SIM00000001)"))
        line.write(command("P1", "(12345678)"))
        #expect(line.read(count: 1) == [0x06])
        line.write(command("R1", "1.8.0()"))
        let reply = line.read()
        #expect(reply.first == 0x02 && reply.dropLast().last == 0x03)
        #expect(reply.last == reply.dropFirst().dropLast().reduce(0, ^), "BCC of \(reply)")
        let text = String(decoding: reply.dropFirst().dropLast(2), as: UTF8.self)
        #expect(text.hasPrefix("1.8.0(") && text.hasSuffix("*kWh)"), "\(text)")

        let (from, to) = Self.window()
        func compact(_ iso: String) -> String { iso.filter(\.isNumber).dropFirst(2).prefix(10).description }
        line.write(command("R5", "P.01(\(compact(from));\(compact(to)))"))
        let profile = line.read()
        let expected = try await Self.expectedRows(meter: 0, from: from, to: to)
        let lines = String(decoding: profile.dropFirst().dropLast(2), as: UTF8.self).components(separatedBy: "\r\n")
        #expect(lines.first == "P.01(0\(compact(from))00)(00)(15)(2)(1.5.0)(kW)(2.5.0)(kW)", "\(lines)")
        #expect(lines.count == expected.count + 1)
        #expect(profile.last == profile.dropFirst().dropLast().reduce(0, ^))
        line.write(command("W1", "1.8.0(0)"))
        #expect(line.read() == dataBlock("(ERROR)"))
        line.write(command("B0", nil))
        #expect(line.read(timeout: .milliseconds(600)).isEmpty)
        // Idle again: a wrong password ends the next session with B0.
        line.write(Array("/?!\r\n".utf8))
        _ = line.read(count: 21)
        line.write([0x06, 0x30, 0x35, 0x31, 0x0D, 0x0A])
        _ = line.read(count: 19)
        line.write(command("P1", "(wrong)"))
        #expect(line.read() == command("B0", nil))
        await Self.stop(sim)
    }

    @Test("slow baud fault: the readout is paced at the slower rate")
    func slowBaud() async throws {
        let path = Self.linePath()
        let sim = try await Self.startSim(["--meters", "1", "--transport", "serial", "--framing", "iec21", "--line-path", path,
                                           "--fault-slow-baud", "1200"])
        let started = ContinuousClock.now
        let output = try await Self.hesctl(["--serial", path, "--framing", "iec21"])
        let elapsed = ContinuousClock.now - started
        #expect(output?["identification"] as? String == "SIM00000001")
        // ~170 bytes of readout at 1200 Bd take ~1.4 s (at 9600 Bd 0.18 s).
        #expect(elapsed > .seconds(1.2), "readout took \(elapsed)")
        await Self.stop(sim)
    }

    @Test("meter families read with the matching hesctl --meter-profile", arguments: [
        (["--framing", "hdlc", "--quirk", "four-byte-address"], ["--framing", "hdlc", "--physical", "16", "--meter-profile", "four-byte-address"]),
        (["--framing", "hdlc", "--quirk", "disc-only"], ["--framing", "hdlc", "--physical", "16", "--meter-profile", "disc-only"]),
        (["--framing", "wrapper", "--quirk", "disc-only"], ["--meter-profile", "disc-only"]),
        (["--framing", "hdlc", "--quirk", "wrapper-only"], ["--framing", "wrapper"]),
        (["--framing", "wrapper", "--quirk", "gurux"], ["--meter-profile", "gurux"]),
        (["--framing", "hdlc", "--quirk", "gurux"], ["--framing", "hdlc", "--physical", "16", "--meter-profile", "gurux"]),
    ])
    func families(sim simArguments: [String], client: [String]) async throws {
        let port = try freeLoopbackPort()
        let sim = try await Self.startSim(["--meters", "1", "--port", String(port)] + simArguments)
        try await Self.readAndCheck(["--tcp", "127.0.0.1:\(port)"] + client, meter: 0)
        await Self.stop(sim)
    }

    @Test("the gurux family's short RLRE fails the standard profile's release (which --meter-profile gurux skips)")
    func guruxReleaseNeedsItsProfile() async throws {
        let port = try freeLoopbackPort()
        let sim = try await Self.startSim(["--meters", "1", "--port", String(port), "--quirk", "gurux"])
        let result = try await ChildProcess.run(product: "hesctl", arguments: [
            "read", "--tcp", "127.0.0.1:\(port)", "--client", "17", "--password", "12345678", "--verbose"])
        #expect(result.stderr.contains("RLRE") && result.stderr.contains("release failed"), "\(result.stderr)")
        await Self.stop(sim)
    }

    @Test("a four-byte-address meter does not answer the standard profile's SNRM")
    func fourByteAddressNeedsItsProfile() async throws {
        let port = try freeLoopbackPort()
        let sim = try await Self.startSim(["--meters", "1", "--port", String(port), "--framing", "hdlc", "--quirk", "four-byte-address"])
        let result = try await ChildProcess.run(product: "hesctl", arguments: [
            "read", "--tcp", "127.0.0.1:\(port)", "--framing", "hdlc", "--physical", "16", "--timeout", "2"])
        #expect(result.status != 0, "\(result.stdout)")
        await Self.stop(sim)
    }

    @Test("fleet file: groups with their transports and fault mix; refusing associations switched through the admin interface")
    func fleetFileAndRuntimeRefusal() async throws {
        let port = try freeLoopbackPorts(count: 8), adminPort = try freeLoopbackPort()
        let path = Self.linePath()
        let fleet = """
            {"seed": 0, "groups": [
              {"count": 8, "transport": "tcp", "framing": "wrapper", "port": \(port),
               "faults": {"clockDrift": "-90s", "clockDriftFraction": 0.5}},
              {"count": 2, "transport": "serial", "framing": "hdlc", "metersPerLine": 2, "physicalBase": 17, "linePath": "\(path)"}
            ]}
            """
        let file = Self.linePath() + ".json"
        try fleet.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let sim = try await Self.startSim(["--fleet", file, "--admin-port", String(adminPort)])
        #expect(sim.standardError.contains("meter-sim ready: 10 meter(s)"))

        let meters = try JSONSerialization.jsonObject(with: Data(httpGet(port: adminPort, path: "/meters").body.utf8)) as? [[String: Any]] ?? []
        #expect(meters.count == 10)
        // The seeded draw picks meters 5 and 8 of the eight (the same on every run).
        let drifting = meters.prefix(8).filter { ($0["clockOffsetSeconds"] as? Double) == -90 }.compactMap { $0["serial"] as? String }
        #expect(drifting == ["SIM00000005", "SIM00000008"], "drift on a fraction of the TCP group: \(meters)")
        #expect(meters.last?["transport"] as? String == "serial")
        #expect(meters.last?["address"] as? String == (try FileManager.default.destinationOfSymbolicLink(atPath: path)))
        // Meter 9 (SIM00000010) is the second meter on the line.
        try await Self.readAndCheck(["--serial", path, "--physical", "18"], meter: 9)

        #expect(try httpPost(port: adminPort, path: "/meters/SIM00000002/faults?refuse=true").status == 200)
        let refused = try await ChildProcess.run(product: "hesctl", arguments: [
            "read", "--tcp", "127.0.0.1:\(port + 1)", "--client", "17", "--password", "12345678"])
        #expect(refused.status == 1, "status \(refused.status): \(refused.stderr)")
        #expect(refused.stderr.lowercased().contains("reject") || refused.stderr.lowercased().contains("refus"), "\(refused.stderr)")
        #expect(try httpPost(port: adminPort, path: "/meters/SIM00000002/faults?refuse=false").status == 200)
        try await Self.readAndCheck(["--tcp", "127.0.0.1:\(port + 1)"], meter: 1)
        await Self.stop(sim)
    }

    @Test("HDLC inactivity timeout: an idle link is dropped and the TCP connection closed")
    func hdlcInactivityTimeout() async throws {
        let port = try freeLoopbackPort()
        let sim = try await Self.startSim(["--meters", "1", "--framing", "hdlc", "--port", String(port), "--hdlc-inactivity-timeout", "1s"])
        let socketDescriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socketDescriptor) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(socketDescriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socketDescriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        // SNRM from client 16 to 1/16 (two-byte address 02 21).
        let snrm = hexBytes("7EA0080221219305D17E")
        _ = snrm.withUnsafeBytes { send(socketDescriptor, $0.baseAddress, $0.count, 0) }
        var chunk = [UInt8](repeating: 0, count: 256)
        let ua = chunk.withUnsafeMutableBytes { recv(socketDescriptor, $0.baseAddress, $0.count, 0) }
        #expect(ua > 6 && chunk[6] == 0x73, "no UA: \(chunk.prefix(max(ua, 0)))")
        let started = ContinuousClock.now
        let end = chunk.withUnsafeMutableBytes { recv(socketDescriptor, $0.baseAddress, $0.count, 0) }
        let waited = ContinuousClock.now - started
        #expect(end == 0, "the connection stays open")
        #expect(waited > .milliseconds(800) && waited < .seconds(4), "closed after \(waited)")
        await Self.stop(sim)
    }

    @Test("bad transport and fleet combinations exit 64", arguments: [
        ["--transport", "udp", "--framing", "hdlc"], ["--transport", "serial", "--framing", "wrapper"], ["--quirk", "bogus"],
        ["--transport", "gateway-udp", "--quirk", "wrapper-only"], ["--fleet", "/nonexistent/fleet.json"],
        ["--fleet", "/dev/null", "--meters", "2"], ["--transport", "serial", "--baud", "1234"],
    ])
    func badCombinations(arguments: [String]) async throws {
        let result = try await ChildProcess.run(product: "meter-sim", arguments: arguments + ["--admin-port", "0"])
        #expect(result.status == 64, "\(arguments): status \(result.status), stderr: \(result.stderr)")
    }
}
