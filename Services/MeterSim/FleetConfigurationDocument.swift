import COSEM
import DLMSSecurity
import Foundation
import Logging
import MeterSimulation
import ServiceRuntime

/// The head-end's configuration (`hes-configuration/v1`, `Shared/Contracts/ConfigurationDocument.swift`)
/// of exactly the meters `meter-sim serve` simulates with the same flags or fleet file: what
/// `meter-sim config` prints for the config-service, so the scheduler reads the simulated fleet.
///
/// - One region; one line per independent endpoint: an IP meter's socket (`tcp`, `udp`), a
///   gateway's port (`gateway-udp`), a serial line's device (`serial`; `optical` for
///   IEC 62056-21 meters read in mode E), each with one session at a time.
/// - Meters are the simulator's serial numbers (`SIM00000001`, …) with their HDLC physical
///   address or IEC 62056-21 device address, and the keys they are read with in the clear
///   (the config-service seals them).
/// - One template per protocol, manufacturer profile and authentication (`sim-dlms-wrapper`,
///   `sim-dlms-wrapper-hls-gmac`, `sim-dlms-hdlc-four-byte-address`, …), all read on the
///   schedule `sim-read`; a group's `access` (fleet file) picks LLS or HLS-GMAC.
///
/// meter-sim does not link the Contracts module, so these types write the document's JSON
/// themselves; the executable test reads the output with `ConfigurationParser` and its validator.
struct FleetConfigurationDocument: Encodable {
    /// What the document adds to the fleet: where it belongs and when it is read.
    struct Options: Sendable {
        /// How IEC 62056-21 meters on serial lines are described.
        enum IEC21Mode: String, Sendable, CaseIterable {
            /// Mode E (sign-on at 300 Bd, then HDLC): `dlms-hdlc` on an `optical` line, which the
            /// collector executes.
            case modeE = "e"
            /// Mode C (readout and programming mode): `iec62056-21` on a `serial` line.
            case modeC = "c"
        }

        /// Default: local.
        var region = "local"
        /// Default: every quarter hour.
        var cron = "*/15 * * * *"
        /// Default: UTC.
        var timeZone = "UTC"
        /// Default: 15.
        var windowMinutes = 15
        /// Default: 0.
        var jitterSeconds = 0
        /// How far back the load profile is read. Default: 24.
        var lookbackHours: Double = 24
        /// The address the head-end uses for IP meters and gateways that listen on one address
        /// (a port each); meters with an address each keep theirs. Default: the listening address.
        var host: String?
        /// Default: mode E.
        var iec21Mode: IEC21Mode = .modeE
    }

    static let scheduleID = "sim-read"
    /// The client system title of ciphered and HLS-GMAC associations: hesctl's default ("HSES" 1).
    static let clientSystemTitle = "4853455300000001"
    /// What every template reads: the clock and the import and export totals the simulator serves.
    static let objects = [
        ObjectReference(classID: 8, obis: "0.0.1.0.0.255", attribute: 2),
        ObjectReference(classID: 3, obis: "1.0.1.8.0.255", attribute: 2),
        ObjectReference(classID: 3, obis: "1.0.2.8.0.255", attribute: 2),
    ]
    static let loadProfile = "1.0.99.1.0.255"

    var schema = "hes-configuration/v1"
    var regions: [Region]
    var lines: [Line] = []
    var templates: [Template] = []
    var schedules: [Schedule]
    var meters: [Meter] = []

