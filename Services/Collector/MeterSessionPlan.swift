import COSEM
import Contracts
import DLMSClient
import DLMSLink
import DLMSSecurity
import Foundation

/// How to open a session with the meter of a task: the `MeterConnection` its `MeterAccess`
/// describes (or, for an IEC 62056-21 meter, the mode C programming session), with its wrapped
/// secrets unwrapped by the collector's master key (in memory only, never logged), and whether
/// the meter shares a physical line with others.
struct MeterSessionPlan: Sendable {
    /// The protocol the session speaks.
    enum Session: Sendable {
        /// A DLMS/COSEM association (wrapper or HDLC; optical heads after mode E).
        case dlms(MeterConnection)
        /// IEC 62056-21 mode C: programming mode with the P1 password, `R1` reads of data sets
        /// and the manufacturer's load-profile read.
        case iec21ModeC(IEC21ModeC)
    }

    /// An IEC 62056-21 mode C meter: how to sign on and read its load profile.
    struct IEC21ModeC: Sendable {
        var endpoint: TransportEndpoint
        /// Device address for the sign-on, fastest baud rate, the answer timeout.
        var configuration: IEC21Session.Configuration
        /// The P1 password (the meter's LLS password); `nil` when the meter asks for none.
        var password: String?
        /// How the meter's family asks for its load profile (`R5 P.01(from;to)` and its time format).
        var loadProfile: IEC21LoadProfileDialect
        var connectTimeout: Duration
    }

    var session: Session
    /// Meters behind a gateway or on a serial line share one port, kept open between sessions
    /// (`DLMSLine`); IP meters get a connection of their own per session.
    var sharesLine: Bool

    /// The DLMS connection, `nil` for an IEC 62056-21 mode C meter.
    var connection: MeterConnection? {
        if case .dlms(let connection) = session { return connection }
        return nil
    }

    /// The port the session opens.
    var endpoint: TransportEndpoint {
        switch session {
        case .dlms(let connection): connection.endpoint
        case .iec21ModeC(let meter): meter.endpoint
        }
    }

    /// How long opening the port may take.
    var connectTimeout: Duration {
        switch session {
        case .dlms(let connection): connection.timeouts.connect
        case .iec21ModeC(let meter): meter.connectTimeout
        }
    }

    /// The collector's defaults for what a meter's access does not say.
    struct Defaults: Sendable {
        /// Default: 10 s.
        var connectTimeout: Duration = .seconds(10)
        /// Default: 15 s.
        var stepTimeout: Duration = .seconds(15)
    }

