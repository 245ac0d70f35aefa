import Foundation

/// One thing wrong with a configuration document: where (an RFC 6901 JSON pointer into the
/// document as sent) and what, for a human.
public struct ConfigurationProblem: Codable, Sendable, Hashable, CustomStringConvertible {
    public var pointer: String
    public var detail: String

    public init(pointer: String, detail: String) {
        self.pointer = pointer
        self.detail = detail
    }

    public var description: String { "\(pointer.isEmpty ? "/" : pointer): \(detail)" }

    /// `/meters/3/keys` from coding keys (array indices as numbers; `~` and `/` escaped).
    public static func pointer(_ path: [any CodingKey]) -> String {
        pointer(tokens: path.map { key in key.intValue.map(String.init) ?? key.stringValue })
    }

    /// `/meters/3/keys` from its reference tokens (`~` and `/` escaped, RFC 6901).
    public static func pointer(tokens: [String]) -> String {
        tokens.map { "/" + $0.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1") }.joined()
    }
}

/// Reads a configuration document and reports **every** problem at once: elements that do not
/// decode (each with its path; the others are still checked), then the rules across elements
/// (``ConfigurationValidator``).
public enum ConfigurationParser {
    /// The document, when it has no problem; otherwise every problem found.
    /// - Parameter prepare: runs on what decoded before the rules are checked (the config-service
    ///   resolves redacted secrets there).
    public static func parse(_ data: Data, validator: ConfigurationValidator,
                             prepare: (inout ConfigurationDocument) -> Void = { _ in }) -> Result<ConfigurationDocument, ConfigurationProblems> {
        let nulls = nullProblems(in: data)
        guard nulls.isEmpty else { return .failure(ConfigurationProblems(nulls)) }
        let lenient: LenientDocument
        do {
            lenient = try JSONDecoder().decode(LenientDocument.self, from: data)
        } catch let error as DecodingError {
            return .failure(ConfigurationProblems([problem(error)]))
        } catch {
            return .failure(ConfigurationProblems([ConfigurationProblem(pointer: "", detail: "not a JSON document: \(error)")]))
        }
        var problems = lenient.problems
        var document = lenient.document
        prepare(&document)
        problems += validator.validate(document, unreadable: lenient.unreadableIDs)
        document.positions = nil
        return problems.isEmpty ? .success(document) : .failure(ConfigurationProblems(problems))
    }

    /// A decoding error as a problem at its path.
    public static func problem(_ error: DecodingError) -> ConfigurationProblem {
        switch error {
        case .keyNotFound(let key, let context):
            return ConfigurationProblem(pointer: ConfigurationProblem.pointer(context.codingPath), detail: "'\(key.stringValue)' is missing")
        case .typeMismatch(let type, let context):
            return ConfigurationProblem(pointer: ConfigurationProblem.pointer(context.codingPath), detail: "expected \(describe(type)); \(context.debugDescription)")
        case .valueNotFound(let type, let context):
            return ConfigurationProblem(pointer: ConfigurationProblem.pointer(context.codingPath), detail: "expected \(describe(type)), found null")
        case .dataCorrupted(let context):
            return ConfigurationProblem(pointer: ConfigurationProblem.pointer(context.codingPath), detail: context.debugDescription)
        @unknown default:
            return ConfigurationProblem(pointer: "", detail: "\(error)")
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is Int64.Type: "an integer"
        case is Double.Type: "a number"
        case is Bool.Type: "true or false"
        default: "\(type)"
        }
    }
}

/// Every problem of a refused document.
public struct ConfigurationProblems: Error, Sendable, Hashable, CustomStringConvertible {
    public var problems: [ConfigurationProblem]
    public init(_ problems: [ConfigurationProblem]) { self.problems = problems }
    public var description: String { "\(problems.count) problem(s): " + problems.prefix(10).map(\.description).joined(separator: "; ") }
}

/// An array element decoded on its own: a bad meter is one problem, the others are still read.
struct Lenient<Element: Decodable>: Decodable {
    var value: Element?
    var problem: ConfigurationProblem?
    /// The element's `id`, when it has one, even if the element is unreadable (so references to
    /// it are not reported a second time).
    var id: String?

    private struct IDOnly: Decodable { var id: String }

