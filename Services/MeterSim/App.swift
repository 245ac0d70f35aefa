import ArgumentParser
import COSEM
import Foundation
import MeterSimulation
import ServiceRuntime

/// `meter-sim`: simulated DLMS meters for development, tests and load.
@main
struct App: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meter-sim",
        abstract: "Serves simulated smart meters on loopback addresses (DLMS wrapper or HDLC over TCP).",
        subcommands: [Serve.self, Expect.self],
        defaultSubcommand: Serve.self)
}

/// `meter-sim [serve]`: one listening socket per meter.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Serve the simulated meters (default).")

    @OptionGroup var common: CommonOptions

    @Option(help: ArgumentHelp("Number of simulated meters (HES_SIM_METERS). Default: 1", valueName: "count"))
    var meters: Int?
    @Option(help: ArgumentHelp("wrapper (IEC 62056-47) or hdlc (IEC 62056-46) over TCP (HES_SIM_FRAMING). Default: wrapper", valueName: "framing"))
    var framing: String?
    @Option(help: ArgumentHelp("First TCP port; meter n listens on port+n, or on port at its own address with --address-per-meter (HES_SIM_PORT). Default: 4061", valueName: "port"))
    var port: Int?
    @Option(help: ArgumentHelp("Listening address of meter 0 (HES_SIM_ADDRESS_BASE). Default: 127.0.0.1", valueName: "ipv4"))
    var addressBase: String?
    @Flag(help: "Give meter n the address base+n and the same port for all (HES_SIM_ADDRESS_PER_METER=true).")
    var addressPerMeter = false
    @Option(help: ArgumentHelp("HDLC physical address of meter n is this + n (HES_SIM_HDLC_PHYSICAL_BASE). Default: 16", valueName: "address"))
    var hdlcPhysicalBase: Int?
    @Option(help: ArgumentHelp("Seed of the deterministic data (HES_SIM_SEED). Default: 0", valueName: "seed"))
    var seed: Int?
    @Option(help: ArgumentHelp("LLS password (HES_SIM_PASSWORD). Default: 12345678", valueName: "text"))
    var password: String?
    @Option(help: ArgumentHelp("Largest server APDU (HES_SIM_MAX_PDU). Default: the simulator's", valueName: "bytes"))
    var maxPdu: Int?
    @Option(help: ArgumentHelp("Delay before every response, e.g. 200ms (HES_SIM_FAULT_LATENCY). Default: 0", valueName: "duration"))
    var faultLatency: String?
    @Option(help: ArgumentHelp("Random extra delay up to this (HES_SIM_FAULT_JITTER). Default: 0", valueName: "duration"))
    var faultJitter: String?
    @Option(help: ArgumentHelp("Fraction of meters that never answer (HES_SIM_FAULT_SILENT_FRACTION). Default: 0", valueName: "0…1"))
    var faultSilentFraction: Double?
    @Option(help: ArgumentHelp("Fraction of meters answering with garbage (HES_SIM_FAULT_GARBAGE_FRACTION). Default: 0", valueName: "0…1"))
    var faultGarbageFraction: Double?
    @Option(help: ArgumentHelp("Fraction of meters dropping every second response (HES_SIM_FAULT_DROP_FRACTION). Default: 0", valueName: "0…1"))
    var faultDropFraction: Double?
    @Option(help: ArgumentHelp("Fraction of meters closing the connection mid-response (HES_SIM_FAULT_RESET_FRACTION). Default: 0", valueName: "0…1"))
    var faultResetFraction: Double?
    @Option(help: ArgumentHelp("Fraction of meters refusing the association (HES_SIM_FAULT_REFUSE_FRACTION). Default: 0", valueName: "0…1"))
    var faultRefuseFraction: Double?
    @Option(help: ArgumentHelp("Clock offset of every meter, e.g. 90s or -90s (HES_SIM_FAULT_CLOCK_DRIFT). Default: 0", valueName: "duration"))
    var faultClockDrift: String?

    func run() async throws {
        let settings = try common.settings()
        let framingText = settings.string(framing, flagName: "framing", env: "HES_SIM_FRAMING", default: "wrapper")
        guard let framing = MeterSimConfiguration.Framing(rawValue: framingText) else {
            throw ValidationError("--framing: '\(framingText)' is not wrapper or hdlc")
        }
        func fraction(_ flag: Double?, _ name: String, _ env: String) throws -> Double {
            let text = settings.optionalString(flag.map { "\($0)" }, flagName: name, env: env) ?? "0"
            guard let value = Double(text), (0...1).contains(value) else { throw ValidationError("--\(name): '\(text)' is not within 0…1") }
            return value
        }
        let driftText = settings.optionalString(faultClockDrift, flagName: "fault-clock-drift", env: "HES_SIM_FAULT_CLOCK_DRIFT")
        var drift = Duration.zero
        if var driftText {
            let negative = driftText.hasPrefix("-")
            if negative { driftText.removeFirst() }
            let resolver = try SettingsResolver(environment: [:])
            let magnitude = try resolver.duration(driftText, flagName: "fault-clock-drift", env: "", default: .zero)
            drift = negative ? .zero - magnitude : magnitude
        }
        let perMeterText = settings.optionalString(addressPerMeter ? "true" : nil, flagName: "address-per-meter", env: "HES_SIM_ADDRESS_PER_METER")
        let configuration = MeterSimConfiguration(
            runtime: try common.runtimeConfiguration(executable: "meter-sim", defaultAdminPort: 9105, settings: settings),
            meterCount: try settings.int(meters, flagName: "meters", env: "HES_SIM_METERS", default: 1, range: 1...100_000),
            framing: framing,
            firstPort: try settings.int(port, flagName: "port", env: "HES_SIM_PORT", default: 4061, range: 1...65535),
            addressBase: settings.string(addressBase, flagName: "address-base", env: "HES_SIM_ADDRESS_BASE", default: "127.0.0.1"),
            addressPerMeter: perMeterText.map { ["1", "true", "yes"].contains($0.lowercased()) } ?? false,
            hdlcPhysicalBase: try settings.int(hdlcPhysicalBase, flagName: "hdlc-physical-base", env: "HES_SIM_HDLC_PHYSICAL_BASE", default: 16, range: 0...0x3FFF),
            seed: UInt64(try settings.int(seed, flagName: "seed", env: "HES_SIM_SEED", default: 0, range: 0...Int.max)),
            password: Array(settings.string(password, flagName: "password", env: "HES_SIM_PASSWORD", default: "12345678").utf8),
            maximumPDUSize: try settings.int(maxPdu, flagName: "max-pdu", env: "HES_SIM_MAX_PDU", default: 0, range: 0...65535),
            faults: FaultConfiguration(
                latency: try settings.duration(faultLatency, flagName: "fault-latency", env: "HES_SIM_FAULT_LATENCY", default: .zero),
                jitter: try settings.duration(faultJitter, flagName: "fault-jitter", env: "HES_SIM_FAULT_JITTER", default: .zero),
                silentFraction: try fraction(faultSilentFraction, "fault-silent-fraction", "HES_SIM_FAULT_SILENT_FRACTION"),
                garbageFraction: try fraction(faultGarbageFraction, "fault-garbage-fraction", "HES_SIM_FAULT_GARBAGE_FRACTION"),
                dropFraction: try fraction(faultDropFraction, "fault-drop-fraction", "HES_SIM_FAULT_DROP_FRACTION"),
                resetFraction: try fraction(faultResetFraction, "fault-reset-fraction", "HES_SIM_FAULT_RESET_FRACTION"),
                refuseFraction: try fraction(faultRefuseFraction, "fault-refuse-fraction", "HES_SIM_FAULT_REFUSE_FRACTION"),
                clockDrift: drift))
        try await App.serviceGroup(for: configuration).run()
    }
}

