import Contracts
import Foundation
import Testing
import TestSupport

/// `meter-sim config`: the head-end configuration of the fleet `meter-sim serve` simulates with
/// the same flags. It passes the config-service's parser and validator, names every meter where
/// serve listens (checked against serve's `GET /meters`), and `hesctl read` reaches meters of
/// each transport with the document's own values.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct MeterSimConfigTests {
    /// `ManufacturerProfile.builtIn`'s names (DLMSClient, which this target does not link).
    static let validator = ConfigurationValidator(builtInProfiles: ["standard", "four-byte-address", "disc-only", "gurux", "emh"])

    /// Runs `meter-sim config` and returns the validated document; records every problem otherwise.
    static func document(_ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) async throws -> ConfigurationDocument? {
        let result = try await ChildProcess.run(product: "meter-sim", arguments: ["config"] + arguments)
        #expect(result.status == 0, "meter-sim config \(arguments.joined(separator: " ")): \(result.stderr)", sourceLocation: sourceLocation)
        guard result.status == 0 else { return nil }
        switch ConfigurationParser.parse(Data(result.stdout.utf8), validator: validator) {
        case .success(let document):
            return document
        case .failure(let problems):
            Issue.record("the document has problems: \(problems)\n\(result.stdout.prefix(4000))", sourceLocation: sourceLocation)
            return nil
        }
    }

    /// The `hesctl read` flags that open `meter` as the document describes it.
    static func hesctlArguments(_ meter: ConfigurationDocument.Meter, in document: ConfigurationDocument) throws -> [String] {
        guard let line = document.lines.first(where: { $0.id == meter.line }),
              let template = document.templates.first(where: { $0.id == meter.template }) else {
            throw ChildProcessError(reason: "meter \(meter.id): line or template missing")
        }
        let settings = meter.settings.over(template.defaults)
        var arguments: [String]
        switch line.endpoint {
        case .tcp(let host, let port): arguments = ["--tcp", "\(host):\(port)"]
        case .udp(let host, let port): arguments = ["--udp", "\(host):\(port)"]
        case .gatewayUDP(let host, let port): arguments = ["--gateway-udp", "\(host):\(port)"]
        case .serial(let device, let baudRate): arguments = ["--serial", device, "--baud", String(baudRate)]
        case .optical(let device, let maximumBaudRate): arguments = ["--serial", device, "--optical", "--baud", String(maximumBaudRate)]
        }
        switch settings.protocol {
        case .dlmsWrapper: arguments += ["--framing", "wrapper"]
        case .dlmsHDLC: arguments += ["--framing", "hdlc"]
        case .iec62056_21, nil: arguments += ["--framing", "iec21"]
        }
        if let address = meter.hdlcPhysicalAddress { arguments += ["--physical", String(address)] }
        if let address = meter.deviceAddress { arguments += ["--device-address", address] }
        if let sap = settings.clientSAP { arguments += ["--client", String(sap)] }
        if let authentication = settings.authentication { arguments += ["--auth", authentication.rawValue] }
        if let security = settings.security { arguments += ["--security", security.rawValue] }
        if let profile = settings.manufacturerProfile { arguments += ["--meter-profile", profile] }
        if let title = meter.systemTitle { arguments += ["--system-title", title] }
        if let title = meter.serverSystemTitle { arguments += ["--server-system-title", title] }
        for (name, secret) in meter.keys?.all ?? [] {
            guard case .plain(let text) = secret else { throw ChildProcessError(reason: "meter \(meter.id): \(name) is not in the clear") }
            switch name {
            case "password": arguments += ["--password", text]
            case "blockCipherKey": arguments += ["--block-cipher-key", text]
            default: arguments += ["--auth-key", text]
            }
        }
        return arguments
    }

    static func serial(_ index: Int) -> String { MeterSimTransportTests.serial(index) }

    @Test("a fleet of every transport: a valid document, each meter where serve listens, read by hesctl with the document's values")
    func mixedFleet() async throws {
        let port = try freeLoopbackPorts(count: 10)
        let bus = MeterSimTransportTests.linePath(), optical = MeterSimTransportTests.linePath()
        let fleet = FileManager.default.temporaryDirectory.appendingPathComponent("hes-fleet-\(UUID().uuidString.prefix(8)).json").path
        defer { try? FileManager.default.removeItem(atPath: fleet) }
        try """
            {"password": "secret12", "pace": false, "groups": [
             {"count": 2, "transport": "tcp", "framing": "wrapper", "port": \(port)},
             {"count": 2, "transport": "tcp", "framing": "hdlc", "quirk": "four-byte-address", "physicalBase": 17, "port": \(port + 2)},
             {"count": 1, "transport": "udp", "quirk": "disc-only", "port": \(port + 4)},
             {"count": 4, "transport": "gateway-udp", "metersPerLine": 2, "port": \(port + 5)},
             {"count": 3, "transport": "serial", "framing": "hdlc", "metersPerLine": 3, "linePath": "\(bus)"},
             {"count": 2, "transport": "serial", "framing": "iec21", "quirk": "emh", "metersPerLine": 2, "linePath": "\(optical)"},
             {"count": 1, "transport": "gateway-udp", "framing": "iec21", "port": \(port + 7)},
             {"count": 2, "transport": "tcp", "quirk": "gurux", "port": \(port + 8), "faults": {"silent": 0.5, "garbage": 0.5}}
            ]}
            """.write(toFile: fleet, atomically: true, encoding: .utf8)

        guard let document = try await Self.document(["--fleet", fleet]) else { return }
        #expect(document.schema == "hes-configuration/v1")
        #expect(document.regions.map(\.id) == ["local"])
        #expect(document.meters.map(\.id) == (0..<17).map(Self.serial), "one meter per simulated meter, numbered as serve numbers them")
        #expect(document.meters.allSatisfy { $0.serialNumber == $0.id })
        #expect(Set(document.lines.map(\.id)).count == document.lines.count)
        // 6 TCP and 1 UDP meters, 3 gateway ports, the HDLC bus, the IEC 62056-21 line.
        #expect(document.lines.count == 12)
        #expect(Dictionary(grouping: document.lines, by: \.endpoint.kindName).mapValues(\.count)
                == ["tcp": 6, "udp": 1, "gateway-udp": 3, "serial": 1, "optical": 1])
        #expect(document.lines.allSatisfy { $0.maxSessions == 1 && $0.region == "local" })
        #expect(document.schedules.map(\.id) == ["sim-read"])
        #expect(document.schedules.first.map { [$0.cron, $0.timeZone] } == ["*/15 * * * *", "UTC"])
        #expect(document.templates.allSatisfy { $0.profiles.map(\.obis) == ["1.0.99.1.0.255"] && $0.schedules == ["sim-read"] })

        let byID = Dictionary(uniqueKeysWithValues: document.meters.map { ($0.id, $0) })
        let lineOf = { (id: String) in document.lines.first { $0.id == byID[id]?.line } }
        func settings(_ id: String) -> ConfigurationDocument.MeterSettings? {
            guard let meter = byID[id], let template = document.templates.first(where: { $0.id == meter.template }) else { return nil }
            return meter.settings.over(template.defaults)
        }
        #expect(lineOf("SIM00000001")?.endpoint == .tcp(host: "127.0.0.1", port: port))
        #expect(settings("SIM00000001")?.protocol == .dlmsWrapper)
        #expect(settings("SIM00000001")?.authentication == .lls && settings("SIM00000001")?.clientSAP == 17)
        #expect(byID["SIM00000001"]?.keys?.password == .plain("secret12"))
        #expect(byID["SIM00000004"]?.hdlcPhysicalAddress == 18)
        #expect(settings("SIM00000004")?.manufacturerProfile == "four-byte-address")
        #expect(lineOf("SIM00000005")?.endpoint == .udp(host: "127.0.0.1", port: port + 4))
        #expect((6...9).map { byID[Self.serial($0 - 1)]?.hdlcPhysicalAddress } == [16, 17, 16, 17])
        #expect(lineOf("SIM00000008")?.endpoint == .gatewayUDP(host: "127.0.0.1", port: port + 6))
        #expect(lineOf("SIM00000011")?.endpoint == .serial(device: bus, baudRate: 9600))
        #expect(lineOf("SIM00000014")?.endpoint == .optical(device: optical, maximumBaudRate: 9600))
        #expect(byID["SIM00000014"]?.deviceAddress == "SIM00000014" && byID["SIM00000014"]?.hdlcPhysicalAddress == 17)
        #expect(settings("SIM00000014")?.protocol == .dlmsHDLC && settings("SIM00000014")?.manufacturerProfile == "emh")
        #expect(settings("SIM00000015")?.protocol == .iec62056_21 && byID["SIM00000015"]?.deviceAddress == "SIM00000015")
        #expect(settings("SIM00000017")?.manufacturerProfile == "gurux")

        // serve with the same fleet: every meter is where the document says.
        let adminPort = try freeLoopbackPort()
        let sim = try await MeterSimTransportTests.startSim(["--fleet", fleet, "--admin-port", String(adminPort)])
        let listing = try httpGet(port: adminPort, path: "/meters")
        let served = (try JSONSerialization.jsonObject(with: Data(listing.body.utf8)) as? [[String: Any]]) ?? []
        #expect(served.count == document.meters.count)
        for status in served {
            guard let serial = status["serial"] as? String, let address = status["address"] as? String,
                  let endpoint = lineOf(serial)?.endpoint else {
                Issue.record("serve's meter \(status) is not in the document")
                continue
            }
            switch endpoint {
            case .tcp, .udp, .gatewayUDP:
                #expect(endpoint.address == address, "\(serial)")
            case .serial(let device, _), .optical(let device, _):
                #expect(try FileManager.default.destinationOfSymbolicLink(atPath: device) == address, "\(serial)")
            }
            if let address = byID[serial]?.hdlcPhysicalAddress {
                #expect(status["hdlcPhysicalAddress"] as? Int == address, "\(serial)")
            }
        }
        // One meter of each transport, opened with nothing but the document's values.
        for id in ["SIM00000001", "SIM00000004", "SIM00000005", "SIM00000009", "SIM00000011", "SIM00000014"] {
            guard let meter = byID[id] else { continue }
            let output = try await MeterSimTransportTests.hesctl(try Self.hesctlArguments(meter, in: document) + ["--obis", "0.0.96.1.0.255", "--timeout", "10"])
            #expect((output?["registers"] as? [[String: Any]])?.first?["raw"] as? String == id, "\(id)")
        }
        await MeterSimTransportTests.stop(sim)
    }

    @Test("with the fleet's suite 0 keys: HLS-GMAC and ciphering with each meter's system title; hesctl reads with the document's values")
    func securedFleet() async throws {
        let port = try freeLoopbackPorts(count: 2)
        let flags = ["--meters", "2", "--framing", "hdlc", "--port", String(port), "--example-keys"]
        guard let document = try await Self.document(flags) else { return }
        let template = try #require(document.templates.first)
        #expect(template.defaults.authentication == .hlsGMAC && template.defaults.security == .both && template.defaults.clientSAP == 1)
        let meter = try #require(document.meters.last)
        #expect(meter.keys?.blockCipherKey == .plain("000102030405060708090A0B0C0D0E0F"))
        #expect(meter.keys?.authenticationKey == .plain("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"))
        #expect(meter.serverSystemTitle?.hasPrefix("535748") == true, "SWH + the meter's own 5 bytes")
        #expect(meter.serverSystemTitle != document.meters.first?.serverSystemTitle)

        let sim = try await MeterSimTransportTests.startSim(flags)
        let output = try await MeterSimTransportTests.hesctl(try Self.hesctlArguments(meter, in: document) + ["--obis", "0.0.96.1.0.255", "--timeout", "10"])
        #expect((output?["registers"] as? [[String: Any]])?.first?["raw"] as? String == "SIM00000002")
        await MeterSimTransportTests.stop(sim)
    }

    @Test("a fleet file's access per group: LLS and HLS-GMAC meters side by side, each template its own; hls-gmac without keys refused")
    func accessPerGroup() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hes-access-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try """
            {"groups": [{"count": 2, "transport": "tcp", "framing": "wrapper", "port": 27000, "access": "lls"},
                        {"count": 2, "transport": "tcp", "framing": "wrapper", "port": 27100, "access": "hls-gmac"}]}
            """.write(toFile: directory + "/fleet.json", atomically: true, encoding: .utf8)
        guard let document = try await Self.document(["--fleet", directory + "/fleet.json", "--example-keys"]) else { return }
        #expect(document.templates.map(\.id).sorted() == ["sim-dlms-wrapper", "sim-dlms-wrapper-hls-gmac"])
        let lls = try #require(document.templates.first { $0.id == "sim-dlms-wrapper" })
        #expect(lls.defaults.authentication == .lls && lls.defaults.clientSAP == 17)
        let hls = try #require(document.templates.first { $0.id == "sim-dlms-wrapper-hls-gmac" })
        #expect(hls.defaults.authentication == .hlsGMAC && hls.defaults.security == .both && hls.defaults.clientSAP == 1)
        #expect(document.meters.map(\.template) == ["sim-dlms-wrapper", "sim-dlms-wrapper", "sim-dlms-wrapper-hls-gmac", "sim-dlms-wrapper-hls-gmac"])
        #expect(document.meters[0].keys?.password != nil && document.meters[0].keys?.blockCipherKey == nil)
        #expect(document.meters[3].keys?.blockCipherKey != nil && document.meters[3].systemTitle != nil)

        let withoutKeys = try await ChildProcess.run(product: "meter-sim", arguments: ["config", "--fleet", directory + "/fleet.json"])
        #expect(withoutKeys.status != 0 && withoutKeys.stderr.contains("hls-gmac"), "\(withoutKeys.stderr)")
        try #"{"groups": [{"count": 1, "access": "md5"}]}"#.write(toFile: directory + "/bad.json", atomically: true, encoding: .utf8)
        let bad = try await ChildProcess.run(product: "meter-sim", arguments: ["config", "--fleet", directory + "/bad.json"])
        #expect(bad.status != 0 && bad.stderr.contains("'md5'"), "\(bad.stderr)")
    }

    @Test("the schedule, region and host flags; IEC 62056-21 in mode C; addresses per meter kept")
    func options() async throws {
        let line = MeterSimTransportTests.linePath()
        guard let document = try await Self.document([
            "--meters", "2", "--transport", "serial", "--framing", "iec21", "--meters-per-line", "2", "--line-path", line,
            "--iec21-mode", "c", "--region", "north", "--cron", "0 * * * *", "--time-zone", "Europe/Berlin",
            "--window-minutes", "30", "--jitter-seconds", "120", "--lookback-hours", "6",
        ]) else { return }
        #expect(document.lines.map(\.endpoint) == [.serial(device: line, baudRate: 9600)])
        #expect(document.lines.map(\.region) == ["north"] && document.regions.map(\.id) == ["north"])
        #expect(document.templates.map { $0.defaults.protocol } == [.iec62056_21])
        #expect(document.meters.map(\.deviceAddress) == ["SIM00000001", "SIM00000002"])
        #expect(document.schedules.first == ConfigurationDocument.Schedule(id: "sim-read", cron: "0 * * * *", timeZone: "Europe/Berlin",
                                                                           windowMinutes: 30, jitterSeconds: 120))
        #expect(document.templates.first?.profiles.first?.lookbackHours == 6)

        let hosted = try #require(try await Self.document(["--meters", "2", "--port", "4100", "--host", "meter-sim"]))
        #expect(hosted.lines.map(\.endpoint) == [.tcp(host: "meter-sim", port: 4100), .tcp(host: "meter-sim", port: 4101)])
        let perMeter = try #require(try await Self.document(["--meters", "2", "--address-per-meter", "--address-base", "127.0.0.10", "--host", "meter-sim"]))
        #expect(perMeter.lines.map(\.endpoint) == [.tcp(host: "127.0.0.10", port: 4061), .tcp(host: "127.0.0.11", port: 4061)])
    }

    @Test("fleets a configuration cannot describe, and bad flags, exit 64 with nothing on stdout", arguments: [
        ["--meters", "2", "--transport", "serial"],                                              // a pseudo-terminal's path is unknown
        ["--meters", "3", "--transport", "serial", "--meters-per-line", "3", "--physical-addresses", "17,17,18", "--line-path", "/tmp/hes-x"],
        ["--meters", "1", "--hdlc-physical-base", "1", "--framing", "hdlc"],
        ["--meters", "1", "--region", "North"], ["--meters", "1", "--time-zone", "Mars/Olympus"],
        ["--meters", "1", "--window-minutes", "1", "--jitter-seconds", "60"], ["--meters", "1", "--iec21-mode", "b"],
        ["--meters", "0"],
    ])
    func refused(arguments: [String]) async throws {
        let result = try await ChildProcess.run(product: "meter-sim", arguments: ["config"] + arguments)
        #expect(result.status == 64, "status \(result.status), stderr: \(result.stderr)")
        #expect(result.stdout.isEmpty)
    }
}