    init(from decoder: any Decoder) throws {
        do {
            value = try Element(from: decoder)
        } catch let error as DecodingError {
            problem = ConfigurationParser.problem(error)
            id = try? IDOnly(from: decoder).id
        }
    }
}

/// The document with each element decoded on its own.
struct LenientDocument: Decodable {
    var schema: String
    var regions: [Lenient<ConfigurationDocument.Region>]
    var lines: [Lenient<ConfigurationDocument.Line>]
    var templates: [Lenient<ConfigurationDocument.Template>]
    var schedules: [Lenient<ConfigurationDocument.Schedule>]
    var manufacturerProfiles: [Lenient<ConfigurationDocument.NamedManufacturerProfile>]
    var meters: [Lenient<ConfigurationDocument.Meter>]

    private enum CodingKeys: String, CodingKey { case schema, regions, lines, templates, schedules, manufacturerProfiles, meters }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        schema = try c.decode(String.self, forKey: .schema)
        regions = try c.decodeIfPresent([Lenient<ConfigurationDocument.Region>].self, forKey: .regions) ?? []
        lines = try c.decodeIfPresent([Lenient<ConfigurationDocument.Line>].self, forKey: .lines) ?? []
        templates = try c.decodeIfPresent([Lenient<ConfigurationDocument.Template>].self, forKey: .templates) ?? []
        schedules = try c.decodeIfPresent([Lenient<ConfigurationDocument.Schedule>].self, forKey: .schedules) ?? []
        manufacturerProfiles = try c.decodeIfPresent([Lenient<ConfigurationDocument.NamedManufacturerProfile>].self, forKey: .manufacturerProfiles) ?? []
        meters = try c.decodeIfPresent([Lenient<ConfigurationDocument.Meter>].self, forKey: .meters) ?? []
    }

    var problems: [ConfigurationProblem] {
        regions.compactMap(\.problem) + lines.compactMap(\.problem) + templates.compactMap(\.problem) + schedules.compactMap(\.problem)
            + manufacturerProfiles.compactMap(\.problem) + meters.compactMap(\.problem)
    }

    var unreadableIDs: Set<String> {
        Set((regions.map(\.id) + lines.map(\.id) + templates.map(\.id) + schedules.map(\.id) + manufacturerProfiles.map(\.id) + meters.map(\.id)).compactMap { $0 })
    }

    /// What decoded. Indices in problems refer to the document as sent; the validator is given
    /// the original positions through ``ConfigurationValidator/Positions``.
    var document: ConfigurationDocument {
        var document = ConfigurationDocument(
            regions: regions.compactMap(\.value), lines: lines.compactMap(\.value), templates: templates.compactMap(\.value),
            schedules: schedules.compactMap(\.value), manufacturerProfiles: manufacturerProfiles.compactMap(\.value), meters: meters.compactMap(\.value))
        document.schema = schema
        document.positions = ConfigurationDocument.Positions(
            regions: regions.indices.filter { regions[$0].value != nil }, lines: lines.indices.filter { lines[$0].value != nil },
            templates: templates.indices.filter { templates[$0].value != nil }, schedules: schedules.indices.filter { schedules[$0].value != nil },
            manufacturerProfiles: manufacturerProfiles.indices.filter { manufacturerProfiles[$0].value != nil },
            meters: meters.indices.filter { meters[$0].value != nil })
        return document
    }
}

/// The rules across a document's elements (invariant 3: a document with any problem changes
/// nothing). Pure; the config-service runs it before staging, `hesctl config validate` offline.
public struct ConfigurationValidator: Sendable {
    /// Profile names every collector knows (`ManufacturerProfile.builtIn`).
    public var builtInProfiles: Set<String>
    /// Checks an inline profile object's JSON; returns what is wrong, or nil.
    public var checkInlineProfile: @Sendable (String) -> String?

    public init(builtInProfiles: Set<String>, checkInlineProfile: @escaping @Sendable (String) -> String? = { _ in nil }) {
        self.builtInProfiles = builtInProfiles
        self.checkInlineProfile = checkInlineProfile
    }

    /// Every problem of `document`; `unreadable` are ids of elements that did not decode (not
    /// reported again as unknown references).
    public func validate(_ document: ConfigurationDocument, unreadable: Set<String> = []) -> [ConfigurationProblem] {
        var check = Check(document: document, unreadable: unreadable)
        if document.schema != ConfigurationDocument.currentSchema {
            check.add("/schema", "this build reads \(ConfigurationDocument.currentSchema), not '\(document.schema)'")
        }
        check.regions()
        check.schedules()
        check.templates()
        check.profiles(builtIn: builtInProfiles, inlineCheck: checkInlineProfile)
        check.lines()
        check.meters(builtIn: builtInProfiles)
        return check.problems
    }
}

