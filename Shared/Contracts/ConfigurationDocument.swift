import Foundation

/// The head-end's configuration as the IMS sends it (DESIGN.md §5), `"schema":
/// "hes-configuration/v1"`: regions, their lines, templates of "standard customers", schedules,
/// manufacturer profiles and the meters. A delivery point is one meter entry that names its
/// line and template; a template change changes all its meters.
///
/// Meters and lines are described with the collector's own vocabulary (``MeterEndpoint``,
/// ``MeterAccess``): the scheduler copies a configured meter into a ``CollectionTask``.
///
/// Secrets (``ConfiguredSecret``) arrive in the clear (over TLS) and are sealed by the
/// config-service before anything is stored; the API never returns them.
public struct ConfigurationDocument: Codable, Sendable, Hashable {
    public static let schemaName = "hes-configuration"
    public static let currentSchema = "hes-configuration/v1"

    public var schema: String
    public var regions: [Region]
    public var lines: [Line]
    public var templates: [Template]
    public var schedules: [Schedule]
    public var manufacturerProfiles: [NamedManufacturerProfile]
    public var meters: [Meter]
    /// Where decoded elements stood in the document as sent, while it is validated (not encoded).
    var positions: Positions?

    public init(regions: [Region] = [], lines: [Line] = [], templates: [Template] = [], schedules: [Schedule] = [],
                manufacturerProfiles: [NamedManufacturerProfile] = [], meters: [Meter] = []) {
        self.schema = Self.currentSchema
        self.regions = regions
        self.lines = lines
        self.templates = templates
        self.schedules = schedules
        self.manufacturerProfiles = manufacturerProfiles
        self.meters = meters
    }

