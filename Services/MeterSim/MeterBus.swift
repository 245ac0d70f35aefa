import DLMSLink
import Foundation
import MeterSimulation
import NIOCore
import Synchronization

/// The meters on one serial line (or behind one serial-gateway port) as a sans-IO state
/// machine: every meter hears every byte, answers only what is addressed to it (HDLC physical
/// address, IEC 62056-21 device address), and the bus reports contention: two meters answering
/// the same frame (e.g. two with one physical address, or an IEC 62056-21 sign-on without
/// address on a multi-drop line). Colliding transmissions reach the line as the AND of their
/// bytes (a driven space wins over the idle mark), so the client sees a corrupt frame.
///
/// The shell writes `write` operations at their baud rate, in order, and calls `tick` now and
/// then so idle links time out.
struct MeterBus {
    struct Station {
        let entry: MeterEntry
        var link: HDLCServerConnection
        var session: COSEMServerSession?
        var iec21: IEC21ServerSession?
        var responses = 0
    }

    enum Operation: Hashable {
        /// Write these bytes, paced at `baudRate`.
        case write(ByteBuffer, baudRate: Int)
        /// The line's rate changes (IEC 62056-21 baud rate switch).
        case setBaudRate(Int)
    }

    struct Output {
        var operations: [Operation] = []
        /// Set when several meters answered the same input: who, for logs and metrics.
        var contention: String?
        /// Bytes were for a meter that was not answering (silent fault) or for nobody.
        var requests = 0
    }

    let name: String
    let framing: MeterSimConfiguration.Framing
    let lineBaudRate: Int
    let hdlcInactivityTimeout: Duration
    /// IEC 62056-21 programming mode and a pending option select end after this silence. Default: 120 s.
    let iec21InactivityTimeout: Duration
    private(set) var stations: [Station]
    /// The line's current rate.
    private(set) var baudRate: Int
    /// The meter an IEC 62056-21 mode E opening handed the line to.
    private var hdlcOwner: Int?
    private var lastActivity: ContinuousClock.Instant?

    init(name: String, entries: [MeterEntry], framing: MeterSimConfiguration.Framing, baudRate: Int,
         hdlcInactivityTimeout: Duration, iec21InactivityTimeout: Duration = .seconds(120)) throws {
        self.name = name
        self.framing = framing
        self.lineBaudRate = baudRate
        self.hdlcInactivityTimeout = hdlcInactivityTimeout
        self.iec21InactivityTimeout = iec21InactivityTimeout
        self.baudRate = framing == .iec21 ? IEC21ServerSession.initialBaudRate : baudRate
        stations = try entries.map { entry in
            Station(entry: entry,
                    link: HDLCServerConnection(configuration: try entry.quirk.hdlcConfiguration(physical: entry.hdlcPhysicalAddress)),
                    iec21: framing == .iec21
                        ? IEC21ServerSession(configuration: entry.quirk.iec21Configuration(serialNumber: entry.serialNumber),
                                             device: SimulatedIEC21Device(meter: entry.meter, quirk: entry.quirk))
                        : nil)
        }
    }

    /// Meters sharing a physical address, which will answer together: `[address: serials]`.
    var sharedAddresses: [UInt16: [String]] {
        Dictionary(grouping: stations, by: { $0.entry.hdlcPhysicalAddress })
            .filter { $0.value.count > 1 }
            .mapValues { $0.map(\.entry.serialNumber) }
    }

    // MARK: - Events

    /// Bytes the client sent on the line.
    mutating func receive(_ bytes: ByteBuffer, now: ContinuousClock.Instant) -> Output {
        lastActivity = now
        var answers: [(station: Int, operations: [Operation])] = []
        var output = Output()
        let listeners = hdlcOwner.map { [$0] } ?? Array(stations.indices)
        for index in listeners {
            let faults = stations[index].entry.faults.withLock { $0 }
            if faults.silent { continue }
            let operations: [Operation]
            if framing == .hdlc || hdlcOwner == index {
                operations = hdlc(index, bytes, requests: &output.requests)
            } else {
                operations = iec21(index, bytes)
            }
            if !operations.isEmpty { answers.append((index, applying(faults, to: operations, station: index))) }
        }
        let talkers = answers.filter { $0.operations.contains { if case .write = $0 { true } else { false } } }
        if talkers.count > 1 {
            output.contention = "meters \(talkers.map { stations[$0.station].entry.serialNumber }.joined(separator: ", ")) answered the same frame"
            output.operations = Self.collide(answers.map(\.operations))
        } else {
            output.operations = answers.flatMap(\.operations)
        }
        for case .setBaudRate(let rate) in output.operations { baudRate = rate }
        return output
    }

    /// Time passes: links and IEC 62056-21 sessions idle too long return to their start.
    mutating func tick(now: ContinuousClock.Instant) -> Output {
        guard let lastActivity else { return Output() }
        let idle = now - lastActivity
        var output = Output()
        for index in stations.indices {
            if hdlcInactivityTimeout > .zero, idle >= hdlcInactivityTimeout, stations[index].link.isConnected {
                _ = stations[index].link.inactivityTimeout()
                stations[index].session = nil
                if hdlcOwner == index { output.operations += endHDLC(index) }
            }
            if idle >= iec21InactivityTimeout, var iec21 = stations[index].iec21, !iec21.isIdle {
                if hdlcOwner == index {
                    stations[index].link = HDLCServerConnection(configuration: stations[index].link.configuration)
                    stations[index].session = nil
                    hdlcOwner = nil
                }
                output.operations += Self.operations(iec21.inactivityTimeout(), baudRate: baudRate)
                stations[index].iec21 = iec21
            }
        }
        for case .setBaudRate(let rate) in output.operations { baudRate = rate }
        return output
    }

