import ArgumentParser
import COSEM
import DLMSClient
import DLMSCodec
import DLMSLink
import DLMSSecurity
import Foundation
import Logging

/// `hesctl read`: a one-off direct read of one meter, printed as JSON — the operator's tool
/// for a single meter.
struct ReadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "read",
        abstract: "Read one meter directly: clock, registers, a load-profile range; prints JSON.",
        discussion: """
            Examples:
              hesctl read --tcp 127.0.0.1:4061 --framing wrapper --client 17 --server 1 --auth lls --password 12345678 --obis 1.0.1.8.0.255
              hesctl read --tcp 127.0.0.1:4061 --client 17 --password 12345678 --profile 1.0.99.1.0.255 --last-hours 4
              hesctl read --serial /dev/ttyUSB0 --baud 9600 --framing hdlc --server 1 --physical 17 --clock
              hesctl read --tcp 127.0.0.1:4061 --client 1 --auth hls-ecdsa --signing-key @client.pem --meter-public-key @meter.pub.pem --clock
              hesctl read --tcp 127.0.0.1:4061 --client 1 --auth hls-ecdsa --signing-key @client.pem --meter-public-key @meter.pub.pem \
                  --block-cipher-key @ek.hex --auth-key @ak.hex --agree-key unicast --key-out new-ek.hex
                                                                                     (ECDH key agreement: the new key goes to new-ek.hex, mode 0600)
              hesctl read --serial /dev/ttyUSB1 --framing iec21                      (mode C data readout)
              hesctl read --serial /dev/ttyUSB1 --framing iec21 --password 00000000 --obis 1.8.0 --profile P.01 --last-hours 4
                                                                                     (programming mode: R1 reads, R5 load profile)
            Exit status: 0 success, 75 a failure worth retrying (timeout, connection lost), 1 any other failure, 64 bad usage.
            """)

    // MARK: Where

    @Option(help: ArgumentHelp("An IP meter over TCP.", valueName: "host:port"))
    var tcp: String?
    @Option(help: ArgumentHelp("An IP meter over UDP (wrapper per datagram).", valueName: "host:port"))
    var udp: String?
    @Option(name: .customLong("gateway-udp"), help: ArgumentHelp("A serial server in UDP mode carrying the raw serial bytes.", valueName: "host:port"))
    var gatewayUDP: String?
    @Option(help: ArgumentHelp("A serial port (RS-485, optical head, RS-232).", valueName: "device"))
    var serial: String?
    @Option(help: "Serial baud rate. Default: 9600.")
    var baud: Int = 9600

    // MARK: How

    @Option(help: "Framing: wrapper, hdlc or iec21 (IEC 62056-21 mode C: the data readout, or programming mode when --password, --obis or --profile is given). Default: wrapper for TCP/UDP, hdlc for serial lines and gateways.")
    var framing: String?
    @Flag(help: "Optical port: open with IEC 62056-21 mode E at 300 Bd, then HDLC.")
    var optical = false
    @Option(name: .customLong("device-address"), help: "IEC 62056-21 device address for the sign-on (iec21 and --optical).")
    var deviceAddress: String?
    @Option(help: "Client SAP: 16 public, 17 reading client, 1 management. Default: 16.")
    var client: UInt8 = 16
    @Option(help: "Server logical address (logical device). Default: 1.")
    var server: UInt16 = 1
    @Option(help: "Server physical address on an HDLC line (lower HDLC address).")
    var physical: UInt16?
    @Option(help: "Authentication: none, lls, hls-md5, hls-sha1, hls-gmac, hls-sha256 or hls-ecdsa. Default: lls when --password is given, else none.")
    var auth: String?
    @Option(help: "The LLS password, or the HLS secret of hls-md5/-sha1/-sha256 (iec21: the P1 programming-mode password).")
    var password: String?
    @Option(help: "Ciphering: none, authenticated, encrypted or both (security suite 0). Default: both when keys are given, else none.")
    var security: String?
    @Option(name: .customLong("system-title"), help: "The client's system title, 8 bytes in hex. Default: 4853455300000001 (\"HSES\" 1).")
    var systemTitle: String?
    @Option(name: .customLong("server-system-title"), help: "Refuse a meter whose system title differs (hex).")
    var serverSystemTitle: String?
    @Option(name: .customLong("signing-key"), help: "hls-ecdsa: the client's private key, hex (64 digits P-256 = security suite 1, 96 digits P-384 = suite 2; the key's size picks the suite) or @FILE holding the hex or a PEM key. Default: $HES_DLMS_SIGNING_KEY.")
    var signingKey: String?
    @Option(name: .customLong("meter-public-key"), help: "hls-ecdsa: the meter's public key (same curve), hex x‖y or 04‖x‖y, or @FILE holding the hex or a PEM key. Default: $HES_DLMS_METER_PUBLIC_KEY.")
    var meterPublicKey: String?
    @OptionGroup var cipherKeys: CipherKeyOptions
    @Option(name: .customLong("invocation-counter"), help: "The first transmit invocation counter. Default: read 0.0.43.1.0.255 with the public client first.")
    var invocationCounter: UInt32?
    @Option(name: .customLong("counter-file"), help: "A JSON file keeping each meter's last used invocation counter, so it never goes backwards.")
    var counterFile: String?
    @Option(name: .customLong("meter-profile"), help: "Manufacturer profile: standard, four-byte-address, disc-only, gurux, emh, or a JSON file with a profile. Default: standard.")
    var meterProfile: String = "standard"
    @Option(name: .customLong("max-info"), help: "HDLC maximum information field length proposed in the SNRM. Default: 128.")
    var maxInfo: Int?
    @Option(help: "Seconds each step may take. Default: 15.")
    var timeout: Int = 15
    @Option(name: .customLong("request-timeout"), help: "Seconds one request may take with every block or part of its answer. Default: 120.")
    var requestTimeout: Int = 120

    // MARK: What

    @Flag(help: "Read the clock (the default when nothing else is asked).")
    var clock = false
    @Option(name: .customLong("obis"), help: ArgumentHelp("A register or data object to read; repeat for several (iec21: a data set address such as 1.8.0).", valueName: "obis"))
    var obisCodes: [String] = []
    @Option(help: ArgumentHelp("A profile generic to read a range of (iec21: the load profile's address, e.g. P.01).", valueName: "obis"))
    var profile: String?
    @Option(help: ArgumentHelp("Start of the profile range, ISO 8601.", valueName: "time"))
    var from: String?
    @Option(help: ArgumentHelp("End of the profile range, ISO 8601. Default: now.", valueName: "time"))
    var to: String?
    @Option(name: .customLong("last-hours"), help: "Profile range: the last N hours.")
    var lastHours: Int?
    @Option(name: .customLong("agree-key"), help: "Agree a new key with the meter through its security setup's key_agreement (ECDH, security suites 1 and 2): unicast, broadcast, authentication or kek. Needs --auth hls-ecdsa, ciphering keys, the management client and --key-out. The meter uses the new key from its next association.")
    var agreeKey: String?
    @Option(name: .customLong("key-out"), help: "--agree-key: a new file to write the agreed key to, in hex (created with mode 0600; an existing file is refused). The key is never printed.")
    var keyOut: String?
    @Flag(help: "Print JSON (the only output format; accepted for scripts that pass it).")
    var json = false
    @Flag(help: "Log protocol steps to standard error.")
    var verbose = false

    func validate() throws {
        let endpoints = [tcp, udp, gatewayUDP, serial].compactMap { $0 }
        guard endpoints.count == 1 else { throw ValidationError("give exactly one of --tcp, --udp, --gateway-udp, --serial") }
        if let framing, MeterConnection.Framing(rawValue: framing) == nil, framing != "iec21" {
            throw ValidationError("--framing must be wrapper, hdlc or iec21")
        }
        if framing == "iec21" || optical {
            guard serial != nil || gatewayUDP != nil else { throw ValidationError("IEC 62056-21 needs --serial or --gateway-udp") }
        }
        if optical, framing != nil, framing != "hdlc" { throw ValidationError("--optical opens HDLC; drop --framing or use --framing hdlc") }
        if let auth, !["none", "lls"].contains(auth), Self.hlsMechanisms[auth] == nil {
            throw ValidationError("--auth must be none, lls, hls-md5, hls-sha1, hls-gmac, hls-sha256 or hls-ecdsa")
        }
        _ = try ecdsaSigning()
        if auth == "lls" || auth == "hls-md5" || auth == "hls-sha1" || auth == "hls-sha256", password == nil {
            throw ValidationError("--auth \(auth!) needs --password")
        }
        if let security, Self.policies[security] == nil { throw ValidationError("--security must be none, authenticated, encrypted or both") }
        _ = try securitySettings()
        _ = try manufacturerProfile()
        if framing == "iec21" {
            for address in obisCodes + [profile].compactMap({ $0 })
            where address.isEmpty || address.utf8.count > 32 || !address.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "(") && $0 != UInt8(ascii: ")") }) {
                throw ValidationError("'\(address)' is not an IEC 62056-21 data set address (e.g. 1.8.0 or P.01)")
            }
        } else {
            for code in obisCodes + [profile].compactMap({ $0 }) where OBISCode(code) == nil {
                throw ValidationError("'\(code)' is not an OBIS code (e.g. 1.0.1.8.0.255 or 1-0:1.8.0*255)")
            }
        }
        if profile != nil, from == nil, lastHours == nil { throw ValidationError("--profile needs --from or --last-hours") }
        if profile == nil, from != nil || to != nil || lastHours != nil { throw ValidationError("--from/--to/--last-hours need --profile") }
        for time in [from, to].compactMap({ $0 }) where Self.parseTime(time) == nil {
            throw ValidationError("'\(time)' is not an ISO 8601 time (e.g. 2026-11-26T00:00:00Z)")
        }
        guard timeout > 0, requestTimeout > 0 else { throw ValidationError("--timeout and --request-timeout must be positive") }
        if let agreeKey {
            guard Self.agreedKeyIDs[agreeKey] != nil else { throw ValidationError("--agree-key must be unicast, broadcast, authentication or kek") }
            guard keyOut != nil else { throw ValidationError("--agree-key needs --key-out FILE (the key is never printed)") }
            guard auth == "hls-ecdsa", framing != "iec21" else { throw ValidationError("--agree-key needs --auth hls-ecdsa (its keys sign the ephemeral keys)") }
            guard try securitySettings() != nil else { throw ValidationError("--agree-key needs a ciphered association: --block-cipher-key and --auth-key") }
        } else if keyOut != nil {
            throw ValidationError("--key-out goes with --agree-key")
        }
    }

    static let agreedKeyIDs: [String: DLMSKeyID] = [
        "unicast": .globalUnicastEncryption, "broadcast": .globalBroadcastEncryption, "authentication": .authentication, "kek": .masterKey,
    ]

    func run() async throws {
        if framing == "iec21" {
            if password != nil || !obisCodes.isEmpty || profile != nil {
                try await runProgramming()
            } else {
                try await runReadout()
            }
            return
        }
        let connection = try meterConnection()
        var logger = Logger(label: "hesctl.read")
        logger.logLevel = verbose ? .debug : .warning
        let readsClock = clock || (obisCodes.isEmpty && profile == nil && agreeKey == nil)
        let range = try profileRange()
        // The key file is created before the meter changes its key, so a key the meter took is
        // never lost for want of a writable file.
        let keyFile = try keyOut.map { try AgreedKeyFile(creating: $0) }
        defer { keyFile?.discardUnlessWritten() }

        do {
            let output = try await DLMSClient.withAssociation(to: connection, logger: logger) { client in
                var output = ReadOutput(meter: .init(connection), association: .init(client.association))
                if let agreeKey, let keyID = Self.agreedKeyIDs[agreeKey], let keyFile {
                    let key = try await client.agreeKey(keyID)
                    try keyFile.write(key)
                    output.agreedKey = ReadOutput.AgreedKey(keyID: agreeKey, file: keyFile.path)
                }
                if readsClock {
                    output.clock = ReadOutput.Clock(try await client.readClock())
                }
                for code in obisCodes {
                    let reading = try await client.readRegister(OBISCode(code)!)
                    output.registers.append(ReadOutput.Register(reading))
                }
                if let profile, let range {
                    let reading = try await client.readProfile(OBISCode(profile)!, from: range.from, to: range.to)
                    output.profile = ReadOutput.Profile(reading, from: range.from, to: range.to)
                }
                return output
            }
            try Self.printJSON(output)
        } catch let error as DLMSClientError {
            throw Self.failure(error, at: connection.endpoint)
        }
    }

    /// The port an IEC 62056-21 session opens: a serial port at 300 Bd 7E1, or a gateway.
    func iec21Endpoint() throws -> TransportEndpoint {
        if let serial { return .serial(.iec21(path: serial)) }
        let (host, port) = try Self.hostPort(gatewayUDP!, "--gateway-udp")
        return .gatewayUDP(host: host, port: port)
    }

    /// IEC 62056-21 programming mode: `R1` reads of `--obis` data sets and the load profile.
    func runProgramming() async throws {
        let endpoint = try iec21Endpoint()
        var dialect = try manufacturerProfile().iec21LoadProfile
        if let profile { dialect.address = profile }
        let range = try profileRange()
        do {
            let configuration = IEC21Session.Configuration(address: deviceAddress, maximumBaudRate: baud, responseTimeout: .seconds(timeout),
                                                           requestTimeout: .seconds(requestTimeout))
            let output = try await endpoint.withTransport(timeout: .seconds(timeout)) { transport in
                try await IEC21Reader.withProgrammingSession(over: transport, configuration: configuration, password: password) { session in
                    var output = ProgrammingOutput(endpoint: "\(endpoint)", manufacturer: session.identification.manufacturer,
                                                   identification: session.identification.identification, operand: session.operand)
                    for address in obisCodes {
                        output.dataSets += try await session.read(address).map(ReadoutOutput.DataSet.init)
                    }
                    if let range {
                        let profile = try await session.readLoadProfile(address: dialect.address, from: range.from, to: range.to,
                                                                        format: dialect.timestampFormat, commandType: dialect.commandType)
                        output.profile = .init(profile, address: dialect.address, from: range.from, to: range.to)
                    }
                    return output
                }
            }
            try Self.printJSON(output)
        } catch let error as DLMSClientError {
            throw Self.failure(error, at: endpoint)
        }
    }

    /// IEC 62056-21 mode C: the data readout, printed as data sets.
    func runReadout() async throws {
        let endpoint = try iec21Endpoint()
        do {
            let readout = try await endpoint.withTransport(timeout: .seconds(timeout)) { transport in
                try await IEC21Reader.readout(over: transport, configuration: .init(
                    address: deviceAddress, maximumBaudRate: baud, responseTimeout: .seconds(timeout), requestTimeout: .seconds(requestTimeout)))
            }
            let output = ReadoutOutput(
                endpoint: "\(endpoint)", manufacturer: readout.identification.manufacturer, identification: readout.identification.identification,
                dataSets: readout.dataSets.map(ReadoutOutput.DataSet.init))
            try Self.printJSON(output)
        } catch let error as DLMSClientError {
            throw Self.failure(error, at: endpoint)
        }
    }

    static func printJSON(_ value: some Encodable) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: try encoder.encode(value), as: UTF8.self))
    }

    /// Says which step failed on standard error; the exit status tells scripts whether to retry.
    static func failure(_ error: DLMSClientError, at endpoint: TransportEndpoint) -> ExitCode {
        FileHandle.standardError.write(Data("hesctl read: \(endpoint): \(error.step) failed: \(error.code): \(error.reason)\n".utf8))
        return ExitCode(error.isRetriable ? 75 : 1)
    }

    // MARK: - Parsing

    func meterConnection() throws -> MeterConnection {
        let endpoint: TransportEndpoint
        if let tcp {
            let (host, port) = try Self.hostPort(tcp, "--tcp")
            endpoint = .tcp(host: host, port: port)
        } else if let udp {
            let (host, port) = try Self.hostPort(udp, "--udp")
            endpoint = .udp(host: host, port: port)
        } else if let gatewayUDP {
            let (host, port) = try Self.hostPort(gatewayUDP, "--gateway-udp")
            endpoint = .gatewayUDP(host: host, port: port)
        } else {
            endpoint = .serial(optical ? .iec21(path: serial!) : .hdlc(path: serial!, baudRate: baud))
        }
        var profile = try manufacturerProfile()
        if let maxInfo {
            profile.hdlcParameters.maximumInformationLengthReceive = maxInfo
            profile.hdlcParameters.maximumInformationLengthTransmit = maxInfo
        }
        let authentication: MeterConnection.Authentication
        switch (auth, password) {
        case ("none", _), (nil, nil): authentication = .none
        case ("hls-ecdsa", _): authentication = .highECDSA(try ecdsaSigning()!)
        case (let auth?, let password) where Self.hlsMechanisms[auth] != nil:
            do {
                authentication = .high(Self.hlsMechanisms[auth]!, secret: try password.map { try DLMSSecret(text: $0) })
            } catch {
                throw ValidationError("--password: \(error)")
            }
        case (_, let password?): authentication = .low(password: Array(password.utf8))
        default: throw ValidationError("--auth lls needs --password")
        }
        var timeouts = MeterConnection.Timeouts()
        timeouts.step = .seconds(timeout)
        timeouts.connect = .seconds(timeout)
        timeouts.request = .seconds(requestTimeout)
        return MeterConnection(endpoint: endpoint, framing: optical ? .hdlc : framing.flatMap(MeterConnection.Framing.init(rawValue:)), clientSAP: client,
                               serverLogicalAddress: server, serverPhysicalAddress: physical, authentication: authentication,
                               profile: profile, timeouts: timeouts,
                               opening: optical ? .iec21ModeE(address: deviceAddress, maximumBaudRate: baud) : .none,
                               security: try securitySettings())
    }

    static let hlsMechanisms: [String: HLSMechanism] = ["hls-md5": .md5, "hls-sha1": .sha1, "hls-gmac": .gmac, "hls-sha256": .sha256, "hls-ecdsa": .ecdsa]
    static let policies: [String: SecurityPolicy] = [
        "none": SecurityPolicy(requiresAuthentication: false, requiresEncryption: false),
        "authenticated": .authenticated, "encrypted": .encrypted, "both": .authenticatedAndEncrypted,
    ]

    /// HLS-ECDSA's keys and the client's system title, for `--auth hls-ecdsa`; `nil` for other mechanisms.
    func ecdsaSigning() throws -> MeterConnection.HLSSigning? {
        guard auth == "hls-ecdsa" else { return nil }
        guard let key = try KeyMaterial.signingKey(signingKey, name: "signing-key", environment: "HES_DLMS_SIGNING_KEY"),
              let meterKey = try KeyMaterial.publicKey(meterPublicKey, name: "meter-public-key", environment: "HES_DLMS_METER_PUBLIC_KEY") else {
            throw ValidationError("--auth hls-ecdsa needs --signing-key and --meter-public-key (or $HES_DLMS_SIGNING_KEY, $HES_DLMS_METER_PUBLIC_KEY)")
        }
        guard key.curve == meterKey.curve else {
            throw ValidationError("--signing-key is \(key.curve) (security suite \(key.curve.securitySuite)) but --meter-public-key is \(meterKey.curve): both must be of one suite")
        }
        do {
            return MeterConnection.HLSSigning(signingKey: key, meterPublicKey: meterKey, systemTitle: try SystemTitle(hex: systemTitle ?? "4853455300000001"))
        } catch {
            throw ValidationError("--system-title: \(error)")
        }
    }

    /// The ciphering settings; keys from the flags, `@FILE`s or the environment.
    func securitySettings() throws -> MeterConnection.Security? {
        let keys = try cipherKeys.keys()
        let needsKeys = auth == "hls-gmac" || (security.map { $0 != "none" } ?? false)
        let wantsTitles = needsKeys || auth == "hls-sha256"
        guard keys != nil || wantsTitles else { return nil }
        guard let keys else {
            throw ValidationError("ciphering, hls-gmac and hls-sha256 need --block-cipher-key and --auth-key (or $HES_DLMS_BLOCK_CIPHER_KEY, $HES_DLMS_AUTH_KEY)")
        }
        do {
            let title = try SystemTitle(hex: systemTitle ?? "4853455300000001")
            let expected = try serverSystemTitle.map { try SystemTitle(hex: $0) }
            let policy = Self.policies[security ?? "both"] ?? .authenticatedAndEncrypted
            return MeterConnection.Security(
                systemTitle: title, blockCipherKey: keys.blockCipherKey, authenticationKey: keys.authenticationKey, policy: policy,
                dedicatedKey: keys.dedicatedKey,
                invocationCounter: invocationCounter.map { .startingAt($0) } ?? .standard,
                expectedServerSystemTitle: expected,
                counterStore: counterFile.map { FileInvocationCounterStore(path: $0) })
        } catch let error as ValidationError {
            throw error
        } catch {
            throw ValidationError("security settings: \(error)")
        }
    }

    func manufacturerProfile() throws -> ManufacturerProfile {
        if let builtIn = ManufacturerProfile.builtIn[meterProfile] { return builtIn }
        guard let data = FileManager.default.contents(atPath: meterProfile) else {
            throw ValidationError("--meter-profile must be one of \(ManufacturerProfile.builtIn.keys.sorted().joined(separator: ", ")) or a readable JSON file")
        }
        do {
            return try JSONDecoder().decode(ManufacturerProfile.self, from: data)
        } catch {
            throw ValidationError("--meter-profile \(meterProfile): \(error)")
        }
    }

    func profileRange() throws -> (from: Date, to: Date)? {
        guard profile != nil else { return nil }
        let end = to.flatMap(Self.parseTime) ?? Date()
        let start = from.flatMap(Self.parseTime) ?? end.addingTimeInterval(-Double(lastHours ?? 0) * 3600)
        guard start <= end else { throw ValidationError("the profile range starts after it ends") }
        return (start, end)
    }

    static func hostPort(_ text: String, _ flag: String) throws -> (String, Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else {
            throw ValidationError("\(flag) wants host:port, got '\(text)'")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host, port)
    }

    static func parseTime(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }
}