    /// The document of `configuration`'s fleet.
    ///
    /// - Throws: `MeterSimError` for a fleet the document cannot describe: a serial line without a
    ///   known device path, two meters sharing an endpoint or an HDLC address on one line, an
    ///   address outside 16…16381, keys that are not 16 bytes.
    init(configuration: MeterSimConfiguration, options: Options) throws {
        regions = [Region(id: options.region, name: "meter-sim")]
        schedules = [Schedule(id: Self.scheduleID, cron: options.cron, timeZone: options.timeZone,
                              windowMinutes: options.windowMinutes, jitterSeconds: options.jitterSeconds)]
        // The same meters, addresses and lines `serve` creates.
        let fleet = MeterFleet(configuration: configuration, readiness: Readiness(),
                               logger: Logger(label: "meter-sim", factory: { _ in SwiftLogNoOpLogHandler() }))
        let (entries, servedLines) = try fleet.makeEntries()
        let lineInGroup = Dictionary(servedLines.map { ($0.name, $0.line) }, uniquingKeysWith: { first, _ in first })
        let credentials = try Credentials(configuration)

        var lineIndex: [String: Int] = [:]
        var hdlcAddresses: [String: [Int: String]] = [:]
        var templateIDs: Set<String> = []
        var index = 0
        for (number, group) in configuration.groups.enumerated() {
            if group.headEndAccess == .hlsGMAC && !credentials.hasKeys {
                throw MeterSimError("group \(number + 1) is read with hls-gmac, but the fleet has no keys (--block-cipher-key/--auth-key or --example-keys)")
            }
            let access = Access(group: group, iec21Mode: options.iec21Mode, credentials: credentials)
            if templateIDs.insert(access.templateID).inserted {
                templates.append(Template(id: access.templateID, lookbackHours: options.lookbackHours, defaults: access.settings))
            }
            for _ in 0..<group.count {
                let entry = entries[index]
                index += 1
                let line = try Self.line(of: entry, group: group, groupNumber: number + 1, lineInGroup: lineInGroup,
                                         access: access, options: options)
                if let existing = lineIndex[line.id] {
                    // Only lines shared by design (a bus, a gateway port) carry several meters.
                    guard entry.line != nil, lines[existing] == line else {
                        let hint = options.host == nil ? "serve could not bind both" : "--host gives meters listening on different addresses one endpoint"
                        throw MeterSimError("meter \(entry.serialNumber): its endpoint \(line.endpoint) is another meter's too (\(hint))")
                    }
                } else {
                    lineIndex[line.id] = lines.count
                    lines.append(line)
                }
                var meter = Meter(id: entry.serialNumber, serialNumber: entry.serialNumber, line: line.id, template: access.templateID)
                if access.settings.protocol == .dlmsHDLC {
                    let address = Int(entry.hdlcPhysicalAddress)
                    guard (0x10...0x3FFD).contains(address) else {
                        throw MeterSimError("meter \(entry.serialNumber): HDLC physical address \(address) is outside 16…16381, which the head-end's configuration takes")
                    }
                    if let other = hdlcAddresses[line.id]?[address] {
                        throw MeterSimError("meters \(other) and \(entry.serialNumber) share HDLC physical address \(address) on \(line.id): one configuration cannot address both")
                    }
                    hdlcAddresses[line.id, default: [:]][address] = entry.serialNumber
                    meter.hdlcPhysicalAddress = address
                }
                if group.framing == .iec21 { meter.deviceAddress = entry.serialNumber }
                switch access.settings.authentication {
                case .lls: meter.keys = Keys(password: credentials.password)
                case .hlsGMAC:
                    meter.keys = Keys(blockCipherKey: credentials.blockCipherKey, authenticationKey: credentials.authenticationKey)
                    meter.systemTitle = Self.clientSystemTitle
                    meter.serverSystemTitle = entry.meter.systemTitle.hex
                }
                meters.append(meter)
            }
        }
    }

