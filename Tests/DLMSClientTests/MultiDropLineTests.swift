import COSEM
import DLMSClient
import DLMSCodec
import DLMSLink
import Foundation
import MeterSimulation
import NIOCore
import Testing
import TestSupport

/// Several simulated meters on one RS-485 bus, played on the master side of a pseudo-terminal:
/// every meter sees every frame and answers only those addressed to its physical address.
final class SimulatedBus: @unchecked Sendable {
    private let line: PseudoTerminal
    private var links: [HDLCServerConnection]
    private var sessions: [COSEMServerSession?]
    private let meters: [SimulatedMeter]
    private let lock = NSLock()
    private var speakers: [Int] = []
    private var stopped = false

    init(line: PseudoTerminal, physicalAddresses: [UInt16]) throws {
        self.line = line
        meters = physicalAddresses.indices.map { SimulatedMeter(configuration: .fleetMember(index: $0)) }
        links = try physicalAddresses.map { HDLCServerConnection(configuration: .init(serverAddress: try .server(logical: 1, physical: $0))) }
        sessions = Array(repeating: nil, count: physicalAddresses.count)
    }

    /// Which meter answered, in order, one entry per frame sent.
    var answeredBy: [Int] { lock.lock(); defer { lock.unlock() }; return speakers }

    func stop() { lock.lock(); stopped = true; lock.unlock() }

    /// Serves the bus; `opening` runs first on the meter thread (e.g. an IEC 62056-21 mode E sign-on).
    func run(opening: (@Sendable (PseudoTerminal) -> Void)? = nil) {
        line.serve { [self] line in
            opening?(line)
            while !(lock.withLock { stopped }) {
                guard let chunk = line.read(timeout: .milliseconds(100)) else { continue }
                for index in links.indices {
                    var pending = links[index].receive(ByteBuffer(bytes: chunk))
                    while !pending.isEmpty {
                        let action = pending.removeFirst()
                        switch action {
                        case .send(let frame):
                            lock.withLock { speakers.append(index) }
                            line.write(Array(frame.readableBytesView))
                        case .deliver(let request):
                            if sessions[index] == nil || sessions[index]!.isReleased {
                                sessions[index] = COSEMServerSession(meter: meters[index], clientSAP: UInt16(links[index].clientAddress?.upper ?? 16))
                            }
                            if let answer = sessions[index]!.handle(request, now: Date()) {
                                pending += (try? links[index].respond(answer)) ?? []
                            } else {
                                links[index].discardRequest()
                            }
                        case .closed:
                            sessions[index] = nil
                        }
                    }
                }
            }
        }
    }
}

@Suite("Multi-drop HDLC line over a serial port", .serialized, .timeLimit(.minutes(2)))
struct MultiDropLineTests {
    static func connection(_ line: PseudoTerminal, physical: UInt16) -> MeterConnection {
        MeterConnection(endpoint: .serial(.hdlc(path: line.devicePath)), framing: .hdlc, clientSAP: 17,
                        serverPhysicalAddress: physical, authentication: .low(password: Array("12345678".utf8)),
                        timeouts: .init(connect: .seconds(2), step: .seconds(5), retransmission: .seconds(1), retries: 2, release: .seconds(1)))
    }

    @Test("sessions to meters on one bus run one after the other and each reads its own meter")
    func sessionsNeverOverlap() async throws {
        let port = try PseudoTerminal()
        let bus = try SimulatedBus(line: port, physicalAddresses: [0x11, 0x12, 0x13])
        bus.run()
        defer { bus.stop() }
        try await DLMSLine.withLine(endpoint: .serial(.hdlc(path: port.devicePath))) { line in
            // Asked for concurrently, as a collector's workers would.
            let readings = try await withThrowingTaskGroup(of: (UInt16, DLMSData).self) { group in
                for physical: UInt16 in [0x11, 0x12, 0x13, 0x11] {
                    group.addTask {
                        try await line.withAssociation(to: Self.connection(port, physical: physical)) { client in
                            (physical, try await client.get(DataClass.descriptor(OBISCode(0, 0, 96, 1, 0, 255), .value)))
                        }
                    }
                }
                return try await group.reduce(into: [(UInt16, DLMSData)]()) { $0.append($1) }
            }
            #expect(readings.count == 4)
            for (physical, serial) in readings {
                let expected = SimulatedMeter.Configuration.fleetMember(index: Int(physical) - 0x11).serialNumber
                #expect(serial.plainJSON == .string(expected) || serial.plainJSON == .string(DLMSBytes(Array(expected.utf8)).hex),
                        "meter \(physical) answered \(serial)")
            }
            // Each session is five frames from one meter (UA to SNRM, AARE, GET-Response, RLRE, UA to
            // DISC); on a serialised line they come in unbroken groups of five.
            let answered = bus.answeredBy
            #expect(answered.count == 20, "answers by meter: \(answered)")
            for start in stride(from: 0, to: answered.count, by: 5) {
                #expect(Set(answered[start..<min(start + 5, answered.count)]).count == 1, "answers by meter: \(answered)")
            }
            #expect(line.sessionCount == 4)
        }
    }

    @Test("a meter that is not on the bus times out, and the line serves the next meter")
    func absentMeterThenNext() async throws {
        let port = try PseudoTerminal()
        let bus = try SimulatedBus(line: port, physicalAddresses: [0x11])
        bus.run()
        defer { bus.stop() }
        try await DLMSLine.withLine(endpoint: .serial(.hdlc(path: port.devicePath))) { line in
            var absent = Self.connection(port, physical: 0x30)
            absent.timeouts.retransmission = .milliseconds(200)
            absent.timeouts.step = .seconds(1)
            let error = await #expect(throws: DLMSClientError.self) {
                try await line.withAssociation(to: absent) { _ in }
            }
            #expect(error?.code == .timeout)
            let clock = try await line.withAssociation(to: Self.connection(port, physical: 0x11)) { client in try await client.readClock() }
            #expect(clock.iso8601 != nil)
        }
    }
}

@Suite("IEC 62056-21 mode E over an optical port", .serialized, .timeLimit(.minutes(1)))
struct ModeETests {
    @Test("sign-on at 300 Bd, mode E option select, then an HDLC association on the same port")
    func modeEThenHDLC() async throws {
        let port = try PseudoTerminal()
        let bus = try SimulatedBus(line: port, physicalAddresses: [0x11])
        let select = Captured()
        bus.run { line in
            // The head waits for the client once, so generously: a loaded full run (two cores, every
            // suite in parallel) has opened the port and sent the sign-on more than 5 s after the start.
            guard line.read(until: Array("!\r\n".utf8), timeout: .seconds(30)) != nil else { return }
            line.write("/EMH5\\2ED300L\r\n")
            if let option = line.read(until: Array("\r\n".utf8), timeout: .seconds(30)) { select.append(option) }
        }
        defer { bus.stop() }
        let connection = MeterConnection(endpoint: .serial(.iec21(path: port.devicePath)), framing: .hdlc, clientSAP: 16,
                                         serverPhysicalAddress: 0x11, opening: .iec21ModeE(address: nil, maximumBaudRate: 9600))
        let clock = try await DLMSClient.withAssociation(to: connection) { client in try await client.readClock() }
        #expect(clock.iso8601 != nil)
        // ACK, protocol control 2 (HDLC), baud character 5, mode 2.
        #expect(select.items.first == [0x06, 0x32, 0x35, 0x32, 0x0D, 0x0A])
    }
}