    /// - Throws: ``CollectorError`` (`task.invalid` for a description no session can follow,
    ///   `keys.unavailable` / `keys.invalid` for secrets the collector cannot unwrap).
    init(_ access: MeterAccess, masterKeys: MasterKeyRing?, defaults: Defaults = .init()) throws {
        if access.protocol == .iec62056_21 {
            self = try Self.iec21ModeC(access, masterKeys: masterKeys, defaults: defaults)
            return
        }
        let endpoint: TransportEndpoint
        var opening = MeterConnection.Opening.none
        switch access.endpoint {
        case .tcp(let host, let port): endpoint = .tcp(host: host, port: port)
        case .udp(let host, let port): endpoint = .udp(host: host, port: port)
        case .gatewayUDP(let host, let port): endpoint = .gatewayUDP(host: host, port: port)
        case .serial(let device, let baudRate): endpoint = .serial(.hdlc(path: device, baudRate: baudRate))
        case .optical(let device, let maximumBaudRate):
            endpoint = .serial(.iec21(path: device))
            opening = .iec21ModeE(address: access.deviceAddress, maximumBaudRate: maximumBaudRate)
        }
        let framing: MeterConnection.Framing = access.protocol == .dlmsWrapper ? .wrapper : .hdlc
        if framing == .wrapper, case .serial = endpoint {
            throw CollectorError.invalidTask("meter.protocol", "the wrapper (dlms-wrapper) runs over TCP or UDP, not a serial line")
        }
        if framing == .wrapper, case .gatewayUDP = endpoint {
            throw CollectorError.invalidTask("meter.protocol", "a serial gateway carries HDLC (dlms-hdlc), not the wrapper")
        }
        let profile = try Self.profile(access.manufacturerProfile)
        var timeouts = MeterConnection.Timeouts()
        timeouts.connect = access.timeouts?.connectSeconds.map { .milliseconds(Int64($0 * 1000)) } ?? defaults.connectTimeout
        timeouts.step = access.timeouts?.stepSeconds.map { .milliseconds(Int64($0 * 1000)) } ?? defaults.stepTimeout

        let keys = Keys(access.keys, masterKeys: masterKeys)
        let authentication: MeterConnection.Authentication
        switch access.authentication {
        case .none: authentication = .none
        case .lls:
            let password = try keys.secret(\.password, "meter.keys.password", purpose: "LLS needs the password")
            authentication = .low(password: password.withUnsafeBytes { Array($0) })
        case .hlsMD5: authentication = .high(.md5, secret: try keys.secret(\.password, "meter.keys.password", purpose: "HLS-MD5 needs the secret"))
        case .hlsSHA1: authentication = .high(.sha1, secret: try keys.secret(\.password, "meter.keys.password", purpose: "HLS-SHA1 needs the secret"))
        case .hlsSHA256: authentication = .high(.sha256, secret: try keys.optionalSecret(\.password, "meter.keys.password"))
        case .hlsGMAC: authentication = .high(.gmac, secret: nil)
        }

        var security: MeterConnection.Security?
        let ciphers = access.security != .none || access.authentication == .hlsGMAC || access.authentication == .hlsSHA256
        if ciphers {
            guard let titleHex = access.systemTitle else {
                throw CollectorError.invalidTask("meter.systemTitle", "ciphering and \(access.authentication.rawValue) need the client's system title")
            }
            let title: SystemTitle
            do { title = try SystemTitle(hex: titleHex) } catch {
                throw CollectorError.invalidTask("meter.systemTitle", "'\(titleHex)' is not a system title (16 hex digits)")
            }
            var expected: SystemTitle?
            if let serverTitle = access.serverSystemTitle {
                do { expected = try SystemTitle(hex: serverTitle) } catch {
                    throw CollectorError.invalidTask("meter.serverSystemTitle", "'\(serverTitle)' is not a system title (16 hex digits)")
                }
            }
            let policy: SecurityPolicy = switch access.security {
            case .none: SecurityPolicy(requiresAuthentication: false, requiresEncryption: false)
            case .authenticated: .authenticated
            case .encrypted: .encrypted
            case .both: .authenticatedAndEncrypted
            }
            // The invocation counter is read from the meter's counter object (public client)
            // before each ciphered association, so it never goes backwards across collectors.
            security = MeterConnection.Security(
                systemTitle: title,
                blockCipherKey: try keys.key(\.blockCipherKey, "meter.keys.blockCipherKey"),
                authenticationKey: try keys.key(\.authenticationKey, "meter.keys.authenticationKey"),
                policy: policy,
                dedicatedKey: try keys.optionalKey(\.dedicatedKey, "meter.keys.dedicatedKey"),
                expectedServerSystemTitle: expected)
        }
        session = .dlms(MeterConnection(
            endpoint: endpoint, framing: framing, clientSAP: UInt8(access.clientSAP),
            serverLogicalAddress: UInt16(access.serverLogicalAddress),
            serverPhysicalAddress: access.hdlcPhysicalAddress.map { UInt16($0) },
            authentication: authentication, profile: profile, timeouts: timeouts, opening: opening, security: security))
        switch access.endpoint {
        case .tcp, .udp: sharesLine = false
        case .gatewayUDP, .serial, .optical: sharesLine = true
        }
    }

