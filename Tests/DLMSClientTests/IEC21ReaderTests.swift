import DLMSClient
import Foundation
import DLMSLink
import NIOCore
import Testing
import TestSupport

/// IEC 62056-21 over a pseudo-terminal standing in for the optical head's serial port.
@Suite("IEC 62056-21 over a serial port", .serialized, .timeLimit(.minutes(1)))
struct IEC21ReaderTests {
    static func readoutBlock(_ text: String) -> [UInt8] {
        var buffer = ByteBuffer()
        IEC21DataBlock(data: ByteBuffer(string: text)).encode(into: &buffer)
        return Array(buffer.readableBytesView)
    }

    @Test("mode C: sign-on with address, identification, option select, readout with BCC")
    func modeCReadout() async throws {
        let line = try PseudoTerminal()
        let seen = Captured()
        line.serve { meter in
            guard let signOn = meter.read(until: Array("!\r\n".utf8), timeout: .seconds(5)) else { return }
            seen.append(signOn)
            meter.write("/EMH5\\@ED300L\r\n")
            guard let select = meter.read(until: Array("\r\n".utf8), timeout: .seconds(5)) else { return }
            seen.append(select)
            meter.write(Self.readoutBlock("0.0.0(12345678)\r\n1.8.0(001234.567*kWh)\r\n2.8.0(000012.300*kWh)\r\n!\r\n"))
        }
        let transport = try await TransportEndpoint.serial(.iec21(path: line.devicePath)).open(timeout: .seconds(2))
        defer { Task { await transport.close() } }
        let readout = try await IEC21Reader.readout(over: transport, configuration: .init(address: "12345678", responseTimeout: .seconds(3)))
        #expect(readout.identification.manufacturer == "EMH")
        #expect(readout.identification.identification == "ED300L")
        #expect(readout.dataSets.map(\.address) == ["0.0.0", "1.8.0", "2.8.0"])
        #expect(readout.dataSets[1].values.first?.value == "001234.567")
        #expect(readout.dataSets[1].values.first?.unit == "kWh")
        #expect(seen.items.first.map { String(decoding: $0, as: UTF8.self) } == "/?12345678!\r\n")
        // ACK, protocol control 0, baud character 5 (9600 Bd), mode 0 (readout).
        #expect(seen.items.dropFirst().first == [0x06, 0x30, 0x35, 0x30, 0x0D, 0x0A])
    }

    @Test("a readout with a wrong BCC is refused with a typed error")
    func badBCC() async throws {
        let line = try PseudoTerminal()
        line.serve { meter in
            guard meter.read(until: Array("!\r\n".utf8), timeout: .seconds(5)) != nil else { return }
            meter.write("/ABC5METER\r\n")
            guard meter.read(until: Array("\r\n".utf8), timeout: .seconds(5)) != nil else { return }
            var block = Self.readoutBlock("1.8.0(1*kWh)\r\n!\r\n")
            block[block.count - 1] ^= 0xFF
            meter.write(block)
        }
        let transport = try await TransportEndpoint.serial(.iec21(path: line.devicePath)).open(timeout: .seconds(2))
        defer { Task { await transport.close() } }
        let error = await #expect(throws: DLMSClientError.self) {
            try await IEC21Reader.readout(over: transport, configuration: .init(responseTimeout: .seconds(3)))
        }
        #expect(error?.step == .linkSetup)
        #expect(error?.code == .linkFailed)
    }

    @Test("a meter that never identifies itself times out")
    func silentMeter() async throws {
        let line = try PseudoTerminal()
        let transport = try await TransportEndpoint.serial(.iec21(path: line.devicePath)).open(timeout: .seconds(2))
        defer { Task { await transport.close() } }
        let started = ContinuousClock.now
        let error = await #expect(throws: DLMSClientError.self) {
            try await IEC21Reader.readout(over: transport, configuration: .init(responseTimeout: .milliseconds(300)))
        }
        #expect(error?.code == .timeout)
        #expect(ContinuousClock.now - started < .seconds(2))
    }

    @Test("a serial port that does not exist is a connect failure")
    func missingPort() async throws {
        let error = await #expect(throws: DLMSClientError.self) {
            try await TransportEndpoint.serial(.hdlc(path: "/dev/does-not-exist-hes")).open(timeout: .seconds(1))
        }
        #expect(error?.code == .connectFailed)
    }
}

/// Bytes the simulated meter saw, shared with its thread.
final class Captured: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [[UInt8]] = []
    func append(_ bytes: [UInt8]) { lock.lock(); storage.append(bytes); lock.unlock() }
    var items: [[UInt8]] { lock.lock(); defer { lock.unlock() }; return storage }
}
