import COSEM
import DLMSCodec
import DLMSSecurity
import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// A simulated meter's security material (shared by a fleet; each meter's system title is its
/// own): the global keys for ciphered associations and HLS-GMAC, the HLS secret of
/// mechanisms 3, 4 and 6, and the key pair and client key of HLS-ECDSA. Keys never print.
public struct MeterSecurity: Sendable, Hashable {
    /// EK. Default: 000102…0F (Gurux's and the Green Book examples' key).
    public var blockCipherKey: DLMSKey
    /// AK. Default: D0D1…DF.
    public var authenticationKey: DLMSKey
    /// The HLS secret of MD5, SHA-1 and SHA-256. Default: `Gurux` (Gurux's example secret).
    public var hlsSecret: DLMSSecret
    /// The weakest protection a ciphered association may use. Default: authenticated or encrypted,
    /// whichever the client's InitiateRequest carries (then kept for the association).
    public var minimumPolicy: SecurityPolicy
    /// HLS-ECDSA (mechanism 7): the meter's private signing key, P-256 (suite 1) or P-384
    /// (suite 2). Default: `nil`, mechanism 7 is not recognised.
    public var signingKey: DLMSSigningKey?
    /// HLS-ECDSA: the public key that verifies the clients' signatures (one for all clients), of
    /// the curve of ``signingKey``. Default: `nil`, mechanism 7 is not recognised.
    public var clientPublicKey: DLMSPublicKey?

    public init(blockCipherKey: DLMSKey, authenticationKey: DLMSKey, hlsSecret: DLMSSecret,
                minimumPolicy: SecurityPolicy = SecurityPolicy(requiresAuthentication: false, requiresEncryption: false),
                signingKey: DLMSSigningKey? = nil, clientPublicKey: DLMSPublicKey? = nil) {
        self.blockCipherKey = blockCipherKey
        self.authenticationKey = authenticationKey
        self.hlsSecret = hlsSecret
        self.minimumPolicy = minimumPolicy
        self.signingKey = signingKey
        self.clientPublicKey = clientPublicKey
    }

    /// The credentials of HLS-ECDSA, when both keys are set and of one curve.
    var ecdsaCredentials: HLSCredentials? {
        guard let signingKey, let clientPublicKey, signingKey.curve == clientPublicKey.curve else { return nil }
        return .signing(privateKey: signingKey, peerPublicKey: clientPublicKey)
    }

    /// The examples' keys: EK 000102…0F, AK D0D1…DF, secret `Gurux`.
    public static let examples = MeterSecurity(
        blockCipherKey: try! DLMSKey(hex: "000102030405060708090A0B0C0D0E0F"),
        authenticationKey: try! DLMSKey(hex: "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"),
        hlsSecret: try! DLMSSecret(text: "Gurux"))

    public static func == (lhs: MeterSecurity, rhs: MeterSecurity) -> Bool {
        lhs.blockCipherKey == rhs.blockCipherKey && lhs.authenticationKey == rhs.authenticationKey
            && lhs.hlsSecret == rhs.hlsSecret && lhs.minimumPolicy == rhs.minimumPolicy
            && lhs.signingKey?.publicKey == rhs.signingKey?.publicKey && lhs.clientPublicKey == rhs.clientPublicKey
    }

    /// Hashes the policy only: key material stays out of hash values.
    public func hash(into hasher: inout Hasher) { hasher.combine(minimumPolicy) }
}

extension SimulatedMeter {
    /// The meter's system title (security setup attribute 5): 8 bytes, `SWH` and 40 bits of the meter's key.
    public var systemTitle: SystemTitle { try! SystemTitle(serverSystemTitle) }

    /// The meter's security now: `configuration.security` with the keys agreed through its
    /// security setup's key_agreement since it started (the global unicast encryption key
    /// replaces ``MeterSecurity/blockCipherKey``, the authentication key
    /// ``MeterSecurity/authenticationKey``). Per meter, kept in memory for the life of the
    /// process (a restarted meter-sim has its configured keys again). New associations use it;
    /// the one that agreed a key keeps the keys it started with.
    public var currentSecurity: MeterSecurity? {
        guard var security = configuration.security else { return nil }
        let agreed = state.withLockedValue { $0.agreedKeys }
        if let key = agreed[.globalUnicastEncryption] { security.blockCipherKey = key }
        if let key = agreed[.authentication] { security.authenticationKey = key }
        return security
    }

