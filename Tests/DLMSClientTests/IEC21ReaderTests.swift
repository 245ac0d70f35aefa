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
        // Generous deadlines: a loaded two-core CI run delays the 300 Bd sign-on by seconds.
        let line = try PseudoTerminal()
        let seen = Captured()
        line.serve { meter in
            guard let signOn = meter.read(until: Array("!\r\n".utf8), timeout: .seconds(20)) else { return }
            seen.append(signOn)
            meter.write("/EMH5\\@ED300L\r\n")
            guard let select = meter.read(until: Array("\r\n".utf8), timeout: .seconds(20)) else { return }
            seen.append(select)
            meter.write(Self.readoutBlock("0.0.0(12345678)\r\n1.8.0(001234.567*kWh)\r\n2.8.0(000012.300*kWh)\r\n!\r\n"))
        }
        try await TransportEndpoint.serial(.iec21(path: line.devicePath)).withTransport(timeout: .seconds(2)) { transport in
            let readout = try await IEC21Reader.readout(over: transport, configuration: .init(address: "12345678", responseTimeout: .seconds(10)))
            #expect(readout.identification.manufacturer == "EMH")
            #expect(readout.identification.identification == "ED300L")
            #expect(readout.dataSets.map(\.address) == ["0.0.0", "1.8.0", "2.8.0"])
            #expect(readout.dataSets[1].values.first?.value == "001234.567")
            #expect(readout.dataSets[1].values.first?.unit == "kWh")
            #expect(seen.items.first.map { String(decoding: $0, as: UTF8.self) } == "/?12345678!\r\n")
            // ACK, protocol control 0, baud character 5 (9600 Bd), mode 0 (readout).
            #expect(seen.items.dropFirst().first == [0x06, 0x30, 0x35, 0x30, 0x0D, 0x0A])
        }
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
        try await TransportEndpoint.serial(.iec21(path: line.devicePath)).withTransport(timeout: .seconds(2)) { transport in
            let error = await #expect(throws: DLMSClientError.self) {
                try await IEC21Reader.readout(over: transport, configuration: .init(responseTimeout: .seconds(3)))
            }
            #expect(error?.step == .get)
            #expect(error?.code == .linkFailed)
        }
    }

    @Test("a meter that never identifies itself times out")
    func silentMeter() async throws {
        let line = try PseudoTerminal()
        try await TransportEndpoint.serial(.iec21(path: line.devicePath)).withTransport(timeout: .seconds(2)) { transport in
            let started = ContinuousClock.now
            let error = await #expect(throws: DLMSClientError.self) {
                try await IEC21Reader.readout(over: transport, configuration: .init(responseTimeout: .milliseconds(300)))
            }
            #expect(error?.code == .timeout)
            #expect(ContinuousClock.now - started < .seconds(2))
        }
    }

    /// A device in programming mode: `P0` prompt, password check, `R1` register reads and the
    /// `R5 P.01(from;to)` load profile in two partial blocks.
    static func serveProgramming(_ meter: PseudoTerminal, password: String, seen: Captured) {
        func command() -> [UInt8]? {
            // SOH … ETX BCC.
            guard let bytes = meter.read(until: [0x03], trailing: 1, timeout: .seconds(5)) else { return nil }
            seen.append(bytes)
            return bytes
        }
        // The message's printable characters without the BCC (which may be printable itself).
        func text(_ bytes: [UInt8]) -> String { String(decoding: bytes.dropLast().filter { $0 >= 0x20 && $0 < 0x7F }, as: UTF8.self) }
        guard meter.read(until: Array("!\r\n".utf8), timeout: .seconds(5)) != nil else { return }
        meter.write("/EMH5\\@ED300L\r\n")
        guard let select = meter.read(until: Array("\r\n".utf8), timeout: .seconds(5)) else { return }
        seen.append(select)
        var prompt = ByteBuffer()
        try! IEC21Command(.password, type: UInt8(ascii: "0"), data: "(12345678)").encode(into: &prompt)
        meter.write(Array(prompt.readableBytesView))
        guard let passwordMessage = command() else { return }
        guard text(passwordMessage) == "P1(\(password))" else {
            meter.write(Array(readoutBlock("(ERROR)")))
            return
        }
        meter.write([0x06])
        while let request = command() {
            switch text(request) {
            case "R11.8.0()": meter.write(readoutBlock("1.8.0(001234.567*kWh)"))
            case "R12.8.0()": meter.write(readoutBlock("2.8.0(ERROR)"))
            case let load where load.hasPrefix("R5P.01("):
                var first = ByteBuffer()
                IEC21DataBlock(data: ByteBuffer(string: "P.01(2611250015)(00)(15)(2)(1.5.0)(kW)(2.5.0)(kW)\r\n(0.250)(0.000)\r\n"), isPartial: true).encode(into: &first)
                meter.write(Array(first.readableBytesView))
                guard meter.read(timeout: .seconds(5)) == [0x06] else { return }
                meter.write(readoutBlock("(0.500)(0.010)\r\n"))
            case "B0": return
            default: meter.write([0x15])
            }
        }
    }

    @Test("programming mode: password, R1 registers, R5 load profile in partial blocks, B0")
    func programmingMode() async throws {
        let line = try PseudoTerminal()
        let seen = Captured()
        line.serve { Self.serveProgramming($0, password: "00000000", seen: seen) }
        try await TransportEndpoint.serial(.iec21(path: line.devicePath)).withTransport(timeout: .seconds(2)) { transport in
            let from = Date(timeIntervalSince1970: 1_795_564_800)   // 2026-11-25T00:00:00Z
            let (register, profile, operand) = try await IEC21Reader.withProgrammingSession(
                over: transport, configuration: .init(responseTimeout: .seconds(3)), password: "00000000"
            ) { session in
                let register = try await session.read("1.8.0")
                let error = await #expect(throws: DLMSClientError.self) { try await session.read("2.8.0") }
                #expect(error?.code == .dataAccessFailed)
                let profile = try await session.readLoadProfile(from: from, to: from.addingTimeInterval(3600))
                return (register, profile, session.operand)
            }
            #expect(operand == "12345678")
            #expect(register == [IEC21DataSet(address: "1.8.0", values: [.init(value: "001234.567", unit: "kWh")])])
            #expect(profile.rows.map(\.values) == [["0.250", "0.000"], ["0.500", "0.010"]])
            #expect(profile.rows.map(\.time.secondsSince1970) == [1_795_565_700, 1_795_566_600])
            // ACK 0 5 1 (programming), then P1, R1, R1, R5 with the range, and B0 at the end (the
            // simulated meter's thread may still be reading it).
            let waitUntil = ContinuousClock.now + .seconds(2)
            while seen.items.count < 6, ContinuousClock.now < waitUntil { try await Task.sleep(for: .milliseconds(10)) }
            #expect(seen.items.first == [0x06, 0x30, 0x35, 0x31, 0x0D, 0x0A])
            let messages = seen.items.dropFirst().map { String(decoding: $0.dropLast().filter { $0 >= 0x20 && $0 < 0x7F }, as: UTF8.self) }
            #expect(messages == ["P1(00000000)", "R11.8.0()", "R12.8.0()", "R5P.01(2611250000;2611250100)", "B0"])
        }
    }

    @Test("programming mode: a wrong password is a non-retriable associationRejected")
    func programmingWrongPassword() async throws {
        let line = try PseudoTerminal()
        line.serve { Self.serveProgramming($0, password: "00000000", seen: Captured()) }
        try await TransportEndpoint.serial(.iec21(path: line.devicePath)).withTransport(timeout: .seconds(2)) { transport in
            let error = await #expect(throws: DLMSClientError.self) {
                try await IEC21Reader.withProgrammingSession(over: transport, configuration: .init(responseTimeout: .seconds(3)), password: "wrong") { _ in }
            }
            #expect(error?.code == .associationRejected)
            #expect(error?.step == .associate)
            #expect(error?.isRetriable == false)
        }
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
