import DLMSCodec
import DLMSLink

/// The quirks of a meter family, so a new family is configuration rather than code.
public struct ManufacturerProfile: Hashable, Sendable {
    /// How the session ends.
    public enum ReleaseMode: String, Hashable, Sendable {
        /// RLRQ/RLRE, then (HDLC) DISC/UA. Default.
        case releaseRequest = "rlrq"
        /// Only DISC (HDLC) or closing the connection: meters that answer RLRQ badly or not at all.
        case disconnectOnly = "disc-only"
    }

    /// A name for logs and configuration, e.g. `standard`.
    public var name: String
    /// Force the server HDLC address size (some meters only accept four-byte addresses).
    /// Default: `nil`, the shortest encoding that fits.
    public var serverAddressSize: HDLCAddress.Size?
    /// Whether the SNRM carries the proposed parameters. Default: true.
    public var sendsSNRMParameters: Bool
    /// What the SNRM proposes. Default: 128-byte information fields, window 1.
    public var hdlcParameters: HDLCParameters
    /// How SNRM parameters are written. Default: Green Book style.
    public var hdlcParameterEncoding: HDLCParameters.EncodingOptions
    /// How the session ends. Default: RLRQ.
    public var releaseMode: ReleaseMode
    /// The client-max-receive-pdu-size proposed in the AARQ. Default: 65535.
    public var maximumReceivePDUSize: UInt16
    /// The conformance block proposed in the AARQ. Default: get, set, action, selective access,
    /// block transfer with get and with set, multiple references.
    public var proposedConformance: Conformance
    /// Accept bytes after a complete APDU in one frame (some server stacks append a second
    /// APDU, e.g. Gurux after a GET data block) instead of failing the response. Default: false.
    public var ignoresTrailingBytes: Bool
    /// IEC 62056-21 programming mode: how the family's load-profile extension is asked for.
    /// Default: `R5 P.01(YYMMDDhhmm;YYMMDDhhmm)`.
    public var iec21LoadProfile: IEC21LoadProfileDialect
    /// The most values one response may decode to (every null, number, string, array and
    /// structure counts one), checked before it is decoded: a meter's 16 MB array of nulls
    /// would otherwise take gigabytes (DESIGN.md invariant 7). Beyond it the request fails with
    /// `responseTooLarge`. Default: 1,000,000 (a year of quarter-hour rows of 8 values is 280,000).
    public var maximumResponseElements: Int

    /// The default of ``maximumResponseElements``.
    public static let defaultMaximumResponseElements = 1_000_000

    public init(name: String,
                serverAddressSize: HDLCAddress.Size? = nil,
                sendsSNRMParameters: Bool = true,
                hdlcParameters: HDLCParameters = .defaults,
                hdlcParameterEncoding: HDLCParameters.EncodingOptions = .init(),
                releaseMode: ReleaseMode = .releaseRequest,
                maximumReceivePDUSize: UInt16 = 0xFFFF,
                proposedConformance: Conformance = ManufacturerProfile.clientConformance,
                ignoresTrailingBytes: Bool = false,
                iec21LoadProfile: IEC21LoadProfileDialect = .init(),
                maximumResponseElements: Int = ManufacturerProfile.defaultMaximumResponseElements) {
        self.name = name
        self.serverAddressSize = serverAddressSize
        self.sendsSNRMParameters = sendsSNRMParameters
        self.hdlcParameters = hdlcParameters
        self.hdlcParameterEncoding = hdlcParameterEncoding
        self.releaseMode = releaseMode
        self.maximumReceivePDUSize = maximumReceivePDUSize
        self.proposedConformance = proposedConformance
        self.ignoresTrailingBytes = ignoresTrailingBytes
        self.iec21LoadProfile = iec21LoadProfile
        self.maximumResponseElements = maximumResponseElements
    }

    /// What this client implements.
    public static let clientConformance: Conformance = [
        .get, .set, .action, .selectiveAccess, .blockTransferWithGetOrRead, .blockTransferWithSetOrWrite, .multipleReferences,
    ]