    /// A key agreed through key_agreement, if any: the broadcast key and the master key (KEK)
    /// are kept here only (the simulated meter neither broadcasts nor takes key_transfer).
    public func agreedKey(_ keyID: DLMSKeyID) -> DLMSKey? { state.withLockedValue { $0.agreedKeys[keyID] } }

    /// Replaces keys after a key_agreement. A new global unicast encryption key starts a new
    /// invocation counter sequence (an invocation counter belongs to its key), so the
    /// client's counter guard is reset with it.
    func replaceKeys(_ keys: [DLMSKeyID: DLMSKey]) {
        state.withLockedValue { state in
            state.agreedKeys.merge(keys) { $1 }
            if keys[.globalUnicastEncryption] != nil { state.clientCounterGuard = InvocationCounterGuard() }
        }
    }

    /// The invocation counter the meter reports in 0.0.43.1.0.255: the last one it accepted
    /// from a client (0 before any), or — with the stale-counter fault — a lower one, so a
    /// client that trusts it is refused.
    public var reportedClientInvocationCounter: UInt32 {
        state.withLockedValue { state in
            let last = state.clientCounterGuard.lastAccepted ?? 0
            return configuration.reportsStaleInvocationCounter ? last / 2 : last
        }
    }

    /// Checks and deciphers a client APDU into a buffer against the meter's receive counter (kept
    /// across associations, so a replayed APDU from an earlier session is refused too).
    func unprotectedAPDU(_ apdu: CipheredAPDU, with cipher: DLMSCipher) throws -> ByteBuffer {
        try state.withLockedValue { state in
            try cipher.unprotectedAPDU(apdu, counterGuard: &state.clientCounterGuard)
        }
    }

    /// The meter's own next transmit invocation counter.
    func nextServerInvocationCounter() -> UInt32 {
        state.withLockedValue { state in
            state.serverInvocationCounter &+= 1
            return state.serverInvocationCounter
        }
    }
}

/// The ciphering and HLS state of one server association. Boxed: most associations have none,
/// and a session must stay small when 10,000 meters are served at once.
struct ServerSecurityContext: Sendable {
    private final class Storage: Sendable {
        let cipher: DLMSCipher?
        let pendingHLS: HLSExchange?
        init(cipher: DLMSCipher?, pendingHLS: HLSExchange?) {
            self.cipher = cipher
            self.pendingHLS = pendingHLS
        }
    }

    private var storage: Storage?

    var cipher: DLMSCipher? {
        get { storage?.cipher }
        set { storage = Storage(cipher: newValue, pendingHLS: pendingHLS) }
    }

    /// Set between the AARE and a verified reply_to_HLS_authentication.
    var pendingHLS: HLSExchange? {
        get { storage?.pendingHLS }
        set { storage = Storage(cipher: cipher, pendingHLS: newValue) }
    }

    var isCiphered: Bool { cipher != nil }
}

extension COSEMServerSession {
    /// The association object's reply_to_HLS_authentication (class 15, method 1).
    static let replyToHLS = CosemMethodDescriptor(classID: .associationLN, instance: OBISCode(0, 0, 40, 0, 0, 255), method: 1)

