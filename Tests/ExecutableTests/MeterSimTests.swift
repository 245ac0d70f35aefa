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

private func bytes(_ hex: String) -> [UInt8] {
    var out: [UInt8] = []
    var index = hex.startIndex
    while index < hex.endIndex {
        let next = hex.index(index, offsetBy: 2)
        out.append(UInt8(hex[index..<next], radix: 16)!)
        index = next
    }
    return out
}

/// The meter-sim executable: serves wrapper and HDLC meters, prints expected values, stops on
/// SIGTERM, rejects bad flags.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct MeterSimTests {
    /// An LLS AARQ (password 12345678) as the Gurux client sends it.
    static let aarq = bytes("6036A1090607608574050801018A0207808B0760857405080201AC0A80083132333435363738BE10040E01000000065F1F0400401E5D0400")

    @Test func wrapperAARQGetsAcceptedAAREFromEachMeterAndStopsOnSIGTERM() async throws {
        let port = try freeLoopbackPort()
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
        let port = try freeLoopbackPort()
        let child = try ChildProcess(product: "meter-sim", arguments: [
            "--meters", "2", "--framing", "hdlc", "--port", String(port), "--admin-port", "0"])
        try await child.waitForOutput(containing: "meter-sim ready: 2 meter(s)", timeout: .seconds(20))
        // Meter 1 has physical address 16 + 1 = 17: the Gurux SNRM to 1/17 from client 16.
        let response = try exchange(port: port + 1, bytes("7EA00802232193BD647E"), expected: 33)
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