extension ConfigurationValidator {
    /// `1.0.1.8.0.255`: six groups 0…255.
    public static func obisProblem(_ obis: String) -> String? {
        let groups = obis.split(separator: ".", omittingEmptySubsequences: false)
        guard groups.count == 6, groups.allSatisfy({ group in UInt8(group) != nil }) else {
            return "an OBIS code is six groups 0…255 separated by dots (1.0.1.8.0.255), not '\(obis)'"
        }
        return nil
    }
}

extension ConfigurationDocument {
    /// Where each decoded element stood in the document as sent (elements that did not decode
    /// are missing from the arrays); empty for a document built in code.
    struct Positions: Hashable, Sendable {
        var regions: [Int] = [], lines: [Int] = [], templates: [Int] = [], schedules: [Int] = []
        var manufacturerProfiles: [Int] = [], meters: [Int] = []
    }
}

private struct Check {
    let document: ConfigurationDocument
    let unreadable: Set<String>
    let positions: ConfigurationDocument.Positions
    var problems: [ConfigurationProblem] = []
    var regionIDs: Set<String> = [], scheduleIDs: Set<String> = [], templateIDs: Set<String> = [], profileIDs: Set<String> = []
    var lineByID: [String: ConfigurationDocument.Line] = [:]
    var templateByID: [String: ConfigurationDocument.Template] = [:]

    init(document: ConfigurationDocument, unreadable: Set<String>) {
        self.document = document
        self.unreadable = unreadable
        self.positions = document.positions ?? ConfigurationDocument.Positions()
    }

    mutating func add(_ pointer: String, _ detail: String) {
        problems.append(ConfigurationProblem(pointer: pointer, detail: detail))
    }

    func path(_ kind: String, _ index: Int, _ positions: [Int], _ field: String? = nil) -> String {
        let position = index < positions.count ? positions[index] : index
        return "/\(kind)/\(position)" + (field.map { "/\($0)" } ?? "")
    }

    /// Checks the ids of one kind: well-formed, unique. Returns the set of ids.
    mutating func ids(_ kind: String, _ ids: [String], _ positions: [Int], pattern: (String) -> String?) -> Set<String> {
        var seen: [String: String] = [:]
        for (index, id) in ids.enumerated() {
            let pointer = path(kind, index, positions, "id")
            if let problem = pattern(id) { add(pointer, problem); continue }
            if let first = seen[id] { add(pointer, "duplicate id '\(id)' (also at \(first))") } else { seen[id] = pointer }
        }
        return Set(seen.keys)
    }

