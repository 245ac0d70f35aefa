#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import Testing
import TestSupport

/// Issue 21: `hesctl read` against meters that misbehave on purpose — on a pseudo-terminal
/// (IEC 62056-21 programming mode) and on UDP (the wrapper, a serial gateway). Each ends in a
/// typed failure (exit 1, or 75 for what is worth retrying) within its deadline plus a small
/// slack and with bounded memory, or, for a load profile with rows nobody asked for, prints
/// only the rows of the range in increasing time.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct HostileLineTests {
    /// 2026-11-25T00:00:00Z … 01:00, the range every profile read here asks for.
    static let from = "2026-11-25T00:00:00Z"
    static let to = "2026-11-25T01:00:00Z"
    static let peakLimitMB = 200.0

    // MARK: - IEC 62056-21 programming mode on a pseudo-terminal

    @Test("case 1: an R5 header with a channel count near Int.max is a malformed answer (exit 1), not a crash", arguments: ["4611686018427387904", "9223372036854775807"])
    func hugeChannelCount(count: String) async throws {
        let line = try PseudoTerminal()
        line.serve { meter in
            Self.serveProgramming(meter) { meter in
                meter.write(Self.block("P.01(2611250000)(00)(15)(\(count))(1.5.0)(kW)\r\n(0.250)\r\n"))
            }
        }
        let run = try await Self.measure(["read", "--serial", line.devicePath, "--framing", "iec21", "--password", "00000000",
                                          "--profile", "P.01", "--from", Self.from, "--to", Self.to, "--timeout", "3"])
        #expect(run.status == 1, "\(run.stderr)")
        #expect(run.stderr.contains("malformed") || run.stderr.contains("does not fit"), "\(run.stderr)")
        #expect(run.peakMB < Self.peakLimitMB)
    }

    @Test("case 2a: every part of the R5 answer an empty partial block: a timeout at the request deadline (exit 75), not a hang")
    func endlessEmptyPartialBlocks() async throws {
        let line = try PseudoTerminal()
        let parts = Atomic<Int>(0)
        line.serve { meter in
            Self.serveProgramming(meter) { meter in
                // STX EOT BCC for the request and after every ACK, for as long as the client asks.
                repeat {
                    meter.write(Self.partialBlock(""))
                    parts.add(1, ordering: .relaxed)
                } while meter.read(timeout: .seconds(5)) == [0x06]
            }
        }
        let run = try await Self.measure(["read", "--serial", line.devicePath, "--framing", "iec21", "--password", "00000000",
                                          "--profile", "P.01", "--from", Self.from, "--to", Self.to, "--timeout", "3", "--request-timeout", "6"])
        #expect(run.status == 75, "\(run.stderr)")
        #expect(run.stderr.contains("timeout"), "\(run.stderr)")
        #expect(run.seconds < 6 + 5, "ran \(run.seconds) s for a 6 s request deadline")
        #expect(parts.load(ordering: .relaxed) > 3, "the meter did keep answering")
        #expect(run.peakMB < Self.peakLimitMB)
    }

    @Test("case 4: a load-profile header dated 30 February is malformed, never 2 March (exit 1)")
    func impossibleDate() async throws {
        let line = try PseudoTerminal()
        line.serve { meter in
            Self.serveProgramming(meter) { meter in
                meter.write(Self.block("P.01(2602300000)(00)(15)(1)(1.5.0)(kW)\r\n(0.250)\r\n"))
            }
        }
        let run = try await Self.measure(["read", "--serial", line.devicePath, "--framing", "iec21", "--password", "00000000",
                                          "--profile", "P.01", "--from", Self.from, "--to", Self.to, "--timeout", "3"])
        #expect(run.status == 1, "\(run.stderr)")
        #expect(!run.stdout.contains("2026-03-02"), "\(run.stdout)")
    }

    @Test("case 4: rows outside the range, repeated or out of order: only the range's rows, in increasing time, each once (the first received)")
    func rowsNobodyAskedFor() async throws {
        let line = try PseudoTerminal()
        line.serve { meter in
            Self.serveProgramming(meter) { meter in
                let header = "(00)(15)(2)(1.5.0)(kW)(2.5.0)(kW)\r\n"
                meter.write(Self.block(
                    // 23:45 the day before (outside), 00:00, 00:15, 00:30
                    "P.01(2611242345)" + header + "(1.000)(0.000)\r\n(1.001)(0.001)\r\n(1.002)(0.002)\r\n(1.003)(0.003)\r\n"
                    // 00:15 and 00:30 again (repeated, out of order), 00:45, 01:00, 01:15 (outside)
                    + "P.01(2611250015)" + header + "(9.002)(9.002)\r\n(9.003)(9.003)\r\n(1.004)(0.004)\r\n(1.005)(0.005)\r\n(1.006)(0.006)\r\n"))
            }
        }
        let run = try await Self.measure(["read", "--serial", line.devicePath, "--framing", "iec21", "--password", "00000000",
                                          "--profile", "P.01", "--from", Self.from, "--to", Self.to, "--timeout", "3"])
        #expect(run.status == 0, "\(run.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
        let profile = try #require(json?["profile"] as? [String: Any], "\(run.stdout)")
        let rows = profile["rows"] as? [[String: Any]] ?? []
        #expect(rows.compactMap { $0["time"] as? String } == [
            "2026-11-25T00:00:00Z", "2026-11-25T00:15:00Z", "2026-11-25T00:30:00Z", "2026-11-25T00:45:00Z", "2026-11-25T01:00:00Z",
        ])
        #expect(rows.compactMap { ($0["values"] as? [String])?.first } == ["1.001", "1.002", "1.003", "1.004", "1.005"], "the first received of a repeated interval")
        #expect(profile["rowsOutsideRange"] as? Int == 2)
        #expect(profile["rowsRepeated"] as? Int == 2)
        #expect(profile["rowsReordered"] as? Int == 1, "00:15 after 00:30")
    }

    // MARK: - UDP

    @Test("case 3: a flood of 8-byte wrapper datagrams for another wPort from the meter's address: exit within the step deadline, memory bounded")
    func wrapperFloodOfForeignWPorts() async throws {
        let peer = try HostileUDPPeer { peer, _, client in
            // Header only, source wPort 7 (not the meter's 1), for ten seconds.
            let datagram: [UInt8] = [0x00, 0x01, 0x00, 0x07, 0x00, 0x10, 0x00, 0x00]
            let end = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < end { peer.send(datagram, to: client) }
            return false
        }
        defer { peer.stop() }
        let run = try await Self.measure(["read", "--udp", "127.0.0.1:\(peer.port)", "--timeout", "3"])
        #expect(run.status == 75 || run.status == 1, "\(run.stderr)")
        #expect(run.stderr.contains("unread") || run.stderr.contains("timeout"), "\(run.stderr)")
        #expect(run.seconds < 3 * 4 + 3, "ran \(run.seconds) s (3 s steps, 3 repetitions)")
        #expect(run.peakMB < Self.peakLimitMB, "peak \(run.peakMB) MB")
    }

    @Test("case 3: 1-byte datagrams of line noise from a serial gateway: exit within the step deadline, memory bounded")
    func gatewayNoiseFlood() async throws {
        let peer = try HostileUDPPeer { peer, _, client in
            let end = ContinuousClock.now + .seconds(10)
            var byte: UInt8 = 0
            while ContinuousClock.now < end {
                peer.send([byte], to: client)
                byte &+= 37
            }
            return false
        }
        defer { peer.stop() }
        let run = try await Self.measure(["read", "--gateway-udp", "127.0.0.1:\(peer.port)", "--timeout", "3"])
        #expect(run.status == 75 || run.status == 1, "\(run.stderr)")
        #expect(run.stderr.contains("unread") || run.stderr.contains("timeout"), "\(run.stderr)")
        #expect(run.seconds < 3 * 4 + 3, "ran \(run.seconds) s")
        #expect(run.peakMB < Self.peakLimitMB, "peak \(run.peakMB) MB")
    }

    @Test("case 2b: a GET answered with endless 0- and 1-byte datablocks over UDP: a timeout at the request deadline (exit 75)")
    func endlessDatablocksOverUDP() async throws {
        let blocks = Atomic<Int>(0)
        let peer = try HostileUDPPeer { peer, request, client in
            // A wrapper datagram: version 1, source wPort 1 (the meter), destination the client's.
            func answer(_ apdu: [UInt8]) {
                peer.send([0x00, 0x01, 0x00, 0x01, request[2], request[3], UInt8(apdu.count >> 8), UInt8(apdu.count & 0xFF)] + apdu, to: client)
            }
            let apdu = Array(request.dropFirst(8))
            switch apdu.first {
            case 0x60:
                // AARE: LN referencing without ciphering, accepted, conformance get/set/action/
                // selective access/block transfer, max PDU 1024.
                answer([0x61, 0x29, 0xA1, 0x09, 0x06, 0x07, 0x60, 0x85, 0x74, 0x05, 0x08, 0x01, 0x01, 0xA2, 0x03, 0x02, 0x01, 0x00,
                        0xA3, 0x05, 0xA1, 0x03, 0x02, 0x01, 0x00, 0xBE, 0x10, 0x04, 0x0E, 0x08, 0x00, 0x06, 0x5F, 0x1F, 0x04, 0x00,
                        0x00, 0x18, 0x1D, 0x04, 0x00, 0x00, 0x07])
            case 0xC0 where apdu.count >= 3:
                // GET-Response-with-datablock, never the last, 0 or 1 byte of raw data.
                let number = UInt32(blocks.add(1, ordering: .relaxed).newValue)
                let size = Int(number % 2)
                answer([0xC4, 0x02, apdu[2], 0x00, UInt8(number >> 24), UInt8((number >> 16) & 0xFF), UInt8((number >> 8) & 0xFF), UInt8(number & 0xFF),
                        0x00, UInt8(size)] + Array(repeating: 0x09, count: size))
            default:
                break
            }
            return true
        }
        defer { peer.stop() }
        let run = try await Self.measure(["read", "--udp", "127.0.0.1:\(peer.port)", "--timeout", "3", "--request-timeout", "6"])
        #expect(run.status == 75, "\(run.stderr)")
        #expect(run.stderr.contains("did not end within"), "\(run.stderr)")
        // The request deadline, then the release the meter does not answer (3 s), and slack for a loaded machine.
        #expect(run.seconds < 6 + 3 + 6, "ran \(run.seconds) s for a 6 s request deadline")
        #expect(blocks.load(ordering: .relaxed) > 100, "the meter did keep answering: \(blocks.load(ordering: .relaxed)) blocks")
        #expect(run.peakMB < Self.peakLimitMB)
    }

    @Test("case 5: a UDP profile read through a 4 KB PDU equals meter-sim expect")
    func udpProfileThroughLargePDU() async throws {
        let port = try freeLoopbackPort()
        let simulator = try ChildProcess(product: "meter-sim", arguments: [
            "--meters", "1", "--transport", "udp", "--port", String(port), "--max-pdu", "4096", "--admin-port", "0",
        ])
        defer { simulator.signal(SIGTERM) }
        try await simulator.waitForOutput(containing: "meter-sim ready", timeout: .seconds(30))
        let to = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 / 900).rounded(.down) * 900)
        let from = to.addingTimeInterval(-48 * 3600)
        let formatter = ISO8601DateFormatter()
        let run = try await ChildProcess.run(product: "hesctl", arguments: [
            "read", "--udp", "127.0.0.1:\(port)", "--client", "17", "--password", "12345678", "--profile", "1.0.99.1.0.255",
            "--from", formatter.string(from: from), "--to", formatter.string(from: to), "--timeout", "10",
        ], timeout: .seconds(60))
        #expect(run.status == 0, "\(run.stderr)")
        let expected = try await ChildProcess.run(product: "meter-sim", arguments: [
            "expect", "--meter", "0", "--profile", "1.0.99.1.0.255", "--from", formatter.string(from: from), "--to", formatter.string(from: to),
        ])
        let read = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
        let want = try JSONSerialization.jsonObject(with: Data(expected.stdout.utf8)) as? [String: Any]
        let readRows = (read?["profile"] as? [String: Any])?["rows"] as? [[Any]] ?? []
        let wantRows = want?["rows"] as? [[Any]] ?? []
        #expect(wantRows.count == 193, "48 h of quarter hours, both ends included")
        #expect(readRows.count == wantRows.count)
        #expect(readRows.map { "\($0)" } == wantRows.map { "\($0)" })
    }

    // MARK: - Helpers

    /// A device in programming mode that behaves until the load-profile read: sign-on and
    /// identification, option select, `P0` with its operand, any password accepted; `R5` is
    /// answered by `onLoadProfile`, `B0` ends, anything else is NAKed.
    static func serveProgramming(_ meter: PseudoTerminal, onLoadProfile: (PseudoTerminal) -> Void) {
        guard meter.read(until: Array("!\r\n".utf8), timeout: .seconds(20)) != nil else { return }
        meter.write("/EMH5\\@ED300L\r\n")
        guard meter.read(until: Array("\r\n".utf8), timeout: .seconds(5)) != nil else { return }
        meter.write(message(head: "P0", body: "(12345678)"))
        guard meter.read(until: [0x03], trailing: 1, timeout: .seconds(5)) != nil else { return }
        meter.write([0x06])
        while let request = meter.read(until: [0x03], trailing: 1, timeout: .seconds(20)) {
            let text = String(decoding: request.dropLast().filter { $0 >= 0x20 && $0 < 0x7F }, as: UTF8.self)
            if text.hasPrefix("R5") {
                onLoadProfile(meter)
            } else if text.hasPrefix("B0") {
                return
            } else {
                meter.write([0x15])
            }
        }
    }

    /// `SOH head STX body ETX BCC` (BCC: XOR of everything after SOH).
    static func message(head: String, body: String) -> [UInt8] {
        let content = Array(head.utf8) + [0x02] + Array(body.utf8) + [0x03]
        return [0x01] + content + [content.reduce(0, ^)]
    }

    /// A data block `STX text ETX BCC`.
    static func block(_ text: String) -> [UInt8] {
        let content = Array(text.utf8) + [0x03]
        return [0x02] + content + [content.reduce(0, ^)]
    }

    /// A partial block `STX text EOT BCC`.
    static func partialBlock(_ text: String) -> [UInt8] {
        let content = Array(text.utf8) + [0x04]
        return [0x02] + content + [content.reduce(0, ^)]
    }

    struct MeasuredRun {
        var status: Int32
        var stdout: String
        var stderr: String
        var seconds: Double
        /// The process's peak resident memory (VmHWM), sampled until it exited.
        var peakMB: Double
    }

    /// Runs hesctl with `arguments`, timing it and sampling its peak resident memory.
    static func measure(_ arguments: [String], limit: Duration = .seconds(90)) async throws -> MeasuredRun {
        let started = ContinuousClock.now
        let child = try ChildProcess(product: "hesctl", arguments: arguments)
        var peak = 0.0
        let deadline = started + limit
        while child.isRunning && ContinuousClock.now < deadline {
            if let status = try? String(contentsOfFile: "/proc/\(child.pid)/status", encoding: .utf8),
               let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
               let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "") {
                peak = max(peak, kilobytes / 1024)
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        if child.isRunning { child.signal(SIGKILL) }
        let status = await child.waitForExit(timeout: .seconds(5)) ?? -1
        let elapsed = ContinuousClock.now - started
        return MeasuredRun(status: status, stdout: child.standardOutput, stderr: child.standardError,
                           seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18, peakMB: peak)
    }
}

