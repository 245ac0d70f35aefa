import Foundation

/// Everything a collector needs to open a session with one meter without asking anyone: where
/// it is, how it frames and addresses, how it authenticates, its family's quirks and its keys
/// (wrapped: nothing secret is ever in the clear on Kafka or in a log).
///
/// The same vocabulary as the configuration document's meters and lines (DESIGN.md §5), so the
/// scheduler copies a configured meter into a task field by field.
public struct MeterAccess: Codable, Sendable, Hashable {
    /// How DLMS APDUs (or IEC 62056-21 messages) travel.
    public enum MeterProtocol: String, Codable, Sendable, Hashable, CaseIterable {
        /// IEC 62056-47 wrapper over TCP or UDP.
        case dlmsWrapper = "dlms-wrapper"
        /// IEC 62056-46 HDLC (TCP, serial lines, gateways, optical heads after mode E).
        case dlmsHDLC = "dlms-hdlc"
        /// IEC 62056-21 mode C: readout and programming mode.
        case iec62056_21 = "iec62056-21"
    }

    /// How the client authenticates (Green Book 9.2.7.3).
    public enum Authentication: String, Codable, Sendable, Hashable, CaseIterable {
        case none
        /// Low level security: the password (`keys.password`).
        case lls
        case hlsMD5 = "hls-md5"
        case hlsSHA1 = "hls-sha1"
        /// HLS mechanism 5 with the meter's suite 0 keys.
        case hlsGMAC = "hls-gmac"
        case hlsSHA256 = "hls-sha256"
    }

    /// Which service APDUs are ciphered (security suite 0).
    public enum SecurityPolicy: String, Codable, Sendable, Hashable, CaseIterable {
        case none, authenticated, encrypted, both
    }

    public var endpoint: MeterEndpoint
    public var `protocol`: MeterProtocol
    /// The client SAP: 16 public client, 17 reading client, 1 management client. Default: 16.
    public var clientSAP: Int
    /// The server's logical device. Default: 1 (the management logical device).
    public var serverLogicalAddress: Int
    /// The meter's HDLC physical address on a multi-drop line (or `nil` for none).
    public var hdlcPhysicalAddress: Int?
    /// IEC 62056-21: the device address of the sign-on (`/?12345678!`) on a multi-drop line.
    public var deviceAddress: String?
    /// Default: none.
    public var authentication: Authentication
    /// Default: none (nothing ciphered).
    public var security: SecurityPolicy
    /// The client's system title, 16 hex digits; needed for ciphering and HLS-GMAC.
    public var systemTitle: String?
    /// The meter's expected system title (16 hex digits): another meter answering is refused.
    public var serverSystemTitle: String?
    /// The meter family's quirks: a built-in name (`standard`, `emh`, …) or a profile object.
    public var manufacturerProfile: ManufacturerProfileReference
    /// The meter's keys and secrets, wrapped with the collectors' master key.
    public var keys: Keys?
    /// Per-step and connect deadlines of this meter (a slow GPRS modem). Default: the collector's.
    public var timeouts: Timeouts?
    /// The network segment its connections go through (a GPRS cell or APN): collectors pace
    /// new connections per segment (`--segment-connection-rate`). Default: none, not paced.
    public var networkSegment: String?

    /// Wrapped secrets of one meter. Each is `{"masterKeyID": "…", "wrapped": "<hex>"}` (AES key
    /// wrap, IETF RFC 3394; secrets of other lengths than keys are padded first, see
    /// `WrappedDLMSSecret`).
    public struct Keys: Codable, Sendable, Hashable {
        /// The LLS password or the HLS secret.
        public var password: WrappedSecret?
        public var blockCipherKey: WrappedSecret?
        public var authenticationKey: WrappedSecret?
        public var dedicatedKey: WrappedSecret?

        public init(password: WrappedSecret? = nil, blockCipherKey: WrappedSecret? = nil,
                    authenticationKey: WrappedSecret? = nil, dedicatedKey: WrappedSecret? = nil) {
            self.password = password
            self.blockCipherKey = blockCipherKey
            self.authenticationKey = authenticationKey
            self.dedicatedKey = dedicatedKey
        }
    }

    /// Deadlines in seconds.
    public struct Timeouts: Codable, Sendable, Hashable {
        public var connectSeconds: Double?
        public var stepSeconds: Double?

        public init(connectSeconds: Double? = nil, stepSeconds: Double? = nil) {
            self.connectSeconds = connectSeconds
            self.stepSeconds = stepSeconds
        }
    }

