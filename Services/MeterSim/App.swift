import ArgumentParser
import COSEM
import DLMSSecurity
import Foundation
import MeterSimulation
import ServiceLifecycle
import ServiceRuntime

/// `meter-sim`: simulated DLMS meters for development, tests and load.
@main
struct App: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meter-sim",
        abstract: "Serves simulated smart meters: DLMS wrapper/HDLC over TCP and UDP, serial lines (pseudo-terminals), UDP serial gateways, IEC 62056-21.",
        discussion: transportHelp,
        subcommands: [Serve.self, Expect.self, Config.self, Verify.self],
        defaultSubcommand: Serve.self)

    /// How the transports, framings and families combine (`meter-sim --help`, `meter-sim serve --help`).
    static let transportHelp = """
        Transports (--transport) and framings (--framing):
          tcp          wrapper|hdlc  a listening socket per meter: port+n,
                                     or its own address (--address-per-meter)
          udp          wrapper       a UDP socket per meter, one wrapper frame
                                     per datagram
          gateway-udp  hdlc|iec21    a serial server in UDP mode: a UDP port per
                                     line of --meters-per-line meters; datagrams
                                     carry the raw serial bytes (HDLC meters
                                     told apart by physical address)
          serial       hdlc|iec21    a pseudo-terminal per line of
                                     --meters-per-line meters (--line-path
                                     links to it; the ready log line prints
                                     it), or --serial-device; bytes paced at
                                     --baud (--no-pace: at once)
        Bus contention (equal physical addresses on a line, a frame sent while a
        meter transmits) is logged and counted in hes_sim_bus_contentions_total.
        IEC 62056-21: sign-on /?SIM00000001! (or its 8 digits; no address on a
        one-meter line) at 300 Bd, identification /SIM5\\2SIM00000001; option
        select ACK 0 Z 0 → readout, ACK 0 Z 1 → programming mode (P1 password =
        --password, R1 1.8.0(), B0), ACK 2 Z 2 → mode E (HDLC, physical 16+n).
        Families (--quirk): standard, four-byte-address, disc-only, wrapper-only,
        gurux (short RLRE), emh (IEC 62056-21, R5 P.01 load profile); read them with
        `hesctl read --meter-profile <same name>` where a profile is needed.
        Examples:
          meter-sim --meters 1 --framing wrapper --port 4061
          meter-sim --meters 3 --transport serial --meters-per-line 3 \\
            --line-path /tmp/bus
          meter-sim --meters 1 --transport serial --framing iec21 --quirk emh \\
            --line-path /tmp/opt
          meter-sim --meters 4 --transport gateway-udp --meters-per-line 4
          meter-sim --fleet fleet.json   (format: MeterSim/FleetFile.swift)
        """
}

/// `meter-sim [serve]`: the fleet described by flags (one group of alike meters) or by a fleet file.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Serve the simulated meters (default).",
        discussion: App.transportHelp)

    @OptionGroup var common: CommonOptions
    @OptionGroup var fleetOptions: FleetOptions

    func run() async throws {
        let settings = try common.settings()
        let runtime = try common.runtimeConfiguration(executable: "meter-sim", defaultAdminPort: 9105, settings: settings)
        let configuration = try fleetOptions.configuration(settings: settings, runtime: runtime)
        try await App.serviceGroup(for: configuration).run()
    }
}