/// What `hesctl read --framing iec21` prints.
struct ReadoutOutput: Encodable {
    struct DataSet: Encodable {
        struct Value: Encodable { var value: String; var unit: String? }
        var address: String
        var values: [Value]
        init(_ set: IEC21DataSet) {
            address = set.address; values = set.values.map { Value(value: $0.value, unit: $0.unit) }
        }
    }
    var endpoint: String
    var manufacturer: String
    var identification: String
    var dataSets: [DataSet]
}

/// What `hesctl read --framing iec21` prints in programming mode.
struct ProgrammingOutput: Encodable {
    struct Profile: Encodable {
        struct Channel: Encodable { var address: String; var unit: String }
        struct Row: Encodable { var time: String; var status: String?; var values: [String] }
        var address: String
        var from: String
        var to: String
        var periodMinutes: Int
        var channels: [Channel]
        var rows: [Row]
        /// Rows the meter sent that are not data of the range: outside it, or repeated (the first kept); and rows put back in order.
        var rowsOutsideRange: Int
        var rowsRepeated: Int
        var rowsReordered: Int
        init(_ p: IEC21LoadProfile, address: String, from: Date, to: Date) {
            let formatter = ISO8601DateFormatter()
            self.address = address; self.from = formatter.string(from: from); self.to = formatter.string(from: to)
            periodMinutes = p.periodMinutes
            rowsOutsideRange = p.discarded.outsideRange
            rowsRepeated = p.discarded.duplicates
            rowsReordered = p.discarded.reordered
            channels = p.channels.map { Channel(address: $0.address, unit: $0.unit) }
            rows = p.rows.map {
                Row(time: formatter.string(from: Date(timeIntervalSince1970: TimeInterval($0.time.secondsSince1970))), status: $0.status, values: $0.values)
            }
        }
    }
    var endpoint: String
    var manufacturer: String
    var identification: String
    var operand: String?
    var dataSets: [ReadoutOutput.DataSet] = []
    var profile: Profile?
}