    public init(
        endpoint: MeterEndpoint, protocol: MeterProtocol, clientSAP: Int = 16, serverLogicalAddress: Int = 1,
        hdlcPhysicalAddress: Int? = nil, deviceAddress: String? = nil, authentication: Authentication = .none,
        security: SecurityPolicy = .none, systemTitle: String? = nil, serverSystemTitle: String? = nil,
        manufacturerProfile: ManufacturerProfileReference = .named("standard"), keys: Keys? = nil, timeouts: Timeouts? = nil,
        networkSegment: String? = nil
    ) {
        self.networkSegment = networkSegment
        self.endpoint = endpoint
        self.protocol = `protocol`
        self.clientSAP = clientSAP
        self.serverLogicalAddress = serverLogicalAddress
        self.hdlcPhysicalAddress = hdlcPhysicalAddress
        self.deviceAddress = deviceAddress
        self.authentication = authentication
        self.security = security
        self.systemTitle = systemTitle
        self.serverSystemTitle = serverSystemTitle
        self.manufacturerProfile = manufacturerProfile
        self.keys = keys
        self.timeouts = timeouts
    }

    private enum CodingKeys: String, CodingKey {
        case endpoint, `protocol`, clientSAP, serverLogicalAddress, hdlcPhysicalAddress, deviceAddress, authentication
        case security, systemTitle, serverSystemTitle, manufacturerProfile, keys, timeouts, networkSegment
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        endpoint = try c.decode(MeterEndpoint.self, forKey: .endpoint)
        `protocol` = try c.decode(MeterProtocol.self, forKey: .protocol)
        clientSAP = try c.decodeIfPresent(Int.self, forKey: .clientSAP) ?? 16
        serverLogicalAddress = try c.decodeIfPresent(Int.self, forKey: .serverLogicalAddress) ?? 1
        hdlcPhysicalAddress = try c.decodeIfPresent(Int.self, forKey: .hdlcPhysicalAddress)
        deviceAddress = try c.decodeIfPresent(String.self, forKey: .deviceAddress)
        authentication = try c.decodeIfPresent(Authentication.self, forKey: .authentication) ?? .none
        security = try c.decodeIfPresent(SecurityPolicy.self, forKey: .security) ?? .none
        systemTitle = try c.decodeIfPresent(String.self, forKey: .systemTitle)
        serverSystemTitle = try c.decodeIfPresent(String.self, forKey: .serverSystemTitle)
        manufacturerProfile = try c.decodeIfPresent(ManufacturerProfileReference.self, forKey: .manufacturerProfile) ?? .named("standard")
        keys = try c.decodeIfPresent(Keys.self, forKey: .keys)
        timeouts = try c.decodeIfPresent(Timeouts.self, forKey: .timeouts)
        networkSegment = try c.decodeIfPresent(String.self, forKey: .networkSegment)
        guard (0...127).contains(clientSAP) else {
            throw DecodingError.dataCorruptedError(forKey: .clientSAP, in: c, debugDescription: "a client SAP is 0…127, not \(clientSAP)")
        }
        guard (0...0x3FFF).contains(serverLogicalAddress) else {
            throw DecodingError.dataCorruptedError(forKey: .serverLogicalAddress, in: c, debugDescription: "a logical address is 0…16383")
        }
        if let hdlcPhysicalAddress, !(0...0x3FFF).contains(hdlcPhysicalAddress) {
            throw DecodingError.dataCorruptedError(forKey: .hdlcPhysicalAddress, in: c, debugDescription: "a physical address is 0…16383")
        }
    }
}

/// Where a meter is reached. JSON: `{"kind": "tcp", "host": "10.0.0.7", "port": 4059}`,
/// `{"kind": "serial", "device": "/dev/ttyUSB0", "baudRate": 9600}`,
/// `{"kind": "optical", "device": "/dev/ttyUSB1", "maximumBaudRate": 9600}`.
public enum MeterEndpoint: Codable, Sendable, Hashable, CustomStringConvertible {
    case tcp(host: String, port: Int)
    case udp(host: String, port: Int)
    /// A serial server in UDP mode (MOXA-like): raw serial bytes in datagrams.
    case gatewayUDP(host: String, port: Int)
    /// A serial line (RS-485 multi-drop bus, RS-232), 8N1 at `baudRate`.
    case serial(device: String, baudRate: Int)
    /// An optical head (IEC 62056-21): sign-on at 300 Bd, mode E to HDLC up to `maximumBaudRate`.
    case optical(device: String, maximumBaudRate: Int)

    public var description: String {
        switch self {
        case .tcp(let host, let port): "tcp://\(host):\(port)"
        case .udp(let host, let port): "udp://\(host):\(port)"
        case .gatewayUDP(let host, let port): "gateway-udp://\(host):\(port)"
        case .serial(let device, let baudRate): "serial://\(device)@\(baudRate)"
        case .optical(let device, let baudRate): "optical://\(device)@\(baudRate)"
        }
    }

    private enum CodingKeys: String, CodingKey { case kind, host, port, device, baudRate, maximumBaudRate }
    private enum Kind: String, Codable { case tcp, udp, gatewayUDP = "gateway-udp", serial, optical }