    /// An IEC 62056-21 meter read in mode C: on a serial line or optical head (300 Bd 7E1 at
    /// sign-on, up to the line's rate), or behind a serial gateway. Its LLS password, if any, is
    /// the programming mode's P1 password.
    private static func iec21ModeC(_ access: MeterAccess, masterKeys: MasterKeyRing?, defaults: Defaults) throws -> MeterSessionPlan {
        let endpoint: TransportEndpoint
        var maximumBaudRate = 9600
        switch access.endpoint {
        case .serial(let device, let baudRate):
            endpoint = .serial(.iec21(path: device))
            maximumBaudRate = baudRate
        case .optical(let device, let baudRate):
            endpoint = .serial(.iec21(path: device))
            maximumBaudRate = baudRate
        case .gatewayUDP(let host, let port):
            endpoint = .gatewayUDP(host: host, port: port)
        case .tcp, .udp:
            throw CollectorError.invalidTask("meter.protocol", "IEC 62056-21 runs over a serial line, an optical head or a serial gateway, not \(access.endpoint)")
        }
        var password: String?
        switch access.authentication {
        case .none: password = nil
        case .lls:
            let secret = try Keys(access.keys, masterKeys: masterKeys).secret(\.password, "meter.keys.password", purpose: "the P1 password of programming mode")
            password = String(decoding: secret.withUnsafeBytes { Array($0) }, as: UTF8.self)
        default:
            throw CollectorError.invalidTask("meter.authentication", "an IEC 62056-21 meter takes a password (lls) or none, not \(access.authentication.rawValue)")
        }
        let stepTimeout = access.timeouts?.stepSeconds.map { Duration.milliseconds(Int64($0 * 1000)) } ?? defaults.stepTimeout
        let meter = IEC21ModeC(
            endpoint: endpoint,
            configuration: IEC21Session.Configuration(address: access.deviceAddress, maximumBaudRate: maximumBaudRate, responseTimeout: stepTimeout),
            password: password,
            loadProfile: try Self.profile(access.manufacturerProfile).iec21LoadProfile,
            connectTimeout: access.timeouts?.connectSeconds.map { .milliseconds(Int64($0 * 1000)) } ?? defaults.connectTimeout)
        return MeterSessionPlan(session: .iec21ModeC(meter), sharesLine: true)
    }

    private init(session: Session, sharesLine: Bool) {
        self.session = session
        self.sharesLine = sharesLine
    }

    static func profile(_ reference: ManufacturerProfileReference) throws -> ManufacturerProfile {
        switch reference {
        case .named(let name):
            guard let profile = ManufacturerProfile.builtIn[name] else {
                throw CollectorError.invalidTask("meter.manufacturerProfile", "unknown manufacturer profile '\(name)' (\(ManufacturerProfile.builtIn.keys.sorted().joined(separator: ", ")))")
            }
            return profile
        case .inline(let json):
            do {
                return try JSONDecoder().decode(ManufacturerProfile.self, from: Data(json.utf8))
            } catch {
                throw CollectorError.invalidTask("meter.manufacturerProfile", "the inline profile is not valid: \(error)")
            }
        }
    }

    /// The wrapped secrets of one meter and the master keys to open them (each names its key).
    private struct Keys {
        let keys: MeterAccess.Keys?
        let masterKeys: MasterKeyRing?

        init(_ keys: MeterAccess.Keys?, masterKeys: MasterKeyRing?) {
            self.keys = keys
            self.masterKeys = masterKeys
        }

        func optionalSecret(_ path: KeyPath<MeterAccess.Keys, WrappedSecret?>, _ field: String) throws -> DLMSSecret? {
            guard let wrapped = keys?[keyPath: path] else { return nil }
            let master = try master(field, id: wrapped.masterKeyID)
            do {
                return try WrappedDLMSSecret(masterKeyID: wrapped.masterKeyID, wrapped: Hex.decode(wrapped.wrapped) ?? []).unwrap(with: master)
            } catch {
                throw CollectorError.keysInvalid("\(field): \(error)")
            }
        }

        func secret(_ path: KeyPath<MeterAccess.Keys, WrappedSecret?>, _ field: String, purpose: String) throws -> DLMSSecret {
            guard let secret = try optionalSecret(path, field) else { throw CollectorError.invalidTask(field, purpose) }
            return secret
        }

        func optionalKey(_ path: KeyPath<MeterAccess.Keys, WrappedSecret?>, _ field: String) throws -> DLMSKey? {
            guard let wrapped = keys?[keyPath: path] else { return nil }
            let master = try master(field, id: wrapped.masterKeyID)
            do {
                return try WrappedDLMSKey(masterKeyID: wrapped.masterKeyID, wrapped: Hex.decode(wrapped.wrapped) ?? []).unwrap(with: master)
            } catch {
                throw CollectorError.keysInvalid("\(field): \(error)")
            }
        }

        func key(_ path: KeyPath<MeterAccess.Keys, WrappedSecret?>, _ field: String) throws -> DLMSKey {
            guard let key = try optionalKey(path, field) else { throw CollectorError.invalidTask(field, "ciphering needs this key") }
            return key
        }

        /// The key `id` names; the current one when this collector does not hold it (the
        /// unwrapping then reports the mismatch as `keys.invalid`).
        private func master(_ field: String, id: String) throws -> MasterKey {
            guard let masterKeys else {
                throw CollectorError.keysUnavailable("\(field) is wrapped, but this collector has no master key (HES_MASTER_KEY_FILE)")
            }
            return masterKeys.key(id: id) ?? masterKeys.current
        }
    }
}