    private enum CodingKeys: String, CodingKey { case schema, regions, lines, templates, schedules, manufacturerProfiles, meters }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        schema = try c.decode(String.self, forKey: .schema)
        regions = try c.decodeIfPresent([Region].self, forKey: .regions) ?? []
        lines = try c.decodeIfPresent([Line].self, forKey: .lines) ?? []
        templates = try c.decodeIfPresent([Template].self, forKey: .templates) ?? []
        schedules = try c.decodeIfPresent([Schedule].self, forKey: .schedules) ?? []
        manufacturerProfiles = try c.decodeIfPresent([NamedManufacturerProfile].self, forKey: .manufacturerProfiles) ?? []
        meters = try c.decodeIfPresent([Meter].self, forKey: .meters) ?? []
    }

    /// A region: its own task topics (`hes.tasks.<id>`) and collector pool.
    public struct Region: Codable, Sendable, Hashable {
        /// Lower-case letters, digits and `-` (it becomes a Kafka topic name).
        public var id: String
        public var name: String?

        public init(id: String, name: String? = nil) {
            self.id = id
            self.name = name
        }
    }

    /// A physical line: a TCP or UDP endpoint, a serial port or RS-485 bus, a serial gateway, an
    /// optical head. All meters of a line share its endpoint; a multi-drop line (serial,
    /// gateway-udp, optical, or several HDLC meters behind one address) has one session at a time.
    public struct Line: Codable, Sendable, Hashable {
        public var id: String
        public var region: String
        public var endpoint: MeterEndpoint
        /// Sessions open at once on this line. Default 1; more only where each meter is its own
        /// DLMS peer (wrapper meters on an IP line).
        public var maxSessions: Int
        public var timeouts: MeterAccess.Timeouts?
        public var retry: RetryPolicy?
        /// The network segment (GPRS cell, APN, gateway) its connections go through.
        public var networkSegment: String?
        /// New connections per second allowed on that segment (the smallest of its lines' values counts).
        public var segmentConnectionsPerSecond: Double?

        public init(id: String, region: String, endpoint: MeterEndpoint, maxSessions: Int = 1, timeouts: MeterAccess.Timeouts? = nil,
                    retry: RetryPolicy? = nil, networkSegment: String? = nil, segmentConnectionsPerSecond: Double? = nil) {
            self.id = id
            self.region = region
            self.endpoint = endpoint
            self.maxSessions = maxSessions
            self.timeouts = timeouts
            self.retry = retry
            self.networkSegment = networkSegment
            self.segmentConnectionsPerSecond = segmentConnectionsPerSecond
        }

        private enum CodingKeys: String, CodingKey { case id, region, endpoint, maxSessions, timeouts, retry, networkSegment, segmentConnectionsPerSecond }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            id = try c.decode(String.self, forKey: .id)
            region = try c.decode(String.self, forKey: .region)
            endpoint = try c.decode(MeterEndpoint.self, forKey: .endpoint)
            maxSessions = try c.decodeIfPresent(Int.self, forKey: .maxSessions) ?? 1
            timeouts = try c.decodeIfPresent(MeterAccess.Timeouts.self, forKey: .timeouts)
            retry = try c.decodeIfPresent(RetryPolicy.self, forKey: .retry)
            networkSegment = try c.decodeIfPresent(String.self, forKey: .networkSegment)
            segmentConnectionsPerSecond = try c.decodeIfPresent(Double.self, forKey: .segmentConnectionsPerSecond)
        }

        /// Serial buses, serial gateways and optical heads carry one session at a time.
        public var isMultiDrop: Bool {
            switch endpoint {
            case .serial, .gatewayUDP, .optical: true
            case .tcp, .udp: false
            }
        }
    }

    /// How often a failed task of a line is tried again within its window.
    public struct RetryPolicy: Codable, Sendable, Hashable {
        public var attempts: Int
        public var backoffSeconds: Double

        public init(attempts: Int, backoffSeconds: Double) {
            self.attempts = attempts
            self.backoffSeconds = backoffSeconds
        }
    }

    /// A "standard customer": what to read, on which schedules, with which protocol defaults.
    public struct Template: Codable, Sendable, Hashable {
        public var id: String
        /// Schedule ids.
        public var schedules: [String]
        /// Registers, clock, … read in every scheduled session.
        public var objects: [ObjectReference]
        /// Profiles (class 7) read by capture-time range: from the last confirmed capture (at most
        /// `lookbackHours` back) to the slot.
        public var profiles: [ProfileRead]
        /// Protocol settings of its meters where a meter does not say otherwise.
        public var defaults: MeterSettings

        public init(id: String, schedules: [String], objects: [ObjectReference] = [], profiles: [ProfileRead] = [], defaults: MeterSettings = MeterSettings()) {
            self.id = id
            self.schedules = schedules
            self.objects = objects
            self.profiles = profiles
            self.defaults = defaults
        }

        private enum CodingKeys: String, CodingKey { case id, schedules, objects, profiles, defaults }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            id = try c.decode(String.self, forKey: .id)
            schedules = try c.decodeIfPresent([String].self, forKey: .schedules) ?? []
            objects = try c.decodeIfPresent([ObjectReference].self, forKey: .objects) ?? []
            profiles = try c.decodeIfPresent([ProfileRead].self, forKey: .profiles) ?? []
            defaults = try c.decodeIfPresent(MeterSettings.self, forKey: .defaults) ?? MeterSettings()
        }
    }

    /// A profile generic read by range.
    public struct ProfileRead: Codable, Sendable, Hashable {
        public var obis: String
        /// Default 7 (profile generic); 2 is the buffer.
        public var classID: Int
        public var attribute: Int
        /// The oldest capture time asked for, counted back from the slot. Default 24.
        public var lookbackHours: Double

        public init(obis: String, classID: Int = 7, attribute: Int = 2, lookbackHours: Double = 24) {
            self.obis = obis
            self.classID = classID
            self.attribute = attribute
            self.lookbackHours = lookbackHours
        }

        private enum CodingKeys: String, CodingKey { case obis, classID, attribute, lookbackHours }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            obis = try c.decode(String.self, forKey: .obis)
            classID = try c.decodeIfPresent(Int.self, forKey: .classID) ?? 7
            attribute = try c.decodeIfPresent(Int.self, forKey: .attribute) ?? 2
            lookbackHours = try c.decodeIfPresent(Double.self, forKey: .lookbackHours) ?? 24
        }

        public var reference: ObjectReference { ObjectReference(classID: classID, obis: obis, attribute: attribute) }
    }

    /// When a template's meters are read: a cron expression (minute hour day month weekday) in a
    /// time zone; each meter's start is spread deterministically over `jitterSeconds`, and a task
    /// not started within `windowMinutes` of its slot expires.
    public struct Schedule: Codable, Sendable, Hashable {
        public var id: String
        public var cron: String
        /// An IANA zone (`Europe/Berlin`). Default UTC.
        public var timeZone: String
        /// Default 60.
        public var windowMinutes: Int
        /// Default 0.
        public var jitterSeconds: Int

        public init(id: String, cron: String, timeZone: String = "UTC", windowMinutes: Int = 60, jitterSeconds: Int = 0) {
            self.id = id
            self.cron = cron
            self.timeZone = timeZone
            self.windowMinutes = windowMinutes
            self.jitterSeconds = jitterSeconds
        }

        private enum CodingKeys: String, CodingKey { case id, cron, timeZone, windowMinutes, jitterSeconds }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            id = try c.decode(String.self, forKey: .id)
            cron = try c.decode(String.self, forKey: .cron)
            timeZone = try c.decodeIfPresent(String.self, forKey: .timeZone) ?? "UTC"
            windowMinutes = try c.decodeIfPresent(Int.self, forKey: .windowMinutes) ?? 60
            jitterSeconds = try c.decodeIfPresent(Int.self, forKey: .jitterSeconds) ?? 0
        }
    }

    /// A meter family's quirks under a name meters can select (beside the built-in names).
    public struct NamedManufacturerProfile: Codable, Sendable, Hashable {
        public var id: String
        /// The profile object, as `hesctl read --meter-profile FILE` reads it.
        public var profile: ManufacturerProfileReference

        public init(id: String, profile: ManufacturerProfileReference) {
            self.id = id
            self.profile = profile
        }
    }

    /// Protocol settings: a template's defaults, a meter's own values over them.
    public struct MeterSettings: Codable, Sendable, Hashable {
        public var `protocol`: MeterAccess.MeterProtocol?
        public var clientSAP: Int?
        public var serverLogicalAddress: Int?
        public var authentication: MeterAccess.Authentication?
        public var security: MeterAccess.SecurityPolicy?
        /// A built-in profile name or one of the document's `manufacturerProfiles`.
        public var manufacturerProfile: String?

        public init(protocol: MeterAccess.MeterProtocol? = nil, clientSAP: Int? = nil, serverLogicalAddress: Int? = nil,
                    authentication: MeterAccess.Authentication? = nil, security: MeterAccess.SecurityPolicy? = nil, manufacturerProfile: String? = nil) {
            self.protocol = `protocol`
            self.clientSAP = clientSAP
            self.serverLogicalAddress = serverLogicalAddress
            self.authentication = authentication
            self.security = security
            self.manufacturerProfile = manufacturerProfile
        }
    }

    /// One delivery point's meter.
    public struct Meter: Codable, Sendable, Hashable {
        public var id: String
        public var serialNumber: String?
        public var line: String
        public var template: String
        /// Over the template's defaults.
        public var settings: MeterSettings
        /// On a multi-drop HDLC line: the meter's physical address (IEC 62056-46 §6.4.2.2).
        public var hdlcPhysicalAddress: Int?
        /// IEC 62056-21 on a multi-drop line: the sign-on device address.
        public var deviceAddress: String?
        /// The client's system title (16 hex digits), for ciphering and HLS-GMAC.
        public var systemTitle: String?
        /// The meter's own system title (16 hex digits): another meter answering is refused.
        public var serverSystemTitle: String?
        public var keys: Keys?

        public init(id: String, serialNumber: String? = nil, line: String, template: String, settings: MeterSettings = MeterSettings(),
                    hdlcPhysicalAddress: Int? = nil, deviceAddress: String? = nil, systemTitle: String? = nil,
                    serverSystemTitle: String? = nil, keys: Keys? = nil) {
            self.id = id
            self.serialNumber = serialNumber
            self.line = line
            self.template = template
            self.settings = settings
            self.hdlcPhysicalAddress = hdlcPhysicalAddress
            self.deviceAddress = deviceAddress
            self.systemTitle = systemTitle
            self.serverSystemTitle = serverSystemTitle
            self.keys = keys
        }

        private enum CodingKeys: String, CodingKey {
            case id, serialNumber, line, template, hdlcPhysicalAddress, deviceAddress, systemTitle, serverSystemTitle, keys
            case `protocol`, clientSAP, serverLogicalAddress, authentication, security, manufacturerProfile
        }

        // The settings are written flat on the meter (`"authentication": "hls-gmac"`).
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            id = try c.decode(String.self, forKey: .id)
            serialNumber = try c.decodeIfPresent(String.self, forKey: .serialNumber)
            line = try c.decode(String.self, forKey: .line)
            template = try c.decode(String.self, forKey: .template)
            hdlcPhysicalAddress = try c.decodeIfPresent(Int.self, forKey: .hdlcPhysicalAddress)
            deviceAddress = try c.decodeIfPresent(String.self, forKey: .deviceAddress)
            systemTitle = try c.decodeIfPresent(String.self, forKey: .systemTitle)
            serverSystemTitle = try c.decodeIfPresent(String.self, forKey: .serverSystemTitle)
            keys = try c.decodeIfPresent(Keys.self, forKey: .keys)
            settings = MeterSettings(
                protocol: try c.decodeIfPresent(MeterAccess.MeterProtocol.self, forKey: .protocol),
                clientSAP: try c.decodeIfPresent(Int.self, forKey: .clientSAP),
                serverLogicalAddress: try c.decodeIfPresent(Int.self, forKey: .serverLogicalAddress),
                authentication: try c.decodeIfPresent(MeterAccess.Authentication.self, forKey: .authentication),
                security: try c.decodeIfPresent(MeterAccess.SecurityPolicy.self, forKey: .security),
                manufacturerProfile: try c.decodeIfPresent(String.self, forKey: .manufacturerProfile))
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(id, forKey: .id)
            try c.encodeIfPresent(serialNumber, forKey: .serialNumber)
            try c.encode(line, forKey: .line)
            try c.encode(template, forKey: .template)
            try c.encodeIfPresent(hdlcPhysicalAddress, forKey: .hdlcPhysicalAddress)
            try c.encodeIfPresent(deviceAddress, forKey: .deviceAddress)
            try c.encodeIfPresent(systemTitle, forKey: .systemTitle)
            try c.encodeIfPresent(serverSystemTitle, forKey: .serverSystemTitle)
            try c.encodeIfPresent(keys, forKey: .keys)
            try c.encodeIfPresent(settings.protocol, forKey: .protocol)
            try c.encodeIfPresent(settings.clientSAP, forKey: .clientSAP)
            try c.encodeIfPresent(settings.serverLogicalAddress, forKey: .serverLogicalAddress)
            try c.encodeIfPresent(settings.authentication, forKey: .authentication)
            try c.encodeIfPresent(settings.security, forKey: .security)
            try c.encodeIfPresent(settings.manufacturerProfile, forKey: .manufacturerProfile)
        }

        /// A meter's secrets: the LLS password or HLS secret (text), the suite 0 keys (32 hex digits).
        public struct Keys: Codable, Sendable, Hashable {
            public var password: ConfiguredSecret?
            public var blockCipherKey: ConfiguredSecret?
            public var authenticationKey: ConfiguredSecret?

            public init(password: ConfiguredSecret? = nil, blockCipherKey: ConfiguredSecret? = nil, authenticationKey: ConfiguredSecret? = nil) {
                self.password = password
                self.blockCipherKey = blockCipherKey
                self.authenticationKey = authenticationKey
            }

            /// Each present secret with its name, in a fixed order.
            public var all: [(name: String, secret: ConfiguredSecret)] {
                [("password", password), ("blockCipherKey", blockCipherKey), ("authenticationKey", authenticationKey)]
                    .compactMap { name, secret in secret.map { (name, $0) } }
            }

            public func mapSecrets(_ transform: (String, ConfiguredSecret) throws -> ConfiguredSecret) rethrows -> Keys {
                Keys(password: try password.map { try transform("password", $0) },
                     blockCipherKey: try blockCipherKey.map { try transform("blockCipherKey", $0) },
                     authenticationKey: try authenticationKey.map { try transform("authenticationKey", $0) })
            }
        }
    }
}