    /// Standard IEC 62056 behaviour.
    public static let standard = ManufacturerProfile(name: "standard")
    /// Meters that need four-byte server addresses and reject an SNRM with parameters.
    public static let fourByteAddressNoSNRMParameters = ManufacturerProfile(
        name: "four-byte-address", serverAddressSize: .four, sendsSNRMParameters: false)
    /// Meters whose release handling is broken: end with DISC only.
    public static let disconnectOnly = ManufacturerProfile(name: "disc-only", releaseMode: .disconnectOnly)
    /// Gurux's server stack (our interop reference): tolerate its appended APDUs and skip RLRQ,
    /// whose answer it encodes one byte short.
    public static let gurux = ManufacturerProfile(name: "gurux", releaseMode: .disconnectOnly, ignoresTrailingBytes: true)

    /// EMH-style IEC 62056-21 meters: load profile `R5 P.01(ZYYMMDDhhmmss;ZYYMMDDhhmmss)` with the season digit.
    public static let emh = ManufacturerProfile(name: "emh", iec21LoadProfile: .init(timestampFormat: .seasonPrefixed))

    /// The built-in profiles by name.
    public static let builtIn: [String: ManufacturerProfile] = Dictionary(
        uniqueKeysWithValues: [standard, fourByteAddressNoSNRMParameters, disconnectOnly, gurux, emh].map { ($0.name, $0) })
}

/// How a meter family reads its load profile in IEC 62056-21 programming mode (a manufacturer
/// extension: the standard defines the command messages, not the profile's address or format).
public struct IEC21LoadProfileDialect: Hashable, Sendable {
    /// The profile's address. Default: `P.01`.
    public var address: String
    /// The read command's type digit (`R5` reads formatted partial blocks on most families). Default: `5`.
    public var commandType: UInt8
    /// How the range's times are written. Default: `YYMMDDhhmm`.
    public var timestampFormat: IEC21Timestamp.Format

    public init(address: String = "P.01", commandType: UInt8 = UInt8(ascii: "5"), timestampFormat: IEC21Timestamp.Format = .compact) {
        self.address = address
        self.commandType = commandType
        self.timestampFormat = timestampFormat
    }
}

// MARK: - Configuration files