/// What `hesctl read` prints.
struct ReadOutput: Encodable {
    struct Meter: Encodable {
        var endpoint: String
        var framing: String
        var client: UInt8
        var server: UInt16
        var physical: UInt16?
        var authentication: String
        var security: String?
        init(_ c: MeterConnection) {
            endpoint = "\(c.endpoint)"; framing = c.framing.rawValue; client = c.clientSAP
            server = c.serverLogicalAddress; physical = c.serverPhysicalAddress; authentication = "\(c.authentication)"
            security = c.security.map { "\($0)" }
        }
    }

    struct Association: Encodable {
        var conformance: [String]
        var maxPDU: UInt16
        var hdlc: String?
        var serverSystemTitle: String?
        init(_ a: DLMSClient.Association) {
            conformance = a.conformance.names; maxPDU = a.serverMaxReceivePDUSize; hdlc = a.hdlcParameters.map { "\($0)" }
            serverSystemTitle = a.serverSystemTitle?.hex
        }
    }

    struct Clock: Encodable {
        var time: String
        var deviation: Int?
        var status: UInt8?
        init(_ t: CosemDateTime) {
            time = t.iso8601 ?? t.description; deviation = t.deviationValue; status = t.clockStatusValue?.rawValue
        }
    }

    struct Register: Encodable {
        var obis: String
        var `class`: UInt16
        var raw: PlainJSONValue
        var scaler: Int8?
        var unit: String?
        var value: PlainJSONValue
        init(_ r: RegisterReading) {
            obis = "\(r.logicalName)"; `class` = r.classID.rawValue; raw = r.raw.plainJSON
            scaler = r.scalerUnit?.scaler; unit = r.scalerUnit.map { "\($0.unit)" }
            value = r.scaledValue.map(PlainJSONValue.number) ?? r.raw.plainJSON
        }
    }

