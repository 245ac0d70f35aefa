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
    /// block transfer with get/set/action, multiple references.
    public var proposedConformance: Conformance
    /// Accept bytes after a complete APDU in one frame (some server stacks append a second
    /// APDU, e.g. Gurux after a GET data block) instead of failing the response. Default: false.
    public var ignoresTrailingBytes: Bool

    public init(name: String,
                serverAddressSize: HDLCAddress.Size? = nil,
                sendsSNRMParameters: Bool = true,
                hdlcParameters: HDLCParameters = .defaults,
                hdlcParameterEncoding: HDLCParameters.EncodingOptions = .init(),
                releaseMode: ReleaseMode = .releaseRequest,
                maximumReceivePDUSize: UInt16 = 0xFFFF,
                proposedConformance: Conformance = ManufacturerProfile.clientConformance,
                ignoresTrailingBytes: Bool = false) {
        self.name = name
        self.serverAddressSize = serverAddressSize
        self.sendsSNRMParameters = sendsSNRMParameters
        self.hdlcParameters = hdlcParameters
        self.hdlcParameterEncoding = hdlcParameterEncoding
        self.releaseMode = releaseMode
        self.maximumReceivePDUSize = maximumReceivePDUSize
        self.proposedConformance = proposedConformance
        self.ignoresTrailingBytes = ignoresTrailingBytes
    }

    /// What this client implements.
    public static let clientConformance: Conformance = [
        .get, .set, .action, .selectiveAccess, .blockTransferWithGetOrRead, .multipleReferences,
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

    /// The built-in profiles by name.
    public static let builtIn: [String: ManufacturerProfile] = Dictionary(
        uniqueKeysWithValues: [standard, fourByteAddressNoSNRMParameters, disconnectOnly, gurux].map { ($0.name, $0) })
}