    /// Checks a ciphered AARQ's or an HLS AARQ's security part and prepares the association's
    /// security context. Returns the ACSE diagnostic of a failure, or the deciphered InitiateRequest.
    mutating func secureAssociation(_ aarq: AARQ, role: ClientRole) -> Result<(ServerSecurityContext, InitiateRequest?, CipheringKind?), AssociationFailure> {
        var context = ServerSecurityContext()
        let ciphered = aarq.applicationContextName == .logicalNameWithCiphering
        let hls = aarq.mechanismName.flatMap(HLSMechanism.init)
        guard ciphered || hls != nil else { return .success((context, nil, nil)) }
        guard let security = meter.currentSecurity else {
            return .failure(.diagnostic(ciphered ? ACSEDiagnostic.applicationContextNameNotSupported : ACSEDiagnostic.authenticationMechanismNameNotRecognised))
        }
        let clientTitle = aarq.callingAPTitle.flatMap { try? SystemTitle($0) }
        if ciphered || hls?.usesSystemTitles == true {
            guard clientTitle != nil else { return .failure(.diagnostic(ACSEDiagnostic.callingAPTitleNotRecognised)) }
        }
        var initiate: InitiateRequest?
        var kind: CipheringKind?
        if ciphered {
            guard case .ciphered(let apdu)? = aarq.userInformation else { return .failure(.diagnostic(ACSEDiagnostic.noReasonGiven)) }
            // The association's suite is the one the AARQ's security control names, if the
            // meter's key length (and, for HLS-ECDSA, its curve) belongs to it.
            let suite = SecurityControl(rawValue: apdu.securityControl).suite
            guard DLMSCipher.allows(suite: suite, blockCipherKey: security.blockCipherKey,
                                    signingCurve: hls == .ecdsa ? security.signingKey?.curve : nil) else {
                return .failure(.deciphering("security suite \(suite) does not go with the meter's \(security.blockCipherKey.count)-byte keys\(hls == .ecdsa ? " and its \(security.signingKey.map { "\($0.curve)" } ?? "missing") signing key" : "")"))
            }
            var cipher = DLMSCipher(systemTitle: meter.systemTitle, peerSystemTitle: clientTitle, blockCipherKey: security.blockCipherKey,
                                    authenticationKey: security.authenticationKey, policy: security.minimumPolicy, securitySuite: suite)
            do {
                var plain = try meter.unprotectedAPDU(apdu, with: cipher)
                let request = try InitiateRequest.decode(from: &plain)
                initiate = request
                if let key = request.dedicatedKey { cipher.dedicatedKey = try DLMSKey(bytes: key.bytes) }
            } catch {
                return .failure(.deciphering("\(error)"))
            }
            // The association keeps the protection the client chose (at least the minimum).
            let control = SecurityControl(rawValue: apdu.securityControl)
            cipher.policy = SecurityPolicy(requiresAuthentication: control.isAuthenticated, requiresEncryption: control.isEncrypted)
            kind = CipheringKind(cipheredTag: apdu.tag)
            context.cipher = cipher
        }
        if let hls {
            guard let challenge = aarq.callingAuthenticationValue?.bytes, HLS.challengeLengths.contains(challenge.count) else {
                return .failure(.diagnostic(ACSEDiagnostic.authenticationRequired))
            }
            let credentials: HLSCredentials
            switch hls {
            case .gmac: credentials = .keys(blockCipherKey: security.blockCipherKey, authenticationKey: security.authenticationKey)
            case .ecdsa:
                guard let signing = security.ecdsaCredentials else {
                    return .failure(.diagnostic(ACSEDiagnostic.authenticationMechanismNameNotRecognised))
                }
                credentials = signing
            default: credentials = .secret(security.hlsSecret)
            }
            guard let ownChallenge = try? HLS.challenge(length: 16) else { return .failure(.diagnostic(ACSEDiagnostic.noReasonGiven)) }
            context.pendingHLS = HLSExchange(mechanism: hls, credentials: credentials, ownSystemTitle: meter.systemTitle,
                                             peerSystemTitle: clientTitle, ownChallenge: ownChallenge, peerChallenge: challenge)
        }
        return .success((context, initiate, kind))
    }

    /// The AARE of an accepted secured association: system title, HLS challenge, ciphered
    /// InitiateResponse.
    func secureAARE(_ aare: AARE, aarq: AARQ, context: ServerSecurityContext, initiateKind: CipheringKind?) -> AARE {
        var aare = aare
        aare.applicationContextName = aarq.applicationContextName
        if context.isCiphered || context.pendingHLS?.mechanism.usesSystemTitles == true {
            aare.respondingAPTitle = meter.systemTitle.dlmsBytes
        }
        if let pending = context.pendingHLS {
            aare.resultSourceDiagnostic = AssociateSourceDiagnostic(source: .serviceUser, value: ACSEDiagnostic.authenticationRequired)
            aare.responderACSERequirements = [0x07, 0x80]
            aare.mechanismName = pending.mechanism.mechanism
            aare.respondingAuthenticationValue = .charString(DLMSBytes(pending.ownChallenge))
        }
        if let cipher = context.cipher, case .initiateResponse(let response)? = aare.userInformation,
           let protected = try? cipher.protect(Array(DLMSAPDU.initiateResponse(response).encoded.readableBytesView),
                                               kind: initiateKind ?? .global, invocationCounter: meter.nextServerInvocationCounter()) {
            aare.userInformation = .ciphered(protected)
        }
        return aare
    }