    /// The line meter `entry` is reached through.
    private static func line(of entry: MeterEntry, group: MeterSimConfiguration.Group, groupNumber: Int, lineInGroup: [String: Int],
                             access: Access, options: Options) throws -> Line {
        let host = group.addressPerMeter ? entry.host : options.host ?? entry.host
        let endpoint: Endpoint
        let id: String
        switch group.transport {
        case .tcp:
            endpoint = .tcp(host: host, port: entry.port)
            id = "sim-tcp-\(host):\(entry.port)"
        case .udp:
            endpoint = .udp(host: host, port: entry.port)
            id = "sim-udp-\(host):\(entry.port)"
        case .gatewayUDP:
            endpoint = .gatewayUDP(host: host, port: entry.port)
            id = "sim-\(entry.line ?? "gateway")"
        case .serial:
            guard let name = entry.line, let device = group.serialDevice ?? group.linkPath(line: lineInGroup[name] ?? 0) else {
                throw MeterSimError("group \(groupNumber) (serial): give it a line path (--line-path, \"linePath\") or a serial device: "
                                    + "the configuration names each line's device, and a pseudo-terminal's own path is known only once serve runs")
            }
            endpoint = access.usesOpticalLine ? .optical(device: device, maximumBaudRate: group.baudRate) : .serial(device: device, baudRate: group.baudRate)
            id = "sim-\(name)"
        }
        return Line(id: id, region: options.region, endpoint: endpoint)
    }

    /// The secrets the fleet's meters are read with, in the clear.
    private struct Credentials {
        var password: String
        var blockCipherKey: String?
        var authenticationKey: String?

        init(_ configuration: MeterSimConfiguration) throws {
            password = String(decoding: configuration.password, as: UTF8.self)
            guard let security = configuration.security else { return }
            guard security.blockCipherKey.count == 16, security.authenticationKey.count == 16 else {
                throw MeterSimError("the fleet's keys have 32 bytes; the head-end's configuration carries security suite 0 keys (16 bytes)")
            }
            blockCipherKey = security.blockCipherKey.withUnsafeBytes { Hex.encode($0) }
            authenticationKey = security.authenticationKey.withUnsafeBytes { Hex.encode($0) }
        }

        var hasKeys: Bool { blockCipherKey != nil }
    }

    /// How the meters of one group are opened: what the simulator requires of a client.
    private struct Access {
        let settings: Settings
        let usesOpticalLine: Bool

        /// The reading client with the LLS password (the public client reads no profile), or
        /// the management client with HLS-GMAC and ciphering when the fleet has keys;
        /// IEC 62056-21 mode C: the programming mode's P1 password.
        init(group: MeterSimConfiguration.Group, iec21Mode: Options.IEC21Mode, credentials: Credentials) {
            let meterProtocol: MeterProtocol
            if group.framing == .wrapper || (group.transport == .tcp && group.quirk == .wrapperOnly) {
                meterProtocol = .dlmsWrapper
            } else if group.framing == .hdlc {
                meterProtocol = .dlmsHDLC
            } else {
                // IEC 62056-21 meters (gateways carry mode C only: the collector opens mode E on optical lines).
                meterProtocol = group.transport == .serial && iec21Mode == .modeE ? .dlmsHDLC : .iec62056_21
            }
            usesOpticalLine = group.transport == .serial && group.framing == .iec21 && iec21Mode == .modeE
            let profile = group.quirk.manufacturerProfile
            if meterProtocol == .iec62056_21 {
                settings = Settings(protocol: meterProtocol, authentication: .lls, manufacturerProfile: profile)
            } else if credentials.hasKeys && group.headEndAccess != .lls {
                settings = Settings(protocol: meterProtocol, clientSAP: 1, serverLogicalAddress: 1, authentication: .hlsGMAC, security: "both",
                                    manufacturerProfile: profile)
            } else {
                settings = Settings(protocol: meterProtocol, clientSAP: 17, serverLogicalAddress: 1, authentication: .lls, manufacturerProfile: profile)
            }
        }

        /// One template per protocol, profile and authentication (`sim-dlms-wrapper`,
        /// `sim-dlms-wrapper-hls-gmac`, `sim-dlms-hdlc-four-byte-address`, …).
        var templateID: String {
            "sim-\(settings.protocol.rawValue)" + (settings.manufacturerProfile == MeterQuirk.standard.manufacturerProfile ? "" : "-\(settings.manufacturerProfile)")
                + (settings.authentication == .hlsGMAC ? "-hls-gmac" : "")
        }
    }