/// Profiles are stored and exchanged as flat JSON documents, e.g.
/// `{"name":"acme-4byte","serverAddressSize":4,"sendsSNRMParameters":false,"maximumInformationLength":256,"releaseMode":"disc-only",
/// "maximumResponseElements":2000000}`.
/// Missing keys take the defaults of `ManufacturerProfile.init`.
extension ManufacturerProfile: Codable {
    private enum CodingKeys: String, CodingKey {
        case name, serverAddressSize, sendsSNRMParameters, maximumInformationLength, windowSize
        case omitDefaultSNRMParameters, snrmWindowSizeLength, releaseMode, maximumReceivePDUSize, ignoresTrailingBytes
        case iec21LoadProfileAddress, iec21LoadProfileCommand, iec21TimestampFormat, maximumResponseElements
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        var profile = ManufacturerProfile(name: try c.decode(String.self, forKey: .name))
        if let size = try c.decodeIfPresent(Int.self, forKey: .serverAddressSize) {
            guard let value = HDLCAddress.Size(rawValue: size) else {
                throw DecodingError.dataCorruptedError(forKey: .serverAddressSize, in: c, debugDescription: "server address size must be 1, 2 or 4")
            }
            profile.serverAddressSize = value
        }
        profile.sendsSNRMParameters = try c.decodeIfPresent(Bool.self, forKey: .sendsSNRMParameters) ?? profile.sendsSNRMParameters
        if let length = try c.decodeIfPresent(Int.self, forKey: .maximumInformationLength) {
            profile.hdlcParameters.maximumInformationLengthTransmit = length
            profile.hdlcParameters.maximumInformationLengthReceive = length
        }
        if let window = try c.decodeIfPresent(Int.self, forKey: .windowSize) {
            profile.hdlcParameters.windowSizeTransmit = window
            profile.hdlcParameters.windowSizeReceive = window
        }
        do {
            try profile.hdlcParameters.validate()
        } catch let error as DLMSLinkError {
            throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath, debugDescription: error.reason))
        }
        profile.hdlcParameterEncoding.omitDefaults = try c.decodeIfPresent(Bool.self, forKey: .omitDefaultSNRMParameters) ?? false
        if let length = try c.decodeIfPresent(Int.self, forKey: .snrmWindowSizeLength) {
            guard length == 1 || length == 4 else {
                throw DecodingError.dataCorruptedError(forKey: .snrmWindowSizeLength, in: c, debugDescription: "window size length must be 1 or 4")
            }
            profile.hdlcParameterEncoding.windowSizeLength = length
        }
        if let mode = try c.decodeIfPresent(String.self, forKey: .releaseMode) {
            guard let value = ReleaseMode(rawValue: mode) else {
                throw DecodingError.dataCorruptedError(forKey: .releaseMode, in: c, debugDescription: "release mode must be rlrq or disc-only")
            }
            profile.releaseMode = value
        }
        profile.maximumReceivePDUSize = try c.decodeIfPresent(UInt16.self, forKey: .maximumReceivePDUSize) ?? profile.maximumReceivePDUSize
        profile.ignoresTrailingBytes = try c.decodeIfPresent(Bool.self, forKey: .ignoresTrailingBytes) ?? false
        profile.iec21LoadProfile.address = try c.decodeIfPresent(String.self, forKey: .iec21LoadProfileAddress) ?? profile.iec21LoadProfile.address
        if let command = try c.decodeIfPresent(String.self, forKey: .iec21LoadProfileCommand) {
            let bytes = Array(command.utf8)
            guard bytes.count == 2, bytes[0] == UInt8(ascii: "R"), (0x30...0x39).contains(bytes[1]) else {
                throw DecodingError.dataCorruptedError(forKey: .iec21LoadProfileCommand, in: c, debugDescription: "the load-profile command is R and a digit, e.g. R5")
            }
            profile.iec21LoadProfile.commandType = bytes[1]
        }
        if let format = try c.decodeIfPresent(String.self, forKey: .iec21TimestampFormat) {
            guard let value = IEC21Timestamp.Format(rawValue: format) else {
                throw DecodingError.dataCorruptedError(forKey: .iec21TimestampFormat, in: c, debugDescription: "timestamp format must be compact or seasonPrefixed")
            }
            profile.iec21LoadProfile.timestampFormat = value
        }
        if let elements = try c.decodeIfPresent(Int.self, forKey: .maximumResponseElements) {
            guard elements >= 1 else {
                throw DecodingError.dataCorruptedError(forKey: .maximumResponseElements, in: c, debugDescription: "the element limit must be at least 1")
            }
            profile.maximumResponseElements = elements
        }
        self = profile
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encodeIfPresent(serverAddressSize?.rawValue, forKey: .serverAddressSize)
        try c.encode(sendsSNRMParameters, forKey: .sendsSNRMParameters)
        try c.encode(hdlcParameters.maximumInformationLengthReceive, forKey: .maximumInformationLength)
        try c.encode(hdlcParameters.windowSizeReceive, forKey: .windowSize)
        try c.encode(hdlcParameterEncoding.omitDefaults, forKey: .omitDefaultSNRMParameters)
        try c.encode(hdlcParameterEncoding.windowSizeLength, forKey: .snrmWindowSizeLength)
        try c.encode(releaseMode.rawValue, forKey: .releaseMode)
        try c.encode(maximumReceivePDUSize, forKey: .maximumReceivePDUSize)
        try c.encode(ignoresTrailingBytes, forKey: .ignoresTrailingBytes)
        try c.encode(iec21LoadProfile.address, forKey: .iec21LoadProfileAddress)
        try c.encode("R" + String(UnicodeScalar(iec21LoadProfile.commandType)), forKey: .iec21LoadProfileCommand)
        try c.encode(iec21LoadProfile.timestampFormat.rawValue, forKey: .iec21TimestampFormat)
        try c.encode(maximumResponseElements, forKey: .maximumResponseElements)
    }
}