/// The flags (and `HES_SIM_…` settings) that choose the fleet: `serve` simulates it, `config`
/// describes it for the head-end.
struct FleetOptions: ParsableArguments {
    @Option(help: ArgumentHelp("A JSON fleet file: groups of meters with their transports, families and faults (HES_SIM_FLEET); replaces the per-group flags.", valueName: "path"))
    var fleet: String?
    @Option(help: ArgumentHelp("Number of simulated meters (HES_SIM_METERS). Default: 1", valueName: "count"))
    var meters: Int?
    @Option(help: ArgumentHelp("tcp, udp, gateway-udp or serial (HES_SIM_TRANSPORT). Default: tcp", valueName: "transport"))
    var transport: String?
    @Option(help: ArgumentHelp("wrapper (IEC 62056-47), hdlc (IEC 62056-46) or iec21 (IEC 62056-21 modes C/E) (HES_SIM_FRAMING). Default: wrapper over tcp/udp, hdlc over gateway-udp/serial", valueName: "framing"))
    var framing: String?
    @Option(help: ArgumentHelp("First port; IP meter n listens on port+n (or on port at its own address with --address-per-meter), gateway line n on port+n (HES_SIM_PORT). Default: 4061", valueName: "port"))
    var port: Int?
    @Option(help: ArgumentHelp("Listening address of meter 0 (HES_SIM_ADDRESS_BASE). Default: 127.0.0.1", valueName: "ipv4"))
    var addressBase: String?
    @Flag(help: "Give meter n the address base+n and the same port for all (HES_SIM_ADDRESS_PER_METER=true).")
    var addressPerMeter = false
    @Option(help: ArgumentHelp("HDLC physical address of the first meter (over TCP: meter n has this + n; on a line: the n-th meter of each line) (HES_SIM_HDLC_PHYSICAL_BASE). Default: 16", valueName: "address"))
    var hdlcPhysicalBase: Int?
    @Option(help: ArgumentHelp("Explicit physical addresses of the meters on each line, e.g. 17,17,18 (equal ones collide).", valueName: "list"))
    var physicalAddresses: String?
    @Option(help: ArgumentHelp("Meters on one serial line or behind one gateway port (HES_SIM_METERS_PER_LINE). Default: 1", valueName: "count"))
    var metersPerLine: Int?
    @Option(help: ArgumentHelp("Serial: symbolic link to the line's pseudo-terminal (path-n for line n of several) (HES_SIM_LINE_PATH).", valueName: "path"))
    var linePath: String?
    @Option(help: ArgumentHelp("Serial: serve this device instead of a pseudo-terminal (one line) (HES_SIM_SERIAL_DEVICE).", valueName: "path"))
    var serialDevice: String?
    @Option(help: ArgumentHelp("Serial: the line's HDLC rate; IEC 62056-21 starts at 300 and switches (HES_SIM_BAUD). Default: 9600", valueName: "rate"))
    var baud: Int?
    @Flag(inversion: .prefixedNo, help: "Serial: write bytes at the line's baud rate as a UART would. Default: on")
    var pace = true
    @Option(help: ArgumentHelp("Meter family: \(MeterQuirk.allCases.map(\.rawValue).joined(separator: ", ")) (HES_SIM_QUIRK). Default: standard", valueName: "family"))
    var quirk: String?
    @Option(help: ArgumentHelp("Drop an HDLC link idle this long, e.g. 30s (HES_SIM_HDLC_INACTIVITY_TIMEOUT). Default: never", valueName: "duration"))
    var hdlcInactivityTimeout: String?
    @Option(help: ArgumentHelp("Seed of the deterministic data (HES_SIM_SEED). Default: 0", valueName: "seed"))
    var seed: Int?
    @Option(help: ArgumentHelp("LLS and IEC 62056-21 programming password (HES_SIM_PASSWORD). Default: 12345678", valueName: "text"))
    var password: String?
    @Option(help: ArgumentHelp("Security suite 0 keys of the fleet: EK in hex, or @FILE holding it (HES_SIM_BLOCK_CIPHER_KEY). With --auth-key it enables ciphered and HLS associations. Default: none", valueName: "hex"))
    var blockCipherKey: String?
    @Option(help: ArgumentHelp("AK in hex, or @FILE (HES_SIM_AUTH_KEY). Default: none", valueName: "hex"))
    var authKey: String?
    @Option(help: ArgumentHelp("The HLS secret of hls-md5, -sha1 and -sha256 (HES_SIM_HLS_SECRET). Default: Gurux", valueName: "text"))
    var hlsSecret: String?
    @Option(help: ArgumentHelp("HLS-ECDSA (mechanism 7): the meter's private key in hex (64 digits P-256 = suite 1, 96 digits P-384 = suite 2), or @FILE holding the hex or a PEM key (HES_SIM_SIGNING_KEY). Needs --client-public-key and the suite 0 keys. Default: none, mechanism 7 refused", valueName: "hex"))
    var signingKey: String?
    @Option(help: ArgumentHelp("HLS-ECDSA: the clients' public key (x‖y or 04‖x‖y in hex, or @FILE with hex or PEM), of the curve of --signing-key (HES_SIM_CLIENT_PUBLIC_KEY)", valueName: "hex"))
    var clientPublicKey: String?
    @Flag(help: "Use the Green Book example keys (EK 000102…0F, AK D0D1…DF) and HLS secret Gurux: for development and interop tests only.")
    var exampleKeys = false
    @Option(help: ArgumentHelp("Fraction of meters whose invocation counter object reports a stale value (HES_SIM_FAULT_STALE_COUNTER_FRACTION). Default: 0", valueName: "0…1"))
    var faultStaleCounterFraction: Double?
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
    @Option(help: ArgumentHelp("Clock offset of the drifting meters, e.g. 90s or -90s (HES_SIM_FAULT_CLOCK_DRIFT). Default: 0", valueName: "duration"))
    var faultClockDrift: String?
    @Option(help: ArgumentHelp("Fraction of meters whose clock drifts (HES_SIM_FAULT_CLOCK_DRIFT_FRACTION). Default: 1", valueName: "0…1"))
    var faultClockDriftFraction: Double?
    @Option(help: ArgumentHelp("Serial: meters transmit at this rate instead of the line's (HES_SIM_FAULT_SLOW_BAUD). Default: none", valueName: "rate"))
    var faultSlowBaud: Int?
    @Option(help: ArgumentHelp("Fraction of serial meters with the slow rate (HES_SIM_FAULT_SLOW_BAUD_FRACTION). Default: 1", valueName: "0…1"))
    var faultSlowBaudFraction: Double?