    static let baudRates: Set<Int> = [300, 600, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200]

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func port() throws -> Int {
            let port = try c.decode(Int.self, forKey: .port)
            guard (1...65535).contains(port) else {
                throw DecodingError.dataCorruptedError(forKey: .port, in: c, debugDescription: "a port is 1…65535, not \(port)")
            }
            return port
        }
        func host() throws -> String {
            let host = try c.decode(String.self, forKey: .host)
            guard !host.isEmpty, !host.contains(where: \.isWhitespace) else {
                throw DecodingError.dataCorruptedError(forKey: .host, in: c, debugDescription: "'\(host)' is not a host name or address")
            }
            return host
        }
        func rate(_ key: CodingKeys, default value: Int) throws -> Int {
            let rate = try c.decodeIfPresent(Int.self, forKey: key) ?? value
            guard Self.baudRates.contains(rate) else {
                throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "\(rate) is not a standard baud rate")
            }
            return rate
        }
        switch try c.decode(Kind.self, forKey: .kind) {
        case .tcp: self = .tcp(host: try host(), port: try port())
        case .udp: self = .udp(host: try host(), port: try port())
        case .gatewayUDP: self = .gatewayUDP(host: try host(), port: try port())
        case .serial: self = .serial(device: try c.decode(String.self, forKey: .device), baudRate: try rate(.baudRate, default: 9600))
        case .optical: self = .optical(device: try c.decode(String.self, forKey: .device), maximumBaudRate: try rate(.maximumBaudRate, default: 9600))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .tcp(let host, let port):
            try c.encode(Kind.tcp, forKey: .kind); try c.encode(host, forKey: .host); try c.encode(port, forKey: .port)
        case .udp(let host, let port):
            try c.encode(Kind.udp, forKey: .kind); try c.encode(host, forKey: .host); try c.encode(port, forKey: .port)
        case .gatewayUDP(let host, let port):
            try c.encode(Kind.gatewayUDP, forKey: .kind); try c.encode(host, forKey: .host); try c.encode(port, forKey: .port)
        case .serial(let device, let baudRate):
            try c.encode(Kind.serial, forKey: .kind); try c.encode(device, forKey: .device); try c.encode(baudRate, forKey: .baudRate)
        case .optical(let device, let baudRate):
            try c.encode(Kind.optical, forKey: .kind); try c.encode(device, forKey: .device); try c.encode(baudRate, forKey: .maximumBaudRate)
        }
    }
}

/// A manufacturer profile by built-in name (`"emh"`) or as an inline object, the JSON that
/// `hesctl read --meter-profile FILE` reads. The collector resolves and validates it.
public enum ManufacturerProfileReference: Codable, Sendable, Hashable {
    case named(String)
    /// The profile object's JSON text, canonical (sorted keys).
    case inline(String)

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let name = try? container.decode(String.self) {
            self = .named(name)
            return
        }
        let object = try container.decode(JSONObject.self)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        self = .inline(String(decoding: try encoder.encode(object), as: UTF8.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .named(let name): try container.encode(name)
        case .inline(let json): try container.encode(try JSONDecoder().decode(JSONObject.self, from: Data(json.utf8)))
        }
    }
}

/// A secret wrapped with a master key, as `WrappedDLMSKey` writes it:
/// `{"masterKeyID": "m1", "wrapped": "<hex>"}`. The hex is ciphertext, safe to log.
public struct WrappedSecret: Codable, Sendable, Hashable, CustomStringConvertible {
    public var masterKeyID: String
    /// Hexadecimal RFC 3394 output (24 bytes or more, a multiple of 8).
    public var wrapped: String

    public init(masterKeyID: String, wrapped: String) {
        self.masterKeyID = masterKeyID
        self.wrapped = wrapped
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        masterKeyID = try c.decode(String.self, forKey: .masterKeyID)
        wrapped = try c.decode(String.self, forKey: .wrapped)
        let digits = wrapped.count
        guard digits >= 48, digits % 16 == 0, wrapped.allSatisfy(\.isHexDigit) else {
            throw DecodingError.dataCorruptedError(forKey: .wrapped, in: c, debugDescription: "a wrapped secret is hex of 24 or more bytes, a multiple of 8")
        }
    }

    private enum CodingKeys: String, CodingKey { case masterKeyID, wrapped }

    public var description: String { "WrappedSecret(master \(masterKeyID), \(wrapped.count / 2) bytes)" }
}

/// Any JSON object, kept as a tree (for inline profiles).
indirect enum JSONObject: Codable, Hashable, Sendable {
    case object([String: JSONObject])
    case array([JSONObject])
    case string(String)
    case number(Double)
    case bool(Bool)
    case null

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let value = try? c.decode(Bool.self) { self = .bool(value) }
        else if let value = try? c.decode(Double.self) { self = .number(value) }
        else if let value = try? c.decode(String.self) { self = .string(value) }
        else if let value = try? c.decode([JSONObject].self) { self = .array(value) }
        else { self = .object(try c.decode([String: JSONObject].self)) }
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .object(let value): try c.encode(value)
        case .array(let value): try c.encode(value)
        case .string(let value): try c.encode(value)
        case .number(let value):
            if value == value.rounded(), abs(value) < 1e15 { try c.encode(Int64(value)) } else { try c.encode(value) }
        case .bool(let value): try c.encode(value)
        case .null: try c.encodeNil()
        }
    }
}
