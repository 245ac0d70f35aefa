import DLMSSecurity
import Foundation
import Logging
import MeterSimulation
import ServiceLifecycle
import ServiceRuntime

/// Everything meter-sim needs to run: one or more groups of alike meters (the flags describe
/// one group, a fleet file any number) and the settings they share.
struct MeterSimConfiguration: Sendable {
    /// How the meters are reached.
    enum Transport: String, Sendable, Codable, CaseIterable {
        /// One listening TCP socket per meter.
        case tcp
        /// One UDP socket per meter; each datagram carries one wrapper frame (IEC 62056-47 §5).
        case udp
        /// A serial server in UDP mode (MOXA-like): one UDP socket per line, datagrams carry the
        /// raw serial bytes of the meters behind it, told apart by HDLC physical address.
        case gatewayUDP = "gateway-udp"
        /// A serial line per `metersPerLine` meters: a pseudo-terminal meter-sim creates (its
        /// slave path is printed and linked from `linePath`), or a given serial device.
        case serial
    }

    /// How DLMS APDUs (or IEC 62056-21 messages) travel.
    enum Framing: String, Sendable, Codable, CaseIterable {
        /// IEC 62056-47 wrapper: source wPort = client SAP, destination wPort = logical device 1.
        case wrapper
        /// IEC 62056-46 HDLC: server logical address 1 and the meter's physical address.
        case hdlc
        /// IEC 62056-21 mode C (readout, programming mode) and mode E (then HDLC) at 300 Bd start.
        case iec21
    }

    /// Alike meters: same transport, framing, family and fault mix.
    /// How the head-end is told to open a group's meters.
    enum HeadEndAccess: String, Sendable, CaseIterable {
        /// Client 17 with the LLS password.
        case lls
        /// Client 1 with HLS-GMAC and authenticated encryption (the fleet needs keys).
        case hlsGMAC = "hls-gmac"
    }

    struct Group: Sendable {
        /// Default: 1.
        var count = 1
        /// Default: tcp.
        var transport: Transport = .tcp
        /// Default: wrapper.
        var framing: Framing = .wrapper
        /// TCP/UDP: meter n listens on `firstPort + n` (or on `firstPort` at its own address);
        /// gateway-udp: line n on `firstPort + n`. Default: 4061.
        var firstPort = 4061
        /// Address of meter 0 (or gateway 0). Default: 127.0.0.1.
        var addressBase = "127.0.0.1"
        /// Whether each meter gets its own address (`addressBase + n`) instead of its own port. Default: false.
        var addressPerMeter = false
        /// HDLC physical address of the first meter: of the group on TCP, of each line on lines. Default: 16.
        var hdlcPhysicalBase = 16
        /// Explicit physical addresses of the meters on each line (overrides the base; equal
        /// addresses on one line make their answers collide). Default: none.
        var physicalAddresses: [Int]?
        /// Meters on one serial line or behind one gateway port. Default: 1.
        var metersPerLine = 1
        /// Serial: a symbolic link to each line's pseudo-terminal: this path for one line,
        /// `path-n` for line n of several. Default: none (the pts path is only printed).
        var linePath: String?
        /// Serial: open this device instead of creating a pseudo-terminal (one line). Default: none.
        var serialDevice: String?
        /// Serial: the line's rate for HDLC (IEC 62056-21 starts at 300 Bd and switches). Default: 9600.
        var baudRate = 9600
        /// Default: standard.
        var quirk: MeterQuirk = .standard
        /// Default: none.
        var faults = FaultConfiguration()
        /// How `meter-sim config` describes the group to the head-end. Default (`nil`): HLS-GMAC
        /// with ciphering when the fleet has keys, else the LLS reading client. The meters
        /// themselves accept both whenever the fleet has keys.
        var headEndAccess: HeadEndAccess?

        var lineCount: Int { (count + metersPerLine - 1) / metersPerLine }

        /// The physical address of the meter at `position` on its line (or of meter `position` over TCP).
        func physicalAddress(position: Int) -> UInt16 {
            if let physicalAddresses, !physicalAddresses.isEmpty {
                return UInt16(truncatingIfNeeded: physicalAddresses[position % physicalAddresses.count]) & 0x3FFF
            }
            return UInt16(truncatingIfNeeded: hdlcPhysicalBase + position) & 0x3FFF
        }

        /// The symbolic link of line `line`.
        func linkPath(line: Int) -> String? {
            guard let linePath else { return nil }
            return lineCount == 1 ? linePath : "\(linePath)-\(line)"
        }

