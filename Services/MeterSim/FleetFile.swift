import Foundation
import ServiceRuntime

/// `meter-sim --fleet fleet.json`: the fleet as groups of alike meters, e.g.
///
/// ```json
/// {
///   "seed": 0, "password": "12345678", "hdlcInactivityTimeout": "120s", "pace": true,
///   "groups": [
///     {"count": 1000, "transport": "tcp", "framing": "wrapper", "port": 20000,
///      "faults": {"silent": 0.01, "latency": "200ms", "jitter": "50ms", "clockDrift": "-90s", "clockDriftFraction": 0.05}},
///     {"count": 2, "transport": "tcp", "framing": "hdlc", "port": 4200, "quirk": "four-byte-address", "physicalBase": 17},
///     {"count": 3, "transport": "serial", "framing": "hdlc", "metersPerLine": 3, "linePath": "/tmp/hes-bus", "baud": 9600},
///     {"count": 1, "transport": "serial", "framing": "iec21", "quirk": "emh", "linePath": "/tmp/hes-optical"},
///     {"count": 4, "transport": "gateway-udp", "metersPerLine": 4, "port": 4300},
///     {"count": 5, "transport": "tcp", "framing": "wrapper", "port": 4400, "access": "hls-gmac"}
///   ]
/// }
/// ```
///
/// Meters are numbered across the groups in order (SIM00000001 is the first meter of the first
/// group), so `meter-sim expect --meter N` holds for fleet files too. Every key but `count`
/// has the default of the flag of the same name.
struct FleetFile: Decodable {
    struct Faults: Decodable {
        var latency: String?
        var jitter: String?
        var silent: Double?
        var garbage: Double?
        var drop: Double?
        var reset: Double?
        var refuse: Double?
        var clockDrift: String?
        var clockDriftFraction: Double?
        var slowBaud: Int?
        var slowBaudFraction: Double?
    }

    struct Group: Decodable {
        var count: Int
        var transport: MeterSimConfiguration.Transport?
        var framing: MeterSimConfiguration.Framing?
        var port: Int?
        var addressBase: String?
        var addressPerMeter: Bool?
        var physicalBase: Int?
        var physicalAddresses: [Int]?
        var metersPerLine: Int?
        var linePath: String?
        var serialDevice: String?
        var baud: Int?
        var quirk: MeterQuirk?
        var faults: Faults?
        /// `lls` or `hls-gmac`: how `meter-sim config` tells the head-end to open these meters.
        var access: String?
    }

    var seed: UInt64?
    var password: String?
    var maxPdu: Int?
    var pace: Bool?
    var hdlcInactivityTimeout: String?
    var groups: [Group]

    /// Reads and checks the file.
    ///
    /// - Throws: `MeterSimError` naming the file and what is wrong with it.
    static func load(path: String, runtime: RuntimeConfiguration) throws -> MeterSimConfiguration {
        guard let data = FileManager.default.contents(atPath: path) else { throw MeterSimError("--fleet: cannot read \(path)") }
        let file: FleetFile
        do {
            file = try JSONDecoder().decode(FleetFile.self, from: data)
        } catch {
            throw MeterSimError("--fleet \(path): \(error)")
        }
        guard !file.groups.isEmpty else { throw MeterSimError("--fleet \(path): no groups") }
        var configuration = MeterSimConfiguration(runtime: runtime, groups: try file.groups.enumerated().map { number, group in
            do {
                return try group.configuration()
            } catch let error as MeterSimError {
                throw MeterSimError("--fleet \(path): group \(number + 1): \(error.description)")
            }
        })
        if let seed = file.seed { configuration.seed = seed }
        if let password = file.password { configuration.password = Array(password.utf8) }
        if let maxPdu = file.maxPdu {
            guard (0...65535).contains(maxPdu) else { throw MeterSimError("--fleet \(path): maxPdu \(maxPdu) is not within 0…65535") }
            configuration.maximumPDUSize = maxPdu
        }
        if let pace = file.pace { configuration.pacesSerialLines = pace }
        if let timeout = file.hdlcInactivityTimeout { configuration.hdlcInactivityTimeout = try Self.duration(timeout, "hdlcInactivityTimeout") }
        return configuration
    }

    static func duration(_ text: String, _ key: String) throws -> Duration {
        do {
            return try FleetOptions.duration(text, flag: key)
        } catch {
            throw MeterSimError("\(key): '\(text)' is not a duration (e.g. 200ms, 90s, -90s)")
        }
    }
}

extension FleetFile.Group {
    func configuration() throws -> MeterSimConfiguration.Group {
        var group = MeterSimConfiguration.Group()
        guard (1...100_000).contains(count) else { throw MeterSimError("count \(count) is not within 1…100,000") }
        group.count = count
        group.transport = transport ?? .tcp
        group.framing = framing ?? (group.transport == .tcp || group.transport == .udp ? .wrapper : .hdlc)
        if let port {
            guard (1...65535).contains(port) else { throw MeterSimError("port \(port) is not within 1…65535") }
            group.firstPort = port
        }
        if let addressBase { group.addressBase = addressBase }
        if let addressPerMeter { group.addressPerMeter = addressPerMeter }
        if let physicalBase {
            guard (0...0x3FFF).contains(physicalBase) else { throw MeterSimError("physicalBase \(physicalBase) is not within 0…16383") }
            group.hdlcPhysicalBase = physicalBase
        }
        if let physicalAddresses {
            guard !physicalAddresses.isEmpty, physicalAddresses.allSatisfy({ (0...0x3FFF).contains($0) }) else {
                throw MeterSimError("physicalAddresses must be addresses within 0…16383")
            }
            group.physicalAddresses = physicalAddresses
        }
        if let metersPerLine { group.metersPerLine = metersPerLine }
        group.linePath = linePath
        group.serialDevice = serialDevice
        if let baud { group.baudRate = baud }
        if let quirk { group.quirk = quirk }
        if let access {
            guard let choice = MeterSimConfiguration.HeadEndAccess(rawValue: access) else {
                throw MeterSimError("access '\(access)' is not \(MeterSimConfiguration.HeadEndAccess.allCases.map(\.rawValue).joined(separator: " or "))")
            }
            group.headEndAccess = choice
        }
        if let faults {
            func fraction(_ value: Double?, _ key: String, default defaultValue: Double = 0) throws -> Double {
                guard let value else { return defaultValue }
                guard (0...1).contains(value) else { throw MeterSimError("faults.\(key) \(value) is not within 0…1") }
                return value
            }
            var f = FaultConfiguration()
            if let latency = faults.latency { f.latency = try FleetFile.duration(latency, "faults.latency") }
            if let jitter = faults.jitter { f.jitter = try FleetFile.duration(jitter, "faults.jitter") }
            f.silentFraction = try fraction(faults.silent, "silent")
            f.garbageFraction = try fraction(faults.garbage, "garbage")
            f.dropFraction = try fraction(faults.drop, "drop")
            f.resetFraction = try fraction(faults.reset, "reset")
            f.refuseFraction = try fraction(faults.refuse, "refuse")
            if let drift = faults.clockDrift { f.clockDrift = try FleetFile.duration(drift, "faults.clockDrift") }
            f.clockDriftFraction = try fraction(faults.clockDriftFraction, "clockDriftFraction", default: 1)
            f.slowBaudRate = faults.slowBaud
            f.slowBaudFraction = try fraction(faults.slowBaudFraction, "slowBaudFraction", default: 1)
            group.faults = f
        }
        try group.validate()
        return group
    }
}