/// A secret of the configuration: in the clear as the IMS sends it (a JSON string), sealed as
/// the config-service stores it (`{"masterKeyID": …, "sealed": "<base64 AES-GCM box>"}`), or
/// redacted as the API shows it (`{"redacted": true}`; sent back, it keeps the secret the meter
/// has in the version it is based on).
public enum ConfiguredSecret: Codable, Sendable, Hashable, CustomStringConvertible {
    /// The bytes of a secret given in the clear under `name`: keys are hex, the password is its
    /// UTF-8 bytes (text that is not hex is taken as UTF-8 too; the validator refuses such keys).
    public static func bytes(ofPlain text: String, name: String) -> [UInt8] {
        if name == "password" { return Array(text.utf8) }
        var bytes: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex, let next = text.index(index, offsetBy: 2, limitedBy: text.endIndex) {
            guard let byte = UInt8(text[index..<next], radix: 16) else { return Array(text.utf8) }
            bytes.append(byte)
            index = next
        }
        return bytes
    }

    case plain(String)
    case sealed(masterKeyID: String, box: String)
    case redacted

    private enum CodingKeys: String, CodingKey { case masterKeyID, sealed, redacted }

    public init(from decoder: any Decoder) throws {
        if let text = try? decoder.singleValueContainer().decode(String.self) {
            self = .plain(text)
            return
        }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if try c.decodeIfPresent(Bool.self, forKey: .redacted) == true {
            self = .redacted
            return
        }
        self = .sealed(masterKeyID: try c.decode(String.self, forKey: .masterKeyID), box: try c.decode(String.self, forKey: .sealed))
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .plain(let text):
            var c = encoder.singleValueContainer()
            try c.encode(text)
        case .sealed(let masterKeyID, let box):
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(masterKeyID, forKey: .masterKeyID)
            try c.encode(box, forKey: .sealed)
        case .redacted:
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(true, forKey: .redacted)
        }
    }

    /// Never the secret itself.
    public var description: String {
        switch self {
        case .plain: "ConfiguredSecret(plain, redacted)"
        case .sealed(let id, _): "ConfiguredSecret(sealed with \(id))"
        case .redacted: "ConfiguredSecret(redacted)"
        }
    }
}

extension ConfigurationDocument {
    /// The same document with every secret shown as `{"redacted": true}`: what the API returns.
    public func redacted() -> ConfigurationDocument {
        var copy = self
        for index in copy.meters.indices where copy.meters[index].keys != nil {
            copy.meters[index].keys = copy.meters[index].keys?.mapSecrets { _, _ in .redacted }
        }
        return copy
    }
}

extension MeterEndpoint {
    /// `tcp`, `udp`, `gateway-udp`, `serial` or `optical`: the line kinds of the configuration.
    public var kindName: String {
        switch self {
        case .tcp: "tcp"
        case .udp: "udp"
        case .gatewayUDP: "gateway-udp"
        case .serial: "serial"
        case .optical: "optical"
        }
    }

    /// `host:port`, or the device path of a serial line or optical head.
    public var address: String {
        switch self {
        case .tcp(let host, let port), .udp(let host, let port), .gatewayUDP(let host, let port): "\(host):\(port)"
        case .serial(let device, _), .optical(let device, _): device
        }
    }
}