    /// The fleet these flags, the environment and the settings file describe, checked.
    func configuration(settings: SettingsResolver, runtime: RuntimeConfiguration) throws -> MeterSimConfiguration {
        var configuration: MeterSimConfiguration
        do {
            if let path = settings.optionalString(fleet, flagName: "fleet", env: "HES_SIM_FLEET") {
                let groupFlags: [Any?] = [meters, transport, framing, port, addressBase, hdlcPhysicalBase, physicalAddresses, metersPerLine,
                                          linePath, serialDevice, baud, quirk, faultLatency, faultJitter, faultSilentFraction,
                                          faultGarbageFraction, faultDropFraction, faultResetFraction, faultRefuseFraction,
                                          faultClockDrift, faultClockDriftFraction, faultSlowBaud, faultSlowBaudFraction]
                guard groupFlags.allSatisfy({ $0 == nil }), !addressPerMeter else {
                    throw ValidationError("--fleet describes the meters: drop the per-group flags (--meters, --transport, --fault-…)")
                }
                configuration = try FleetFile.load(path: path, runtime: runtime)
            } else {
                configuration = MeterSimConfiguration(runtime: runtime, groups: [try group(settings)])
            }
            if let seed = try settings.optionalString(seed.map(String.init), flagName: "seed", env: "HES_SIM_SEED").map({ text -> UInt64 in
                guard let value = UInt64(text) else { throw ValidationError("--seed: '\(text)' is not a number") }
                return value
            }) {
                configuration.seed = seed
            }
            if let password = settings.optionalString(password, flagName: "password", env: "HES_SIM_PASSWORD") {
                configuration.password = Array(password.utf8)
            }
            if let maxPdu = settings.optionalString(maxPdu.map(String.init), flagName: "max-pdu", env: "HES_SIM_MAX_PDU") {
                guard let value = Int(maxPdu), (0...65535).contains(value) else { throw ValidationError("--max-pdu: '\(maxPdu)' is not within 0…65535") }
                configuration.maximumPDUSize = value
            }
            if let timeout = settings.optionalString(hdlcInactivityTimeout, flagName: "hdlc-inactivity-timeout", env: "HES_SIM_HDLC_INACTIVITY_TIMEOUT") {
                configuration.hdlcInactivityTimeout = try Self.duration(timeout, flag: "hdlc-inactivity-timeout")
            }
            if !pace { configuration.pacesSerialLines = false }
            configuration.security = try security(settings)
            if let text = settings.optionalString(faultStaleCounterFraction.map { "\($0)" }, flagName: "fault-stale-counter-fraction", env: "HES_SIM_FAULT_STALE_COUNTER_FRACTION") {
                guard let fraction = Double(text), (0...1).contains(fraction) else { throw ValidationError("--fault-stale-counter-fraction: '\(text)' is not within 0…1") }
                for index in configuration.groups.indices { configuration.groups[index].faults.staleCounterFraction = fraction }
            }
            for group in configuration.groups { try group.validate() }
            guard (1...100_000).contains(configuration.meterCount) else { throw ValidationError("the fleet must have 1…100,000 meters") }
        } catch let error as MeterSimError {
            throw ValidationError(error.description)
        }
        return configuration
    }