    static func identifier(_ id: String) -> String? {
        if id.isEmpty { return "an id must not be empty" }
        if id.utf8.count > 128 { return "an id is at most 128 bytes" }
        if id.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.value < 0x20 || $0 == "/" }) {
            return "an id has no spaces, control characters or '/' ('\(id)')"
        }
        return nil
    }

    mutating func regions() {
        regionIDs = ids("regions", document.regions.map(\.id), positions.regions) { id in
            let valid = !id.isEmpty && id.count <= 63 && id.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }
                && id.first != "-"
            return valid ? nil : "a region id is 1…63 of a-z, 0-9 and '-' (it names Kafka topics), not '\(id)'"
        }
        if document.regions.isEmpty && !document.meters.isEmpty { add("/regions", "meters need at least one region") }
    }

    mutating func schedules() {
        scheduleIDs = ids("schedules", document.schedules.map(\.id), positions.schedules, pattern: Self.identifier)
        for (index, schedule) in document.schedules.enumerated() {
            if TimeZone(identifier: schedule.timeZone) == nil {
                add(path("schedules", index, positions.schedules, "timeZone"), "unknown time zone '\(schedule.timeZone)' (an IANA name such as Europe/Berlin)")
            } else {
                do {
                    _ = try CronSchedule(schedule.cron, timeZoneIdentifier: schedule.timeZone)
                } catch {
                    add(path("schedules", index, positions.schedules, "cron"), "\(error)")
                }
            }
            if !(1...10_080).contains(schedule.windowMinutes) {
                add(path("schedules", index, positions.schedules, "windowMinutes"), "a collection window is 1…10080 minutes, not \(schedule.windowMinutes)")
            }
            if schedule.jitterSeconds < 0 || schedule.jitterSeconds >= schedule.windowMinutes * 60 {
                add(path("schedules", index, positions.schedules, "jitterSeconds"),
                    "the jitter must be 0 or more and shorter than the window (\(schedule.windowMinutes * 60) s), not \(schedule.jitterSeconds)")
            }
        }
    }

    mutating func templates() {
        templateIDs = ids("templates", document.templates.map(\.id), positions.templates, pattern: Self.identifier)
        for (index, template) in document.templates.enumerated() {
            templateByID[template.id] = templateByID[template.id] ?? template
            for (position, schedule) in template.schedules.enumerated() where !scheduleIDs.contains(schedule) && !unreadable.contains(schedule) {
                add(path("templates", index, positions.templates, "schedules/\(position)"), "unknown schedule '\(schedule)'")
            }
            if template.objects.isEmpty && template.profiles.isEmpty {
                add(path("templates", index, positions.templates), "a template reads at least one object or profile")
            }
            for (position, object) in template.objects.enumerated() {
                let pointer = path("templates", index, positions.templates, "objects/\(position)")
                if let problem = ConfigurationValidator.obisProblem(object.obis) { add(pointer + "/obis", problem) }
                if !(1...255).contains(object.classID) { add(pointer + "/classID", "a class id is 1…255, not \(object.classID)") }
                if !(1...127).contains(object.attribute) { add(pointer + "/attribute", "an attribute index is 1…127, not \(object.attribute)") }
            }
            for (position, profile) in template.profiles.enumerated() {
                let pointer = path("templates", index, positions.templates, "profiles/\(position)")
                if let problem = ConfigurationValidator.obisProblem(profile.obis) { add(pointer + "/obis", problem) }
                if profile.classID != 7 { add(pointer + "/classID", "a profile read is of class 7 (profile generic), not \(profile.classID)") }
                if profile.attribute != 2 { add(pointer + "/attribute", "a profile is read by its buffer, attribute 2, not \(profile.attribute)") }
                if !(profile.lookbackHours > 0 && profile.lookbackHours <= 24 * 92) {
                    add(pointer + "/lookbackHours", "the look-back is more than 0 and at most 2208 hours (92 days), not \(profile.lookbackHours)")
                }
            }
            if let sap = template.defaults.clientSAP, !(0...127).contains(sap) {
                add(path("templates", index, positions.templates, "defaults/clientSAP"), "a client SAP is 0…127, not \(sap)")
            }
        }
    }

    mutating func profiles(builtIn: Set<String>, inlineCheck: (String) -> String?) {
        profileIDs = ids("manufacturerProfiles", document.manufacturerProfiles.map(\.id), positions.manufacturerProfiles, pattern: Self.identifier)
        for (index, profile) in document.manufacturerProfiles.enumerated() {
            let pointer = path("manufacturerProfiles", index, positions.manufacturerProfiles, "profile")
            switch profile.profile {
            case .named(let name):
                if !builtIn.contains(name) { add(pointer, "unknown built-in profile '\(name)' (known: \(builtIn.sorted().joined(separator: ", ")))") }
            case .inline(let json):
                if let problem = inlineCheck(json) { add(pointer, problem) }
            }
        }
    }

    mutating func lines() {
        _ = ids("lines", document.lines.map(\.id), positions.lines, pattern: Self.identifier)
        for (index, line) in document.lines.enumerated() {
            lineByID[line.id] = lineByID[line.id] ?? line
            if !regionIDs.contains(line.region) && !unreadable.contains(line.region) {
                add(path("lines", index, positions.lines, "region"), "unknown region '\(line.region)'")
            }
            if line.maxSessions < 1 || line.maxSessions > 1_000 {
                add(path("lines", index, positions.lines, "maxSessions"), "a line allows 1…1000 sessions, not \(line.maxSessions)")
            } else if line.isMultiDrop && line.maxSessions > 1 {
                add(path("lines", index, positions.lines, "maxSessions"),
                    "a \(line.endpoint.kindName) line is one bus: it carries one session at a time, not \(line.maxSessions)")
            }
            if let timeouts = line.timeouts {
                for (name, value) in [("connectSeconds", timeouts.connectSeconds), ("stepSeconds", timeouts.stepSeconds)] {
                    if let value, !(value > 0 && value <= 600) {
                        add(path("lines", index, positions.lines, "timeouts/\(name)"), "a timeout is more than 0 and at most 600 seconds, not \(value)")
                    }
                }
            }
            if let retry = line.retry {
                if !(0...10).contains(retry.attempts) { add(path("lines", index, positions.lines, "retry/attempts"), "0…10 attempts, not \(retry.attempts)") }
                if !(retry.backoffSeconds >= 0 && retry.backoffSeconds <= 3600) {
                    add(path("lines", index, positions.lines, "retry/backoffSeconds"), "a back-off is 0…3600 seconds, not \(retry.backoffSeconds)")
                }
            }
            if let rate = line.segmentConnectionsPerSecond {
                if !(rate > 0 && rate <= 10_000) {
                    add(path("lines", index, positions.lines, "segmentConnectionsPerSecond"), "a connection rate is more than 0 and at most 10000 per second, not \(rate)")
                }
                if line.networkSegment == nil {
                    add(path("lines", index, positions.lines, "segmentConnectionsPerSecond"), "a connection rate needs the line's networkSegment")
                }
            }
        }
    }

    mutating func meters(builtIn: Set<String>) {
        _ = ids("meters", document.meters.map(\.id), positions.meters, pattern: Self.identifier)
        var hdlcOnLine: [String: [Int: String]] = [:]
        var deviceOnLine: [String: [String: String]] = [:]
        var metersOnLine: [String: [(pointer: String, protocol: MeterAccess.MeterProtocol)]] = [:]
        for (index, meter) in document.meters.enumerated() {
            let base = path("meters", index, positions.meters)
            let line = lineByID[meter.line]
            if line == nil && !unreadable.contains(meter.line) { add(base + "/line", "unknown line '\(meter.line)'") }
            let template = templateByID[meter.template]
            if template == nil && !templateIDs.contains(meter.template) && !unreadable.contains(meter.template) {
                add(base + "/template", "unknown template '\(meter.template)'")
            }
            let defaults = template?.defaults ?? ConfigurationDocument.MeterSettings()
            let settings = meter.settings.over(defaults)
            guard let meterProtocol = settings.protocol else {
                if template != nil { add(base + "/protocol", "no protocol: the meter and its template '\(meter.template)' name none") }
                continue
            }
            if let sap = meter.settings.clientSAP, !(0...127).contains(sap) { add(base + "/clientSAP", "a client SAP is 0…127, not \(sap)") }
            if let logical = settings.serverLogicalAddress, !(0...0x3FFF).contains(logical) {
                add(base + "/serverLogicalAddress", "a logical address is 0…16383, not \(logical)")
            }
            if let name = settings.manufacturerProfile, !builtIn.contains(name), !profileIDs.contains(name), !unreadable.contains(name) {
                add(base + "/manufacturerProfile", "unknown manufacturer profile '\(name)'")
            }
            if let line {
                if let problem = Self.protocolProblem(meterProtocol, on: line.endpoint) { add(base + "/protocol", problem) }
                metersOnLine[line.id, default: []].append((base, meterProtocol))
            }
            if let address = meter.hdlcPhysicalAddress {
                if !(0x10...0x3FFD).contains(address) {
                    add(base + "/hdlcPhysicalAddress", "an HDLC physical address is 16…16381, not \(address)")
                } else if let other = hdlcOnLine[meter.line]?[address] {
                    add(base + "/hdlcPhysicalAddress", "line '\(meter.line)' has HDLC address \(address) already (\(other))")
                } else {
                    hdlcOnLine[meter.line, default: [:]][address] = base
                }
            }
            if let device = meter.deviceAddress {
                if device.isEmpty || device.count > 32 || !device.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) {
                    add(base + "/deviceAddress", "an IEC 62056-21 device address is 1…32 letters and digits, not '\(device)'")
                } else if let other = deviceOnLine[meter.line]?[device] {
                    add(base + "/deviceAddress", "line '\(meter.line)' has device address '\(device)' already (\(other))")
                } else {
                    deviceOnLine[meter.line, default: [:]][device] = base
                }
            }
            secrets(meter, settings: settings, base: base)
        }
        // A line with several HDLC or IEC 62056-21 meters is a bus: addressed meters, one session.
        for (lineID, meters) in metersOnLine where meters.count > 1 {
            guard let line = lineByID[lineID] else { continue }
            let bus = meters.filter { $0.protocol != .dlmsWrapper }
            if !bus.isEmpty && line.maxSessions > 1, let position = document.lines.firstIndex(where: { $0.id == lineID }) {
                add(path("lines", position, positions.lines, "maxSessions"),
                    "line '\(lineID)' carries \(bus.count) addressed meters (a multi-drop bus): one session at a time, not \(line.maxSessions)")
            }
        }
        for (index, meter) in document.meters.enumerated() {
            guard let line = lineByID[meter.line], (metersOnLine[line.id]?.count ?? 0) > 1 else { continue }
            let meterProtocol = meter.settings.over(templateByID[meter.template]?.defaults ?? .init()).protocol
            if meterProtocol == .dlmsHDLC && meter.hdlcPhysicalAddress == nil {
                add(path("meters", index, positions.meters, "hdlcPhysicalAddress"), "line '\(line.id)' has several meters: each HDLC meter needs its physical address")
            }
            if meterProtocol == .iec62056_21 && meter.deviceAddress == nil {
                add(path("meters", index, positions.meters, "deviceAddress"), "line '\(line.id)' has several meters: each IEC 62056-21 meter needs its device address")
            }
        }
    }

    /// What the authentication and security policy ask of the meter's keys.
    mutating func secrets(_ meter: ConfigurationDocument.Meter, settings: ConfigurationDocument.MeterSettings, base: String) {
        let keys = meter.keys
        let authentication = settings.authentication ?? .none
        let security = settings.security ?? .none
        switch authentication {
        case .none: break
        case .lls, .hlsMD5, .hlsSHA1, .hlsSHA256:
            if keys?.password == nil { add(base + "/keys/password", "\(authentication.rawValue) authentication needs the meter's password") }
        case .hlsGMAC:
            if keys?.blockCipherKey == nil { add(base + "/keys/blockCipherKey", "hls-gmac needs the block cipher key") }
            if keys?.authenticationKey == nil { add(base + "/keys/authenticationKey", "hls-gmac needs the authentication key") }
            if meter.systemTitle == nil { add(base + "/systemTitle", "hls-gmac needs the client's system title") }
        }
        if security != .none {
            if keys?.blockCipherKey == nil && authentication != .hlsGMAC { add(base + "/keys/blockCipherKey", "security '\(security.rawValue)' needs the block cipher key") }
            if keys?.authenticationKey == nil && authentication != .hlsGMAC { add(base + "/keys/authenticationKey", "security '\(security.rawValue)' needs the authentication key") }
            if meter.systemTitle == nil && authentication != .hlsGMAC { add(base + "/systemTitle", "security '\(security.rawValue)' needs the client's system title") }
        }
        for (field, title) in [("systemTitle", meter.systemTitle), ("serverSystemTitle", meter.serverSystemTitle)] {
            if let title, title.count != 16 || !title.allSatisfy(\.isHexDigit) {
                add(base + "/\(field)", "a system title is 16 hex digits (8 bytes), not '\(title)'")
            }
        }
        for (name, secret) in keys?.all ?? [] {
            switch secret {
            case .plain(let text):
                if name == "password" {
                    if text.isEmpty || text.utf8.count > 64 { add(base + "/keys/password", "a password is 1…64 bytes (value not shown)") }
                } else if text.count != 32 || !text.allSatisfy(\.isHexDigit) {
                    add(base + "/keys/\(name)", "a suite 0 key is 32 hex digits (16 bytes) (value not shown)")
                }
            case .redacted:
                add(base + "/keys/\(name)", "a redacted secret keeps the secret of the version this one is based on, and meter '\(meter.id)' has none there; send the secret")
            case .sealed:
                break
            }
        }
    }

    /// The transports each protocol runs over.
    static func protocolProblem(_ meterProtocol: MeterAccess.MeterProtocol, on endpoint: MeterEndpoint) -> String? {
        switch (meterProtocol, endpoint) {
        case (.dlmsWrapper, .tcp), (.dlmsWrapper, .udp): nil
        case (.dlmsWrapper, _): "the wrapper (IEC 62056-47) runs over TCP or UDP, not a \(endpoint.kindName) line"
        case (.dlmsHDLC, .udp): "HDLC over UDP goes through a serial gateway: use a gateway-udp line"
        case (.dlmsHDLC, _): nil
        case (.iec62056_21, .udp): "IEC 62056-21 over UDP goes through a serial gateway: use a gateway-udp line"
        case (.iec62056_21, _): nil
        }
    }

}

extension ConfigurationDocument.MeterSettings {
    /// These settings where set, `defaults` elsewhere.
    public func over(_ defaults: Self) -> Self {
        Self(protocol: self.protocol ?? defaults.protocol, clientSAP: clientSAP ?? defaults.clientSAP,
             serverLogicalAddress: serverLogicalAddress ?? defaults.serverLogicalAddress,
             authentication: authentication ?? defaults.authentication, security: security ?? defaults.security,
             manufacturerProfile: manufacturerProfile ?? defaults.manufacturerProfile)
    }
}