    // MARK: - The document's elements (as Contracts' `ConfigurationDocument` writes them)

    enum MeterProtocol: String, Encodable {
        case dlmsWrapper = "dlms-wrapper"
        case dlmsHDLC = "dlms-hdlc"
        case iec62056_21 = "iec62056-21"
    }

    enum Authentication: String, Encodable {
        case lls
        case hlsGMAC = "hls-gmac"
    }

    struct Region: Encodable {
        var id: String
        var name: String
    }

    /// `MeterEndpoint`: `{"kind": "tcp", "host": …, "port": …}`, `{"kind": "serial", "device": …, "baudRate": …}`, …
    enum Endpoint: Encodable, Equatable, CustomStringConvertible {
        case tcp(host: String, port: Int)
        case udp(host: String, port: Int)
        case gatewayUDP(host: String, port: Int)
        case serial(device: String, baudRate: Int)
        case optical(device: String, maximumBaudRate: Int)

        private enum CodingKeys: String, CodingKey { case kind, host, port, device, baudRate, maximumBaudRate }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            switch self {
            case .tcp(let host, let port), .udp(let host, let port), .gatewayUDP(let host, let port):
                try c.encode(kind, forKey: .kind); try c.encode(host, forKey: .host); try c.encode(port, forKey: .port)
            case .serial(let device, let baudRate):
                try c.encode(kind, forKey: .kind); try c.encode(device, forKey: .device); try c.encode(baudRate, forKey: .baudRate)
            case .optical(let device, let baudRate):
                try c.encode(kind, forKey: .kind); try c.encode(device, forKey: .device); try c.encode(baudRate, forKey: .maximumBaudRate)
            }
        }

        var kind: String {
            switch self {
            case .tcp: "tcp"
            case .udp: "udp"
            case .gatewayUDP: "gateway-udp"
            case .serial: "serial"
            case .optical: "optical"
            }
        }

        var description: String {
            switch self {
            case .tcp(let host, let port), .udp(let host, let port), .gatewayUDP(let host, let port): "\(kind)://\(host):\(port)"
            case .serial(let device, let rate), .optical(let device, let rate): "\(kind)://\(device)@\(rate)"
            }
        }
    }

    struct Line: Encodable, Equatable {
        var id: String
        var region: String
        var endpoint: Endpoint
        /// Every simulated endpoint is one peer or one bus.
        var maxSessions = 1
    }

    struct ObjectReference: Encodable {
        var classID: Int
        var obis: String
        var attribute: Int
    }

    struct ProfileRead: Encodable {
        var obis: String
        var classID = 7
        var attribute = 2
        var lookbackHours: Double
    }

    struct Settings: Encodable {
        var `protocol`: MeterProtocol
        var clientSAP: Int?
        var serverLogicalAddress: Int?
        var authentication: Authentication
        var security: String?
        var manufacturerProfile: String
    }

    struct Template: Encodable {
        var id: String
        var schedules = [FleetConfigurationDocument.scheduleID]
        var objects = FleetConfigurationDocument.objects
        var profiles: [ProfileRead]
        var defaults: Settings

        init(id: String, lookbackHours: Double, defaults: Settings) {
            self.id = id
            self.profiles = [ProfileRead(obis: FleetConfigurationDocument.loadProfile, lookbackHours: lookbackHours)]
            self.defaults = defaults
        }
    }

    struct Schedule: Encodable {
        var id: String
        var cron: String
        var timeZone: String
        var windowMinutes: Int
        var jitterSeconds: Int
    }

    struct Keys: Encodable {
        var password: String?
        var blockCipherKey: String?
        var authenticationKey: String?
    }

    struct Meter: Encodable {
        var id: String
        var serialNumber: String
        var line: String
        var template: String
        var hdlcPhysicalAddress: Int?
        var deviceAddress: String?
        var systemTitle: String?
        var serverSystemTitle: String?
        var keys: Keys?
    }

    /// The document as `meter-sim config` prints it: pretty, keys sorted.
    func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}