/// A UDP meter that misbehaves: bound to a loopback port, it hands every datagram it receives to
/// `respond` (with the sender), on a thread of its own, until `respond` returns `false` or the
/// peer is released.
final class HostileUDPPeer: @unchecked Sendable {
    let port: Int
    private let socket: CInt
    private let stopped = Atomic<Bool>(false)

    init(respond: @escaping @Sendable (HostileUDPPeer, [UInt8], sockaddr_in) -> Bool) throws {
        let descriptor = Glibc.socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            close(descriptor)
            throw ChildProcessError(reason: "bind: \(errno)")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        socket = descriptor
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { [self] in
            var buffer = [UInt8](repeating: 0, count: 70_000)
            while !stopped.load(ordering: .relaxed) {
                var sender = sockaddr_in()
                var senderLength = socklen_t(MemoryLayout<sockaddr_in>.size)
                let count = buffer.withUnsafeMutableBytes { bytes in
                    withUnsafeMutablePointer(to: &sender) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(socket, bytes.baseAddress, bytes.count, 0, $0, &senderLength) }
                    }
                }
                guard count > 0 else { continue }
                if !respond(self, Array(buffer[..<count]), sender) { break }
            }
            close(socket)
        }
    }

    func send(_ bytes: [UInt8], to client: sockaddr_in) {
        var client = client
        _ = bytes.withUnsafeBytes { payload in
            withUnsafePointer(to: &client) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(socket, payload.baseAddress, payload.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
    }

    /// Ends the peer's thread (within one receive timeout); it closes the socket.
    func stop() {
        stopped.store(true, ordering: .relaxed)
    }
}