    /// The fleet's keys: the flags (hex or @FILE), the environment, or the example keys.
    func security(_ settings: SettingsResolver) throws -> MeterSecurity? {
        func keyText(_ flag: String?, _ name: String, _ env: String) throws -> String? {
            guard let text = settings.optionalString(flag, flagName: name, env: env) else { return nil }
            guard text.hasPrefix("@") else { return text }
            guard let data = FileManager.default.contents(atPath: String(text.dropFirst())) else { throw ValidationError("--\(name): cannot read \(text.dropFirst())") }
            return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        func key(_ flag: String?, _ name: String, _ env: String) throws -> DLMSKey? {
            guard let text = try keyText(flag, name, env) else { return nil }
            do { return try DLMSKey(hex: text) } catch { throw ValidationError("--\(name): \(error)") }
        }
        let ek = try key(blockCipherKey, "block-cipher-key", "HES_SIM_BLOCK_CIPHER_KEY")
        let ak = try key(authKey, "auth-key", "HES_SIM_AUTH_KEY")
        var security: MeterSecurity
        switch (ek, ak, exampleKeys) {
        case (nil, nil, false):
            if try keyText(signingKey, "signing-key", "HES_SIM_SIGNING_KEY") != nil || keyText(clientPublicKey, "client-public-key", "HES_SIM_CLIENT_PUBLIC_KEY") != nil {
                throw ValidationError("--signing-key and --client-public-key need the meter's suite 0 keys too: --block-cipher-key/--auth-key or --example-keys")
            }
            return nil
        case (nil, nil, true): security = .examples
        case (let ek?, let ak?, false): security = MeterSecurity(blockCipherKey: ek, authenticationKey: ak, hlsSecret: MeterSecurity.examples.hlsSecret)
        case (_, _, true): throw ValidationError("--example-keys or --block-cipher-key/--auth-key, not both")
        default: throw ValidationError("--block-cipher-key and --auth-key go together")
        }
        if let secret = settings.optionalString(hlsSecret, flagName: "hls-secret", env: "HES_SIM_HLS_SECRET") {
            do { security.hlsSecret = try DLMSSecret(text: secret) } catch { throw ValidationError("--hls-secret: \(error)") }
        }
        let signing = try keyText(signingKey, "signing-key", "HES_SIM_SIGNING_KEY")
        let clientKey = try keyText(clientPublicKey, "client-public-key", "HES_SIM_CLIENT_PUBLIC_KEY")
        switch (signing, clientKey) {
        case (nil, nil): break
        case (let signing?, let clientKey?):
            do { security.signingKey = try DLMSSigningKey(pemOrHex: signing) } catch { throw ValidationError("--signing-key: \(error)") }
            do { security.clientPublicKey = try DLMSPublicKey(pemOrHex: clientKey) } catch { throw ValidationError("--client-public-key: \(error)") }
            if let key = security.signingKey, let clientKey = security.clientPublicKey, key.curve != clientKey.curve {
                throw ValidationError("--signing-key is \(key.curve) but --client-public-key is \(clientKey.curve): both must be of one security suite")
            }
        default: throw ValidationError("--signing-key and --client-public-key go together")
        }
        return security
    }

    /// The one group the flags describe.
    func group(_ settings: SettingsResolver) throws -> MeterSimConfiguration.Group {
        var group = MeterSimConfiguration.Group()
        group.count = try settings.int(meters, flagName: "meters", env: "HES_SIM_METERS", default: 1, range: 1...100_000)
        let transportText = settings.string(transport, flagName: "transport", env: "HES_SIM_TRANSPORT", default: "tcp")
        guard let transport = MeterSimConfiguration.Transport(rawValue: transportText) else {
            throw ValidationError("--transport: '\(transportText)' is not \(MeterSimConfiguration.Transport.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        group.transport = transport
        let defaultFraming = transport == .tcp || transport == .udp ? "wrapper" : "hdlc"
        let framingText = settings.string(framing, flagName: "framing", env: "HES_SIM_FRAMING", default: defaultFraming)
        guard let framing = MeterSimConfiguration.Framing(rawValue: framingText) else {
            throw ValidationError("--framing: '\(framingText)' is not wrapper, hdlc or iec21")
        }
        group.framing = framing
        group.firstPort = try settings.int(port, flagName: "port", env: "HES_SIM_PORT", default: 4061, range: 1...65535)
        group.addressBase = settings.string(addressBase, flagName: "address-base", env: "HES_SIM_ADDRESS_BASE", default: "127.0.0.1")
        let perMeterText = settings.optionalString(addressPerMeter ? "true" : nil, flagName: "address-per-meter", env: "HES_SIM_ADDRESS_PER_METER")
        group.addressPerMeter = perMeterText.map { ["1", "true", "yes"].contains($0.lowercased()) } ?? false
        group.hdlcPhysicalBase = try settings.int(hdlcPhysicalBase, flagName: "hdlc-physical-base", env: "HES_SIM_HDLC_PHYSICAL_BASE", default: 16, range: 0...0x3FFF)
        if let physicalAddresses {
            let values = physicalAddresses.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !values.isEmpty, values.allSatisfy({ $0.map { (0...0x3FFF).contains($0) } ?? false }) else {
                throw ValidationError("--physical-addresses: '\(physicalAddresses)' is not a list of addresses 0…16383")
            }
            group.physicalAddresses = values.compactMap { $0 }
        }
        group.metersPerLine = try settings.int(metersPerLine, flagName: "meters-per-line", env: "HES_SIM_METERS_PER_LINE", default: 1, range: 1...126)
        group.linePath = settings.optionalString(linePath, flagName: "line-path", env: "HES_SIM_LINE_PATH")
        group.serialDevice = settings.optionalString(serialDevice, flagName: "serial-device", env: "HES_SIM_SERIAL_DEVICE")
        group.baudRate = try settings.int(baud, flagName: "baud", env: "HES_SIM_BAUD", default: 9600, range: 300...115_200)
        let quirkText = settings.string(quirk, flagName: "quirk", env: "HES_SIM_QUIRK", default: "standard")
        guard let quirk = MeterQuirk(rawValue: quirkText) else {
            throw ValidationError("--quirk: '\(quirkText)' is not \(MeterQuirk.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        group.quirk = quirk

        func fraction(_ flag: Double?, _ name: String, _ env: String, default defaultValue: Double = 0) throws -> Double {
            guard let text = settings.optionalString(flag.map { "\($0)" }, flagName: name, env: env) else { return defaultValue }
            guard let value = Double(text), (0...1).contains(value) else { throw ValidationError("--\(name): '\(text)' is not within 0…1") }
            return value
        }
        var faults = FaultConfiguration()
        faults.latency = try settings.duration(faultLatency, flagName: "fault-latency", env: "HES_SIM_FAULT_LATENCY", default: .zero)
        faults.jitter = try settings.duration(faultJitter, flagName: "fault-jitter", env: "HES_SIM_FAULT_JITTER", default: .zero)
        faults.silentFraction = try fraction(faultSilentFraction, "fault-silent-fraction", "HES_SIM_FAULT_SILENT_FRACTION")
        faults.garbageFraction = try fraction(faultGarbageFraction, "fault-garbage-fraction", "HES_SIM_FAULT_GARBAGE_FRACTION")
        faults.dropFraction = try fraction(faultDropFraction, "fault-drop-fraction", "HES_SIM_FAULT_DROP_FRACTION")
        faults.resetFraction = try fraction(faultResetFraction, "fault-reset-fraction", "HES_SIM_FAULT_RESET_FRACTION")
        faults.refuseFraction = try fraction(faultRefuseFraction, "fault-refuse-fraction", "HES_SIM_FAULT_REFUSE_FRACTION")
        if let drift = settings.optionalString(faultClockDrift, flagName: "fault-clock-drift", env: "HES_SIM_FAULT_CLOCK_DRIFT") {
            faults.clockDrift = try Self.duration(drift, flag: "fault-clock-drift")
        }
        faults.clockDriftFraction = try fraction(faultClockDriftFraction, "fault-clock-drift-fraction", "HES_SIM_FAULT_CLOCK_DRIFT_FRACTION", default: 1)
        if let slow = settings.optionalString(faultSlowBaud.map(String.init), flagName: "fault-slow-baud", env: "HES_SIM_FAULT_SLOW_BAUD") {
            guard let rate = Int(slow), rate > 0 else { throw ValidationError("--fault-slow-baud: '\(slow)' is not a baud rate") }
            faults.slowBaudRate = rate
        }
        faults.slowBaudFraction = try fraction(faultSlowBaudFraction, "fault-slow-baud-fraction", "HES_SIM_FAULT_SLOW_BAUD_FRACTION", default: 1)
        group.faults = faults
        return group
    }

    /// A duration such as `90s`, `200ms` or `-90s` (clock drift runs both ways).
    static func duration(_ text: String, flag: String) throws -> Duration {
        var text = text
        let negative = text.hasPrefix("-")
        if negative { text.removeFirst() }
        let resolver = try SettingsResolver(environment: [:])
        let magnitude = try resolver.duration(text, flagName: flag, env: "", default: .zero)
        return negative ? .zero - magnitude : magnitude
    }
}

/// `meter-sim config`: the head-end's configuration of the fleet `serve` simulates with the same
/// flags, for the config-service.
struct Config: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Print the SwiftHES configuration (hes-configuration/v1) of the meters serve simulates with the same flags.",
        discussion: """
            Takes serve's fleet flags (--fleet, or --meters, --transport, …, and the keys) and \
            prints one region; a line per endpoint (an IP meter's socket, a gateway port, a serial \
            line: serial lines need --line-path or --serial-device, as a pseudo-terminal's path is \
            known only once serve runs); the meters SIM00000001, … with their HDLC physical or \
            IEC 62056-21 device addresses; the reading client 17 with the LLS password (with the \
            fleet's suite 0 keys: client 1, HLS-GMAC, ciphered); a template per protocol and family \
            reading the clock, 1.8.0, 2.8.0 and the load profile 1.0.99.1.0.255 on the schedule \
            sim-read. Secrets are in the clear: the config-service seals them.
            Example:
              meter-sim config --meters 10 | hesctl config apply -
            """)

    @OptionGroup var common: CommonOptions
    @OptionGroup var fleetOptions: FleetOptions

    @Option(help: ArgumentHelp("The region of every line (HES_REGION). Default: local", valueName: "id"))
    var region: String?
    @Option(help: ArgumentHelp("When the meters are read (minute hour day month weekday). Default: */15 * * * *", valueName: "expression"))
    var cron = "*/15 * * * *"
    @Option(help: ArgumentHelp("The schedule's IANA time zone. Default: UTC", valueName: "zone"))
    var timeZone = "UTC"
    @Option(help: ArgumentHelp("Minutes a task may start after its slot. Default: 15", valueName: "minutes"))
    var windowMinutes = 15
    @Option(help: ArgumentHelp("Meters' starts spread over this many seconds. Default: 0", valueName: "seconds"))
    var jitterSeconds = 0
    @Option(help: ArgumentHelp("How far back the load profile is read. Default: 24", valueName: "hours"))
    var lookbackHours: Double = 24
    @Option(help: ArgumentHelp("The address the head-end uses for IP meters and gateways listening on one address (e.g. meter-sim's host name). Default: the listening address; --address-per-meter meters keep theirs", valueName: "host"))
    var host: String?
    @Option(help: ArgumentHelp("IEC 62056-21 meters on serial lines: e (mode E: HDLC on an optical line, as the collector reads them) or c (mode C: iec62056-21 on a serial line). Gateways carry mode C. Default: e", valueName: "mode"))
    var iec21Mode = "e"

    func run() throws {
        let settings = try common.settings()
        let runtime = try common.runtimeConfiguration(executable: "meter-sim", defaultAdminPort: 9105, settings: settings)
        let configuration = try fleetOptions.configuration(settings: settings, runtime: runtime)
        var options = FleetConfigurationDocument.Options()
        options.region = settings.string(region, flagName: "region", env: "HES_REGION", default: "local")
        guard !options.region.isEmpty, options.region.count <= 63, options.region.first != "-",
              options.region.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }) else {
            throw ValidationError("--region: '\(options.region)' is not 1…63 of a-z, 0-9 and '-'")
        }
        options.cron = cron
        guard TimeZone(identifier: timeZone) != nil else { throw ValidationError("--time-zone: '\(timeZone)' is not an IANA time zone (Europe/Berlin)") }
        options.timeZone = timeZone
        guard (1...10_080).contains(windowMinutes) else { throw ValidationError("--window-minutes: \(windowMinutes) is not within 1…10080") }
        options.windowMinutes = windowMinutes
        guard jitterSeconds >= 0, jitterSeconds < windowMinutes * 60 else {
            throw ValidationError("--jitter-seconds: \(jitterSeconds) is not 0 or more and shorter than the window (\(windowMinutes * 60) s)")
        }
        options.jitterSeconds = jitterSeconds
        guard lookbackHours > 0, lookbackHours <= 24 * 92 else { throw ValidationError("--lookback-hours: \(lookbackHours) is not more than 0 and at most 2208") }
        options.lookbackHours = lookbackHours
        if let host {
            guard !host.isEmpty, !host.contains(where: \.isWhitespace) else { throw ValidationError("--host: '\(host)' is not a host name or address") }
            options.host = host
        }
        guard let mode = FleetConfigurationDocument.Options.IEC21Mode(rawValue: iec21Mode.lowercased()) else {
            throw ValidationError("--iec21-mode: '\(iec21Mode)' is not e or c")
        }
        options.iec21Mode = mode
        let document: FleetConfigurationDocument
        do {
            document = try FleetConfigurationDocument(configuration: configuration, options: options)
        } catch let error as MeterSimError {
            throw ValidationError(error.description)
        }
        print(try document.json())
    }
}

/// `meter-sim expect`: what a meter of the fleet holds, as JSON, for tests that read it.
struct Expect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "expect", abstract: "Print the values a simulated meter will report (JSON).")

    @Option(help: ArgumentHelp("Meter index (0-based), serial number (SIM00000001), or a range of indices (0-199: one JSON line per meter).", valueName: "index|serial|first-last"))
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
        let indices: ClosedRange<Int>
        let bounds = meter.split(separator: "-", omittingEmptySubsequences: false)
        if bounds.count == 2, let first = Int(bounds[0]), let last = Int(bounds[1]) {
            guard first >= 0, first <= last, last - first < 1_000_000 else {
                throw ValidationError("--meter: '\(meter)' is not a range of indices first-last")
            }
            indices = first...last
        } else if let number = Int(meter) {
            indices = number...number
        } else if meter.hasPrefix("SIM"), let number = Int(meter.dropFirst(3)), number >= 1 {
            indices = (number - 1)...(number - 1)
        } else {
            throw ValidationError("--meter: '\(meter)' is neither an index, a SIM serial number nor a range")
        }
        guard indices.lowerBound >= 0 else { throw ValidationError("--meter: index must be 0 or more") }
        for index in indices { try printExpectation(meter: index) }
    }

    private func printExpectation(meter index: Int) throws {
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