    // MARK: - Protocols

    private mutating func hdlc(_ index: Int, _ bytes: ByteBuffer, requests: inout Int) -> [Operation] {
        var pending = stations[index].link.receive(bytes)
        var operations: [Operation] = []
        while !pending.isEmpty {
            switch pending.removeFirst() {
            case .send(let frame):
                operations.append(.write(frame, baudRate: baudRate))
            case .deliver(let request):
                requests += 1
                let clientSAP = UInt16(stations[index].link.clientAddress?.upper ?? 0x10)
                if stations[index].session == nil || stations[index].session?.clientSAP != clientSAP || stations[index].session?.isReleased == true {
                    stations[index].session = COSEMServerSession(meter: stations[index].entry.meter, clientSAP: clientSAP)
                }
                if let response = stations[index].session!.handle(request, now: Date()).map(stations[index].entry.quirk.adjust),
                   let actions = try? stations[index].link.respond(response) {
                    pending.insert(contentsOf: actions, at: 0)
                } else {
                    stations[index].link.discardRequest()
                }
            case .closed:
                stations[index].session = nil
                if hdlcOwner == index {
                    // The UA to DISC still goes out at the HDLC rate, then the line returns to 300 Bd.
                    operations += pending.compactMap { if case .send(let frame) = $0 { .write(frame, baudRate: baudRate) } else { nil } }
                    pending.removeAll()
                    operations += endHDLC(index)
                }
            }
        }
        return operations
    }

    private mutating func endHDLC(_ index: Int) -> [Operation] {
        hdlcOwner = nil
        guard var iec21 = stations[index].iec21 else { return [] }
        let operations = Self.operations(iec21.hdlcEnded(), baudRate: baudRate)
        stations[index].iec21 = iec21
        return operations
    }

    private mutating func iec21(_ index: Int, _ bytes: ByteBuffer) -> [Operation] {
        guard var session = stations[index].iec21 else { return [] }
        let actions = session.receive(bytes)
        stations[index].iec21 = session
        if actions.contains(.enteredHDLC) {
            hdlcOwner = index
            stations[index].link = HDLCServerConnection(configuration: stations[index].link.configuration)
            stations[index].session = nil
        }
        return Self.operations(actions, baudRate: baudRate)
    }

    /// IEC 62056-21 actions as line operations, each write at the rate in force when it is sent.
    static func operations(_ actions: [IEC21ServerSession.Action], baudRate: Int) -> [Operation] {
        var rate = baudRate
        var operations: [Operation] = []
        for action in actions {
            switch action {
            case .send(let bytes): operations.append(.write(bytes, baudRate: rate))
            case .switchBaudRate(let new):
                rate = new
                operations.append(.setBaudRate(new))
            case .enteredHDLC, .ended: break
            }
        }
        return operations
    }

    // MARK: - Faults

    private mutating func applying(_ faults: MeterFaults, to operations: [Operation], station: Int) -> [Operation] {
        guard operations.contains(where: { if case .write = $0 { true } else { false } }) else { return operations }
        stations[station].responses += 1
        if faults.drop && stations[station].responses % 2 == 0 {
            return operations.filter { if case .write = $0 { false } else { true } }
        }
        return operations.map { operation in
            guard case .write(let bytes, let rate) = operation else { return operation }
            var out = bytes
            if faults.garbage {
                out = ByteBuffer()
                for _ in 0..<max(bytes.readableBytes, 8) { out.writeInteger(UInt8.random(in: 0...255)) }
            }
            return .write(out, baudRate: faults.slowBaudRate.map { min($0, rate) } ?? rate)
        }
    }

    /// What the line carries when several meters drive it at once: their first transmissions
    /// ANDed (a driven space wins over the idle mark), each later talker one character behind
    /// the one before (transmitters never start in the same bit time), so even identical
    /// frames arrive corrupt; their rate changes are kept.
    static func collide(_ answers: [[Operation]]) -> [Operation] {
        var collided: [UInt8] = []
        var rate = Int.max
        var others: [Operation] = []
        var talker = 0
        for operations in answers {
            var first = true
            for operation in operations {
                if first, case .write(let bytes, let baudRate) = operation {
                    first = false
                    rate = min(rate, baudRate)
                    let frame = Array(bytes.readableBytesView)
                    if collided.count < talker + frame.count { collided += Array(repeating: 0xFF, count: talker + frame.count - collided.count) }
                    for (offset, byte) in frame.enumerated() { collided[talker + offset] &= byte }
                    talker += 1
                } else if case .setBaudRate = operation {
                    others.append(operation)
                }
            }
        }
        return [.write(ByteBuffer(bytes: collided), baudRate: rate)] + others
    }
}
