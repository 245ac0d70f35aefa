import Foundation
import Testing
import TestSupport

/// `hesctl read` used as an operator would: the executable, real sockets and serial ports.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct HESCtlReadTests {
    @Test("IEC 62056-21 mode C readout from a serial port")
    func iec21Readout() async throws {
        let line = try PseudoTerminal()
        line.serve { meter in
            guard meter.read(until: Array("!\r\n".utf8), timeout: .seconds(20)) != nil else { return }
            meter.write("/LGZ4ZMD3104407\r\n")
            guard meter.read(until: Array("\r\n".utf8), timeout: .seconds(10)) != nil else { return }
            let text = "F.F(00000000)\r\n1.8.1(012345.678*kWh)\r\n!\r\n"
            var block: [UInt8] = [0x02] + Array(text.utf8) + [0x03]
            block.append(block.dropFirst().reduce(0, ^))
            meter.write(block)
        }
        let result = try await ChildProcess.run(product: "hesctl", arguments: [
            "read", "--serial", line.devicePath, "--framing", "iec21", "--timeout", "10",
        ])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        #expect(json?["manufacturer"] as? String == "LGZ")
        let sets = json?["dataSets"] as? [[String: Any]]
        #expect(sets?.count == 2)
        #expect(sets?.last?["address"] as? String == "1.8.1")
    }

    @Test("an unreachable meter exits 75 (retry later) with the failed step on stderr")
    func unreachable() async throws {
        let port = try freeLoopbackPort()
        let result = try await ChildProcess.run(product: "hesctl", arguments: ["read", "--tcp", "127.0.0.1:\(port)", "--obis", "1.0.1.8.0.255"])
        #expect(result.status == 75, "stderr: \(result.stderr)")
        #expect(result.stderr.contains("connect failed"), "stderr: \(result.stderr)")
    }

    @Test("bad usage exits 64", arguments: [
        ["read"],
        ["read", "--tcp", "127.0.0.1:4061", "--udp", "127.0.0.1:4061"],
        ["read", "--tcp", "127.0.0.1", "--clock"],
        ["read", "--tcp", "127.0.0.1:4061", "--obis", "1.2.3"],
        ["read", "--tcp", "127.0.0.1:4061", "--profile", "1.0.99.1.0.255"],
        ["read", "--tcp", "127.0.0.1:4061", "--framing", "iec21"],
        ["read", "--tcp", "127.0.0.1:4061", "--auth", "lls"],
    ])
    func badUsage(arguments: [String]) async throws {
        let result = try await ChildProcess.run(product: "hesctl", arguments: arguments)
        #expect(result.status == 64, "\(arguments): status \(result.status), stderr: \(result.stderr)")
    }
}