        /// The listening address and port of meter `index` (within the group) or of gateway `index`.
        func endpoint(of index: Int) throws -> (host: String, port: Int) {
            guard addressPerMeter else { return (addressBase, firstPort + index) }
            let parts = addressBase.split(separator: ".").compactMap { UInt32($0) }
            guard parts.count == 4, parts.allSatisfy({ $0 <= 255 }) else {
                throw MeterSimError("address base '\(addressBase)' is not an IPv4 address")
            }
            let base = parts.reduce(UInt32(0)) { $0 << 8 | $1 }
            let (address, overflow) = base.addingReportingOverflow(UInt32(index))
            guard !overflow else { throw MeterSimError("meter \(index): address beyond 255.255.255.255") }
            let host = [24, 16, 8, 0].map { String((address >> UInt32($0)) & 0xFF) }.joined(separator: ".")
            return (host, firstPort)
        }

        /// Rejects combinations no meter family supports.
        func validate() throws {
            let allowed: [Transport: Set<Framing>] = [
                .tcp: [.wrapper, .hdlc], .udp: [.wrapper], .gatewayUDP: [.hdlc, .iec21], .serial: [.hdlc, .iec21],
            ]
            guard count >= 1 else { throw MeterSimError("a group needs at least one meter") }
            guard allowed[transport]!.contains(framing) else {
                throw MeterSimError("\(transport.rawValue) carries \(allowed[transport]!.map(\.rawValue).sorted().joined(separator: " or ")), not \(framing.rawValue)")
            }
            if quirk == .wrapperOnly, transport != .tcp {
                throw MeterSimError("wrapper-only meters are reached over TCP only, not \(transport.rawValue)")
            }
            guard (1...126).contains(metersPerLine) else { throw MeterSimError("meters per line must be within 1…126") }
            if serialDevice != nil, transport != .serial || lineCount != 1 {
                throw MeterSimError("a serial device serves one serial line: give it at most --meters-per-line meters")
            }
            guard [300, 600, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200].contains(baudRate) else {
                throw MeterSimError("baud rate \(baudRate) is not a standard rate")
            }
            if let rate = faults.slowBaudRate, rate < 1 { throw MeterSimError("slow baud rate \(rate) must be positive") }
            if transport == .tcp || transport == .udp {
                guard firstPort + (addressPerMeter ? 0 : count - 1) <= 65535 else { throw MeterSimError("ports beyond 65535") }
            } else if transport == .gatewayUDP {
                guard firstPort + lineCount - 1 <= 65535 else { throw MeterSimError("ports beyond 65535") }
            }
        }
    }

    var runtime: RuntimeConfiguration
    var groups: [Group]
    /// Seed of the deterministic data. Default: 0.
    var seed: UInt64 = 0
    /// LLS password (also the IEC 62056-21 programming password). Default: "12345678".
    var password: [UInt8] = Array("12345678".utf8)
    /// Largest server APDU; 0 keeps the simulator's default.
    var maximumPDUSize: Int = 0
    /// Serial lines: whether bytes are written at the line's baud rate (as a real UART would)
    /// rather than at once. Default: true.
    var pacesSerialLines = true
    /// HDLC: a link idle this long is dropped (TCP: the connection closes). Default: zero, never.
    var hdlcInactivityTimeout: Duration = .zero
    /// Keys and HLS secret of the whole fleet; each meter has its own system title. Default:
    /// `nil`, no ciphered or HLS associations.
    var security: MeterSecurity?

    var meterCount: Int { groups.reduce(0) { $0 + $1.count } }

    /// The simulator configuration of meter `index` (fleet-wide) in `group`.
    func meterConfiguration(of index: Int, in group: Group) -> SimulatedMeter.Configuration {
        var meter = SimulatedMeter.Configuration.fleetMember(index: index, seed: seed)
        meter.lowLevelPassword = password
        if maximumPDUSize > 0 { meter.maximumServerPDUSize = UInt16(maximumPDUSize) }
        if group.faults.applies(.drift, toMeter: index, seed: seed) { meter.clockOffset = group.faults.clockDrift }
        meter.refusesAssociation = group.faults.applies(.refuse, toMeter: index, seed: seed)
        meter.security = security
        meter.reportsStaleInvocationCounter = group.faults.applies(.staleCounter, toMeter: index, seed: seed)
        group.quirk.apply(to: &meter)
        return meter
    }
}

struct MeterSimError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension App {
    static func serviceGroup(for configuration: MeterSimConfiguration) -> ServiceGroup {
        let runtime = ServiceRuntime(configuration.runtime)
        let kinds = configuration.groups.map { "\($0.count)×\($0.transport.rawValue)/\($0.framing.rawValue)/\($0.quirk.rawValue)" }
        runtime.logger.info("meter-sim starting", metadata: ["meters": "\(configuration.meterCount)", "groups": "\(kinds.joined(separator: ", "))"])
        let fleet = MeterFleet(configuration: configuration, readiness: runtime.readiness, logger: runtime.logger)
        runtime.adminServer.addRoutes { [fleet] router in fleet.addAdminRoutes(to: router) }
        return runtime.serviceGroup(running: [fleet])
    }
}
