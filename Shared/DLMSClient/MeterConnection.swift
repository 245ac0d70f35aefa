import DLMSLink
import DLMSSecurity
import Foundation

/// Everything needed to open an association with one meter.
public struct MeterConnection: Hashable, Sendable {
    /// How APDUs are framed on the transport.
    public enum Framing: String, Hashable, Sendable, CaseIterable {
        /// IEC 62056-47 wrapper (TCP or UDP IP meters).
        case wrapper
        /// IEC 62056-46 HDLC (serial lines, RS-485 buses, gateways, some TCP meters).
        case hdlc
    }

    /// How the client authenticates.
    public enum Authentication: Hashable, Sendable, CustomStringConvertible {
        /// No authentication (the public client).
        case none
        /// Low-level security: a password in the AARQ.
        case low(password: [UInt8])
        /// High-level security (Green Book 9.2.7.4): challenges in the AARQ/AARE, then
        /// `reply_to_HLS_authentication`. MD5, SHA-1 and SHA-256 use `secret`; GMAC uses the
        /// association's keys (`MeterConnection.security`). ECDSA (mechanism 7) is ``highECDSA(_:)``.
        case high(HLSMechanism, secret: DLMSSecret?)
        /// High-level security with ECDSA (mechanism 7, security suite 1 or 2): each party signs
        /// its reply with its private key and checks the other's with the other's public key.
        case highECDSA(HLSSigning)

        public var description: String {
            switch self {
            case .none: "none"
            case .low: "lls"
            case .high(let mechanism, _): "hls-\(mechanism.description.replacingOccurrences(of: "high-", with: ""))"
            case .highECDSA: "hls-ecdsa"
            }
        }

        public static func == (lhs: Authentication, rhs: Authentication) -> Bool {
            switch (lhs, rhs) {
            case (.none, .none): true
            case (.low(let a), .low(let b)): a == b
            case (.high(let m1, let s1), .high(let m2, let s2)): m1 == m2 && s1 == s2
            case (.highECDSA(let a), .highECDSA(let b)): a == b
            default: false
            }
        }

        /// Hashes the kind only: secrets stay out of hash values.
        public func hash(into hasher: inout Hasher) { hasher.combine(description) }
    }

    /// The keys and title of HLS-ECDSA (mechanism 7; Green Book 9.2.7.4, DLMS UA 1000-2 Ed. 9
    /// 9.2.3.4.6). The private key never prints (``DLMSSigningKey``).
    public struct HLSSigning: Hashable, Sendable, CustomStringConvertible {
        /// The client's private signing key: P-256 for security suite 1, P-384 for suite 2.
        public var signingKey: DLMSSigningKey
        /// The meter's public signing key, of the same curve.
        public var meterPublicKey: DLMSPublicKey
        /// The client's system title (signed, and sent as calling-AP-title). A ciphered
        /// association signs with `Security.systemTitle`, which must then be the same.
        public var systemTitle: SystemTitle

        public init(signingKey: DLMSSigningKey, meterPublicKey: DLMSPublicKey, systemTitle: SystemTitle) {
            self.signingKey = signingKey
            self.meterPublicKey = meterPublicKey
            self.systemTitle = systemTitle
        }

        /// 1 (P-256) or 2 (P-384): the curve of the client's key.
        public var securitySuite: UInt8 { signingKey.curve.securitySuite }

        /// Keys are equal when their public halves are (a private key determines its public key).
        public static func == (lhs: HLSSigning, rhs: HLSSigning) -> Bool {
            lhs.signingKey.publicKey == rhs.signingKey.publicKey && lhs.meterPublicKey == rhs.meterPublicKey && lhs.systemTitle == rhs.systemTitle
        }

        public func hash(into hasher: inout Hasher) {
            hasher.combine(meterPublicKey)
            hasher.combine(systemTitle)
        }

        public var description: String { "HLS-ECDSA suite \(securitySuite) as \(systemTitle), meter key \(meterPublicKey)" }
    }

    /// What happens on the line before the framing starts.
    public enum Opening: Hashable, Sendable {
        /// Nothing: the framing starts at once. Default.
        case none
        /// IEC 62056-21 mode E on an optical port: sign-on at 300 Bd 7E1 (with this device
        /// address, if any), switch to the fastest common rate (at most `maximumBaudRate`) and to
        /// HDLC at 8N1.
        case iec21ModeE(address: String?, maximumBaudRate: Int)
    }