/// `meter-sim expect`: what a meter of the fleet holds, as JSON, for tests that read it.
struct Expect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "expect", abstract: "Print the values a simulated meter will report (JSON).")

    @Option(help: ArgumentHelp("Meter index (0-based) or serial number (SIM00000001).", valueName: "index|serial"))
    var meter: String
    @Option(help: "Seed of the deterministic data. Default: 0")
    var seed: UInt64 = 0
    @Option(help: ArgumentHelp("Load profile OBIS code, e.g. 1.0.99.1.0.255.", valueName: "obis"))
    var profile: String?
    @Option(help: ArgumentHelp("Register OBIS code, e.g. 1.0.1.8.0.255.", valueName: "obis"))
    var obis: String?
    @Option(help: ArgumentHelp("Profile range start (ISO 8601).", valueName: "time"))
    var from: String?
    @Option(help: ArgumentHelp("Profile range end (ISO 8601).", valueName: "time"))
    var to: String?
    @Option(help: ArgumentHelp("Register reading time (ISO 8601).", valueName: "time"))
    var at: String?

    func run() throws {
        let index: Int
        if let number = Int(meter) {
            index = number
        } else if meter.hasPrefix("SIM"), let number = Int(meter.dropFirst(3)), number >= 1 {
            index = number - 1
        } else {
            throw ValidationError("--meter: '\(meter)' is neither an index nor a SIM serial number")
        }
        guard index >= 0 else { throw ValidationError("--meter: index must be 0 or more") }
        let simulated = SimulatedMeter(configuration: .fleetMember(index: index, seed: seed))
        let serial = simulated.configuration.serialNumber
        if let profile {
            guard let from = from.flatMap(Self.date), let to = to.flatMap(Self.date) else {
                throw ValidationError("--profile needs --from and --to as ISO 8601 times")
            }
            let rows: [[DLMSData]]
            let columns: [String]
            switch try? OBISCode(parsing: profile) {
            case OBISCode(1, 0, 99, 1, 0, 255):
                rows = simulated.expectedProfileRows(from: from, to: to)
                columns = ["0.0.1.0.0.255/2", "1.0.1.8.0.255/2", "1.0.2.8.0.255/2", "0.0.96.10.1.255/2"]
            case OBISCode(1, 0, 98, 1, 0, 255):
                rows = simulated.expectedDailyRows(from: from, to: to)
                columns = ["0.0.1.0.0.255/2", "1.0.1.8.0.255/2", "1.0.1.8.1.255/2", "1.0.1.8.2.255/2", "1.0.2.8.0.255/2"]
            default:
                throw ValidationError("--profile: '\(profile)' is not a simulated profile (1.0.99.1.0.255, 1.0.98.1.0.255)")
            }
            try Self.printJSON(ExpectedProfile(meter: serial, profile: profile, columns: columns, rows: rows.map { $0.map(\.plainJSON) }))
        } else if let obis {
            guard let code = try? OBISCode(parsing: obis) else { throw ValidationError("--obis: '\(obis)' is not an OBIS code") }
            guard let at = at.flatMap(Self.date) else { throw ValidationError("--obis needs --at as an ISO 8601 time") }
            try Self.printJSON(ExpectedRegister(meter: serial, obis: obis, value: simulated.expectedRegisterValue(code, at: at)?.plainJSON ?? .null))
        } else {
            throw ValidationError("give --profile with --from/--to, or --obis with --at")
        }
    }

    /// What `expect --profile` prints: the same value rendering as `hesctl read`, so the two compare directly.
    struct ExpectedProfile: Encodable {
        var meter: String
        var profile: String
        var columns: [String]
        var rows: [[PlainJSONValue]]
    }

    struct ExpectedRegister: Encodable {
        var meter: String
        var obis: String
        var value: PlainJSONValue
    }

    static func printJSON(_ value: some Encodable) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: try encoder.encode(value), as: UTF8.self))
    }

    static func date(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }
}