    /// A ciphered request: decipher (checking the counter), handle, cipher the answer the same way.
    mutating func handleCiphered(_ apdu: CipheredAPDU, now: Date) -> ByteBuffer? {
        guard association != nil, let cipher = security.cipher, let kind = CipheringKind(cipheredTag: apdu.tag) else {
            return Self.exception(.serviceNotAllowed, .operationNotPossible)
        }
        let plain: ByteBuffer
        do {
            plain = try meter.unprotectedAPDU(apdu, with: cipher)
        } catch let error as DLMSSecurityError where error.code == .replayedCounter {
            return Self.exception(.serviceNotAllowed, .invocationCounterError, invocationCounter: meter.reportedClientInvocationCounter)
        } catch {
            return Self.exception(.serviceNotAllowed, .decipheringError)
        }
        guard let response = handleService(plain, now: now) else { return nil }
        // Exceptions go back in the clear (the client may not be able to decipher anything).
        guard response.getInteger(at: response.readerIndex, as: UInt8.self) != ExceptionResponse.tag else { return response }
        guard let protected = try? cipher.protectedAPDU(response, kind: kind, invocationCounter: meter.nextServerInvocationCounter()) else {
            return Self.exception(.serviceNotAllowed, .otherReason)
        }
        return protected
    }

    /// reply_to_HLS_authentication: checks f(StoC) and answers f(CtoS).
    mutating func replyToHLS(invokeID: InvokeIDAndPriority, parameters: DLMSData?) -> ByteBuffer {
        func answer(_ result: ActionResult, _ data: DLMSData? = nil) -> ByteBuffer {
            DLMSAPDU.actionResponse(.normal(invokeID: invokeID, response: ActionResponseWithOptionalData(
                result: result, returnParameters: data.map { .data($0) }))).encoded
        }
        guard let exchange = security.pendingHLS else { return answer(.readWriteDenied) }
        guard case .octetString(let reply)? = parameters, exchange.isValid(Array(reply.readableBytesView)) else {
            // The association stays unauthenticated; the client may only release it.
            return answer(.readWriteDenied)
        }
        let counter = exchange.mechanism == .gmac ? meter.nextServerInvocationCounter() : 0
        guard let response = try? exchange.response(invocationCounter: counter) else { return answer(.otherReason) }
        security.pendingHLS = nil
        return answer(.success, .octetString(ByteBuffer(bytes: response)))
    }
}

// MARK: - Security setup key_agreement (IC 64 method 3)

extension COSEMServerSession {
    /// The security setup's key_agreement (Blue Book IC 64 method 3; Green Book 9.2.3.4.6), for
    /// the management client of a ciphered HLS-ECDSA association: verifies each element's
    /// key-data with the clients' public key, answers with the meter's own ephemeral key signed
    /// by its signing key, and replaces the keys once every element verified (the association
    /// keeps its keys; the next ones use the new ones). Refusals are action-results and leave
    /// the meter's keys as they were: read-write-denied for another client or association or a
    /// key-data that does not verify, type-unmatched for a parameter of another shape.
    func keyAgreement(parameters: DLMSData?, association: AssociationContext) -> ActionResponseWithOptionalData {
        guard association.role == .management, association.mechanism == .highECDSA,
              let cipher = security.cipher, let clientTitle = cipher.peerSystemTitle,
              let meterSecurity = meter.currentSecurity, let signingKey = meterSecurity.signingKey,
              let clientKey = meterSecurity.clientPublicKey else {
            return ActionResponseWithOptionalData(result: .readWriteDenied)
        }
        guard let parameters, let entries = try? DLMSKeyAgreement.decode(parameters),
              Set(entries.map(\.keyID)).count == entries.count else {
            return ActionResponseWithOptionalData(result: .typeUnmatched)
        }
        var keys: [DLMSKeyID: DLMSKey] = [:]
        var answers: [DLMSKeyAgreement.Entry] = []
        for entry in entries {
            guard let agreement = try? DLMSKeyAgreement(role: .server, keyID: entry.keyID, signingKey: signingKey, peerSigningKey: clientKey,
                                                        clientSystemTitle: clientTitle, serverSystemTitle: meter.systemTitle),
                  let key = try? agreement.agreedKey(peerKeyData: entry.keyData) else {
                return ActionResponseWithOptionalData(result: .readWriteDenied)
            }
            keys[entry.keyID] = key
            answers.append(.init(keyID: entry.keyID, keyData: agreement.ownKeyData))
        }
        meter.replaceKeys(keys)
        return ActionResponseWithOptionalData(result: .success, returnParameters: .data(DLMSKeyAgreement.encode(answers)))
    }
}

/// Why a secured AARQ was refused.
enum AssociationFailure: Error {
    case diagnostic(Int)
    /// The ciphered InitiateRequest did not decipher (wrong key, title or counter, tampering).
    case deciphering(String)
}