    /// Deadlines of the session's steps.
    public struct Timeouts: Hashable, Sendable {
        /// Opening the transport. Default: 10 s.
        public var connect: Duration
        /// Each request/response step, including HDLC link set-up and block transfer rounds. Default: 15 s.
        public var step: Duration
        /// How long one HDLC frame or one UDP request waits before it is sent again. Default: 3 s.
        public var retransmission: Duration
        /// How many times a frame or UDP request is sent again. Default: 3. After the last
        /// repetition of a UDP request the client waits for the rest of the step's deadline.
        public var retries: Int
        /// Release (RLRQ, DISC) at the end. Default: 3 s.
        public var release: Duration
        /// One request with every block of its answer: a meter that sends blocks without end
        /// (each in time for the step timeout) fails with `timeout` here. Default: 120 s.
        public var request: Duration
        /// The association as a whole, from the AARQ to the last answer before the release: a
        /// session whose requests would go on longer fails with `timeout` here. Opening the
        /// association (AARQ/AARE and the HLS passes) is also one request. Default: 30 min.
        public var association: Duration

        public init(connect: Duration = .seconds(10), step: Duration = .seconds(15), retransmission: Duration = .seconds(3),
                    retries: Int = 3, release: Duration = .seconds(3), request: Duration = .seconds(120),
                    association: Duration = .seconds(30 * 60)) {
            self.connect = connect
            self.step = step
            self.retransmission = retransmission
            self.retries = retries
            self.release = release
            self.request = request
            self.association = association
        }
    }

    public var endpoint: TransportEndpoint
    /// Default: wrapper for TCP/UDP, HDLC for serial lines and gateways.
    public var framing: Framing
    /// The client SAP: 16 public client, 17 reading client, 1 management client. Default: 16.
    public var clientSAP: UInt8
    /// The server's logical device (upper HDLC address / wrapper destination wPort). Default: 1.
    public var serverLogicalAddress: UInt16
    /// The server's physical address on an HDLC line (lower HDLC address). Default: `nil`.
    public var serverPhysicalAddress: UInt16?
    /// Default: none.
    public var authentication: Authentication
    /// Default: `.standard`.
    public var profile: ManufacturerProfile
    public var timeouts: Timeouts
    /// Default: none.
    public var opening: Opening
    /// Ciphering of the association. Default: `nil`, APDUs in the clear.
    public var security: Security?

    public init(endpoint: TransportEndpoint, framing: Framing? = nil, clientSAP: UInt8 = 16, serverLogicalAddress: UInt16 = 1,
                serverPhysicalAddress: UInt16? = nil, authentication: Authentication = .none,
                profile: ManufacturerProfile = .standard, timeouts: Timeouts = Timeouts(), opening: Opening = .none,
                security: Security? = nil) {
        self.opening = opening
        self.security = security
        self.endpoint = endpoint
        switch (framing, endpoint) {
        case (let framing?, _): self.framing = framing
        case (nil, .tcp), (nil, .udp): self.framing = .wrapper
        case (nil, .serial), (nil, .gatewayUDP): self.framing = .hdlc
        }
        self.clientSAP = clientSAP
        self.serverLogicalAddress = serverLogicalAddress
        self.serverPhysicalAddress = serverPhysicalAddress
        self.authentication = authentication
        self.profile = profile
        self.timeouts = timeouts
    }

    /// The HDLC link settings these choices imply.
    ///
    /// - Throws: `DLMSClientError` with `.invalidArgument` for addresses out of range.
    public func hdlcConfiguration() throws -> HDLCConnection.Configuration {
        do {
            return HDLCConnection.Configuration(
                clientAddress: try .client(clientSAP),
                serverAddress: try .server(logical: serverLogicalAddress, physical: serverPhysicalAddress, size: profile.serverAddressSize),
                proposedParameters: profile.hdlcParameters,
                sendsParameters: profile.sendsSNRMParameters,
                parameterEncoding: profile.hdlcParameterEncoding,
                responseTimeout: timeouts.retransmission,
                maximumRetries: timeouts.retries,
                inactivityTimeout: nil)
        } catch let error as DLMSLinkError {
            throw DLMSClientError(code: .invalidArgument, step: .linkSetup, reason: error.reason)
        }
    }

    public var description: String {
        "\(endpoint) \(framing) client \(clientSAP) server \(serverLogicalAddress)" + (serverPhysicalAddress.map { "/\($0)" } ?? "")
    }
}