    struct Profile: Encodable {
        var obis: String
        var from: String
        var to: String
        var capturePeriod: UInt32?
        var columns: [String]
        var rows: [[PlainJSONValue]]
        init(_ p: ProfileReading, from: Date, to: Date) {
            let formatter = ISO8601DateFormatter()
            obis = "\(p.logicalName)"; self.from = formatter.string(from: from); self.to = formatter.string(from: to)
            capturePeriod = p.capturePeriod
            columns = p.columns.map { "\($0.logicalName)/\($0.attributeIndex)" }
            rows = p.rows.map { $0.values.map(\.plainJSON) }
        }
    }

    var meter: Meter
    var association: Association
    var clock: Clock?
    var registers: [Register] = []
    /// `--agree-key`: which key was replaced and where it was written (never the key).
    var agreedKey: AgreedKey?

    struct AgreedKey: Encodable {
        var keyID: String
        var file: String
    }
    var profile: Profile?
}

/// The file `--key-out` names: created (exclusively, mode 0600) before the key agreement and
/// written after it; removed if no key was agreed. Used by one task at a time (the association's
/// body, then the command), hence unchecked.
final class AgreedKeyFile: @unchecked Sendable {
    let path: String
    private let descriptor: Int32
    private var isClosed = false
    private var isWritten = false

    init(creating path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else {
            throw ValidationError("--key-out \(path): cannot create it (\(String(cString: strerror(errno)))); an existing file is never overwritten")
        }
        self.path = path
        self.descriptor = fd
    }

    /// Writes the key's hex and a newline, and closes the file.
    func write(_ key: DLMSKey) throws {
        var text = key.withUnsafeBytes { bytes in Array(Hex.encode(bytes).utf8) }
        defer { for i in text.indices { text[i] = 0 } }
        text.append(UInt8(ascii: "\n"))
        let written = text.withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress, $0.count) }
        let closed = close(descriptor)
        isClosed = true
        guard written == text.count, closed == 0 else {
            throw ValidationError("--key-out \(path): the meter took a new key but writing it failed (\(String(cString: strerror(errno))))")
        }
        isWritten = true
    }

    /// Closes and removes the file when no key went into it.
    func discardUnlessWritten() {
        guard !isWritten else { return }
        if !isClosed { close(descriptor) }
        isClosed = true
        unlink(path)
    }
}
