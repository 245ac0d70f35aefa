import COSEM
import DLMSCodec
import DLMSLink
import DLMSSecurity
import Logging
import NIOCore
import NIOPosix
import Observability

/// One open association with a meter: GET, SET and ACTION with invoke-id correlation, block
/// transfer reassembly and a deadline on every step. Obtain one with `withAssociation`.
///
/// Not thread-safe: one task uses a client at a time (a DLMS association is strictly
/// request/response).
public final class DLMSClient {
    /// What the AARE granted.
    public struct Association: Hashable, Sendable {
        public var conformance: Conformance
        /// The largest APDU the meter accepts.
        public var serverMaxReceivePDUSize: UInt16
        public var dlmsVersion: UInt8
        /// The HDLC parameters, for HDLC links.
        public var hdlcParameters: HDLCParameters?
        /// The meter's system title (responding-AP-title), when it sent one.
        public var serverSystemTitle: SystemTitle?
    }

    /// The ciphering state of a secured association. A class, and the cipher a constant: every
    /// APDU uses them in place, where a struct behind an optional, or a variable cipher, would be
    /// copied (keys, titles and all) each time.
    final class CipheringState {
        let cipher: DLMSCipher
        var transmitCounter: InvocationCounter
        var receiveGuard: InvocationCounterGuard
        /// Global until the association is up; dedicated afterwards when a dedicated key was sent.
        var kind: CipheringKind

        init(cipher: DLMSCipher, transmitCounter: InvocationCounter, receiveGuard: InvocationCounterGuard = InvocationCounterGuard(),
             kind: CipheringKind = .global) {
            self.cipher = cipher
            self.transmitCounter = transmitCounter
            self.receiveGuard = receiveGuard
            self.kind = kind
        }
    }

    public let connection: MeterConnection
    public private(set) var association: Association
    public let logger: Logger
    private let framing: any APDUFraming
    private var nextInvokeID: UInt8 = 0
    /// Set when the association is ciphered.
    private var ciphering: CipheringState?

    /// Whether the association is ciphered (its service APDUs are glo- or ded-ciphered).
    public var isCiphered: Bool { ciphering != nil }

    private init(connection: MeterConnection, framing: any APDUFraming, logger: Logger) {
        self.connection = connection
        self.framing = framing
        self.logger = logger
        self.association = Association(conformance: [], serverMaxReceivePDUSize: 0, dlmsVersion: 6, hdlcParameters: nil, serverSystemTitle: nil)
    }

    // MARK: - Session scope

    /// Connects, opens the link and the association, runs `body`, then releases and closes —
    /// also when `body` throws.
    ///
    /// - Parameters:
    ///   - connection: the meter.
    ///   - group: event loops for the transport. Default: NIO's shared group.
    ///   - logger: logs carry the endpoint; add `meter.id` to the logger's metadata before.
    ///   - body: the work to do on the association.
    /// - Returns: what `body` returns.
    /// - Throws: `DLMSClientError` naming the step that failed, or what `body` threw.
    public static func withAssociation<Result>(
        to connection: MeterConnection,
        on group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "hes.dlms-client"),
        _ body: (DLMSClient) async throws -> Result
    ) async throws -> Result {
        var connection = connection
        if let security = connection.security, security.ciphers, case .readFromMeter(let object, let clientSAP) = security.invocationCounter {
            // Its own connection: many meters hang up after an association ends (HDLC DISC over TCP).
            let counter = try await withAssociation(to: counterReader(connection, clientSAP: clientSAP), on: group, logger: logger) { client in
                try await client.readInvocationCounter(object)
            }
            connection.security?.invocationCounter = .startingAt(counter &+ 1)
        }
        let transport = try await connection.endpoint.open(on: group, timeout: connection.timeouts.connect)
        return try await withAssociation(to: connection, over: transport, logger: logger, closesTransport: true, body)
    }

    /// The plain association that reads the invocation counter before a ciphered one.
    private static func counterReader(_ connection: MeterConnection, clientSAP: UInt8) -> MeterConnection {
        var reader = connection
        reader.clientSAP = clientSAP
        reader.authentication = .none
        reader.security = nil
        return reader
    }

    /// Reads an invocation counter object (class 1 attribute 2, double-long-unsigned).
    private func readInvocationCounter(_ object: OBISCode) async throws -> UInt32 {
        let value = try await get(CosemAttributeDescriptor(classID: .data, instance: object, attribute: 2))
        guard let counter = value.integerValue, counter >= 0, counter < Int(UInt32.max) else {
            throw DLMSClientError(code: .unexpectedResponse, step: .associate, reason: "the invocation counter \(object) holds \(value), not a counter")
        }
        return UInt32(counter)
    }

    /// Like `withAssociation(to:…)` over a transport that is already open (a multi-drop line
    /// whose port stays open between meters).
    ///
    /// - Parameter closesTransport: whether to close the transport at the end.
    public static func withAssociation<Result>(
        to connection: MeterConnection,
        over transport: any DLMSTransport,
        logger: Logger = Logger(label: "hes.dlms-client"),
        closesTransport: Bool,
        _ body: (DLMSClient) async throws -> Result
    ) async throws -> Result {
        var logger = logger
        logger[metadataKey: LogMetadataKey.meterEndpoint] = "\(connection.endpoint)"
        var firstCounter: UInt32 = 0
        if let security = connection.security, security.ciphers {
            do {
                firstCounter = try await startingInvocationCounter(security, connection: connection, over: transport, logger: logger)
            } catch {
                if closesTransport { await transport.close() }
                throw error
            }
        }
        let framing: any APDUFraming
        switch connection.framing {
        case .wrapper:
            framing = WrapperFraming(transport: transport, clientWPort: UInt16(connection.clientSAP), serverWPort: connection.serverLogicalAddress)
        case .hdlc:
            await transport.discardPending()
            if case .iec21ModeE(let address, let rate) = connection.opening {
                var serialPath: String?
                if case .serial(let settings) = connection.endpoint { serialPath = settings.path }
                do {
                    let id = try await IEC21Reader.enterHDLC(over: transport, serialPath: serialPath, configuration: .init(
                        address: address, maximumBaudRate: rate, responseTimeout: connection.timeouts.retransmission))
                    logger.debug("IEC 62056-21 mode E opening done", metadata: [LogMetadataKey.iec21Identification: "\(id.manufacturer) \(id.identification)"])
                } catch {
                    if closesTransport { await transport.close() }
                    throw error
                }
            }
            framing = HDLCFraming(transport: transport, configuration: try connection.hdlcConfiguration())
        }
        let client = DLMSClient(connection: connection, framing: framing, logger: logger)
        do {
            try await client.open(firstInvocationCounter: firstCounter)
        } catch {
            await client.closeLink()
            if closesTransport { await transport.close() }
            throw DLMSClientError.wrapping(error, step: .associate)
        }
        let result: Result
        do {
            result = try await body(client)
        } catch {
            await client.release()
            if closesTransport { await transport.close() }
            throw error
        }
        await client.release()
        if closesTransport { await transport.close() }
        return result
    }

    /// The first transmit invocation counter of a ciphered association: above the meter's
    /// counter object (read by a plain association over the same transport) and above the
    /// last one this client recorded, reserved in the store before it is used.
    private static func startingInvocationCounter(_ security: MeterConnection.Security, connection: MeterConnection,
                                                  over transport: any DLMSTransport, logger: Logger) async throws -> UInt32 {
        var first: UInt32 = 0
        switch security.invocationCounter {
        case .startingAt(let value):
            first = value
        case .readFromMeter(let object, let clientSAP):
            // A shared line (the transport stays open): the same port, one association after the other.
            first = try await withAssociation(to: counterReader(connection, clientSAP: clientSAP), over: transport, logger: logger,
                                              closesTransport: false) { client in
                try await client.readInvocationCounter(object)
            } &+ 1
        }
        if let store = security.counterStore {
            let key = security.counterKey ?? connection.description
            do {
                if let last = try await store.lastUsed(key: key), last >= first {
                    guard last < UInt32.max else {
                        throw DLMSClientError(code: .securityFailed, step: .associate, reason: "the invocation counter of \(key) is exhausted; change the key")
                    }
                    first = last + 1
                }
                // Reserve before use: a crash cannot make the counter go backwards.
                try await store.recordUsed(first &+ invocationCounterReservation, key: key)
            } catch let error as DLMSClientError {
                throw error
            } catch {
                throw DLMSClientError(code: .invalidArgument, step: .associate, reason: "invocation counter store: \(error)")
            }
        }
        logger.debug("first invocation counter", metadata: [LogMetadataKey.dlmsInvocationCounter: "\(first)"])
        return first
    }

    /// Counters reserved per association (an association sends far fewer APDUs).
    static let invocationCounterReservation: UInt32 = 10_000

    // MARK: - Association

    private func open(firstInvocationCounter: UInt32) async throws {
        let deadline = deadline(connection.timeouts.step)
        do {
            try await framing.open(deadline: deadline)
        } catch {
            throw DLMSClientError.wrapping(error, step: .linkSetup)
        }
        if let hdlc = framing as? HDLCFraming {
            association.hdlcParameters = hdlc.parameters
            logger.debug("HDLC link up", metadata: [LogMetadataKey.hdlcParameters: "\(hdlc.parameters)"])
        }
        let profile = connection.profile
        var initiate = InitiateRequest(proposedConformance: profile.proposedConformance, clientMaxReceivePDUSize: profile.maximumReceivePDUSize)
        let security = connection.security
        if let security, security.ciphers {
            let signingCurve: ECDSACurve? = if case .highECDSA(let signing) = connection.authentication { signing.signingKey.curve } else { nil }
            let suite: UInt8
            do {
                suite = try DLMSCipher.securitySuite(blockCipherKey: security.blockCipherKey, signingCurve: signingCurve)
            } catch {
                throw DLMSClientError(code: .invalidArgument, step: .associate, reason: "\(error)")
            }
            ciphering = CipheringState(
                cipher: DLMSCipher(systemTitle: security.systemTitle, peerSystemTitle: security.expectedServerSystemTitle,
                                   blockCipherKey: security.blockCipherKey, authenticationKey: security.authenticationKey,
                                   dedicatedKey: security.dedicatedKey, policy: security.policy, securitySuite: suite),
                transmitCounter: InvocationCounter(startingAt: firstInvocationCounter))
            initiate.dedicatedKey = security.dedicatedKey.map { key in key.withUnsafeBytes { DLMSBytes($0) } }
        }
        var aarq = AARQ(applicationContextName: ciphering == nil ? .logicalName : .logicalNameWithCiphering, callingAPTitle: security?.systemTitle.dlmsBytes)
        var ownChallenge: [UInt8] = []
        switch connection.authentication {
        case .none:
            break
        case .low(let password):
            aarq.senderACSERequirements = [0x07, 0x80]
            aarq.mechanismName = .low
            aarq.callingAuthenticationValue = .charString(DLMSBytes(password))
        case .high(let mechanism, let secret):
            guard mechanism != .ecdsa else {
                throw DLMSClientError(code: .invalidArgument, step: .associate, reason: "HLS-ECDSA takes its keys in .highECDSA(HLSSigning), not .high")
            }
            guard mechanism == .gmac ? security != nil : secret != nil, !mechanism.usesSystemTitles || security != nil else {
                throw DLMSClientError(code: .invalidArgument, step: .associate,
                                      reason: "\(mechanism) needs \(mechanism == .gmac ? "keys and a system title" : mechanism.usesSystemTitles ? "a secret and a system title" : "a secret")")
            }
            ownChallenge = try Self.securityStep(.associate) { try HLS.challenge(length: 16) }
            aarq.senderACSERequirements = [0x07, 0x80]
            aarq.mechanismName = mechanism.mechanism
            aarq.callingAuthenticationValue = .charString(DLMSBytes(ownChallenge))
        case .highECDSA(let signing):
            if let security, security.systemTitle != signing.systemTitle {
                throw DLMSClientError(code: .invalidArgument, step: .associate,
                                      reason: "hls-ecdsa signs as \(signing.systemTitle) but the association is ciphered as \(security.systemTitle)")
            }
            guard signing.signingKey.curve == signing.meterPublicKey.curve else {
                throw DLMSClientError(code: .invalidArgument, step: .associate,
                                      reason: "hls-ecdsa: the client's key is \(signing.signingKey.curve) but the meter's is \(signing.meterPublicKey.curve)")
            }
            ownChallenge = try Self.securityStep(.associate) { try HLS.challenge(length: 16) }
            aarq.callingAPTitle = signing.systemTitle.dlmsBytes
            aarq.senderACSERequirements = [0x07, 0x80]
            aarq.mechanismName = HLSMechanism.ecdsa.mechanism
            aarq.callingAuthenticationValue = .charString(DLMSBytes(ownChallenge))
        }
        if ciphering != nil {
            aarq.userInformation = .ciphered(try protect(DLMSAPDU.initiateRequest(initiate).encoded, kind: .global, step: .associate))
        } else {
            aarq.userInformation = .initiateRequest(initiate)
        }

        let response = try await exchange(.aarq(aarq), step: .associate, invokeID: nil)
        guard case .aare(let aare) = response else {
            throw DLMSClientError(code: .unexpectedResponse, step: .associate, reason: "expected an AARE, got \(response.name)")
        }
        guard aare.isAccepted else {
            // resultDescription already names a ConfirmedServiceError in the user-information.
            throw DLMSClientError(code: .associationRejected, step: .associate, reason: aare.resultDescription)
        }
        if let title = aare.respondingAPTitle {
            association.serverSystemTitle = try Self.securityStep(.associate) { try SystemTitle(title) }
        }
        if let expected = security?.expectedServerSystemTitle, association.serverSystemTitle != expected {
            throw DLMSClientError(code: .securityFailed, step: .associate,
                                  reason: "the meter's system title is \(association.serverSystemTitle.map(\.hex) ?? "absent"), expected \(expected)")
        }
        let granted: InitiateResponse
        switch aare.userInformation {
        case .ciphered(let ciphered)?:
            guard ciphering != nil else {
                throw DLMSClientError(code: .unexpectedResponse, step: .associate, reason: "a ciphered AARE to an association in the clear")
            }
            guard let title = association.serverSystemTitle else {
                throw DLMSClientError(code: .securityFailed, step: .associate, reason: "a ciphered AARE without the meter's system title")
            }
            if let state = ciphering {
                var cipher = state.cipher
                cipher.peerSystemTitle = title
                ciphering = CipheringState(cipher: cipher, transmitCounter: state.transmitCounter, receiveGuard: state.receiveGuard, kind: state.kind)
            }
            var buffer = try unprotectedAPDU(ciphered, step: .associate)
            granted = try Self.securityStep(.associate) { try InitiateResponse.decode(from: &buffer) }
        case .initiateResponse(let response)?:
            guard ciphering == nil else {
                throw DLMSClientError(code: .securityFailed, step: .associate, reason: "the meter answered a ciphered AARQ in the clear")
            }
            granted = response
        default:
            throw DLMSClientError(code: .unexpectedResponse, step: .associate, reason: "the AARE carries no InitiateResponse")
        }
        association.conformance = granted.negotiatedConformance
        association.serverMaxReceivePDUSize = granted.serverMaxReceivePDUSize
        association.dlmsVersion = granted.negotiatedDLMSVersion
        switch connection.authentication {
        case .high(let mechanism, let secret):
            let credentials: HLSCredentials
            if mechanism == .gmac, let security {
                credentials = .keys(blockCipherKey: security.blockCipherKey, authenticationKey: security.authenticationKey)
            } else {
                credentials = .secret(secret!)
            }
            try await completeHLS(mechanism, credentials: credentials, ownSystemTitle: security?.systemTitle, ownChallenge: ownChallenge, aare: aare)
        case .highECDSA(let signing):
            try await completeHLS(.ecdsa, credentials: .signing(privateKey: signing.signingKey, peerPublicKey: signing.meterPublicKey),
                                  ownSystemTitle: signing.systemTitle, ownChallenge: ownChallenge, aare: aare)
        case .none, .low:
            break
        }
        // The dedicated key serves the association once it is up, i.e. after HLS pass 3/4: the
        // reply_to_HLS_authentication ACTION stays glo-ciphered. Gurux's client does the same and
        // its server deciphers a ded- APDU only in an authenticated association (a ded- pass 3 is
        // refused with deciphering-error); meter-sim takes either.
        if ciphering?.cipher.dedicatedKey != nil { ciphering?.kind = .dedicated }
        logger.debug("associated", metadata: [LogMetadataKey.dlmsConformance: "\(granted.negotiatedConformance)", LogMetadataKey.dlmsMaxPDU: "\(granted.serverMaxReceivePDUSize)",
                                              LogMetadataKey.dlmsSecurity: "\(security.map { "\($0)" } ?? "none")"])
    }

    /// HLS passes 3 and 4 (Green Book 9.2.7.4): our f(StoC) through `reply_to_HLS_authentication`
    /// of the current association object, and the check of the meter's f(CtoS).
    private func completeHLS(_ mechanism: HLSMechanism, credentials: HLSCredentials, ownSystemTitle: SystemTitle?, ownChallenge: [UInt8],
                             aare: AARE) async throws {
        guard let challenge = aare.respondingAuthenticationValue?.bytes, HLS.challengeLengths.contains(challenge.count) else {
            throw DLMSClientError(code: .securityFailed, step: .associate, reason: "the AARE carries no HLS challenge of 8 to 64 bytes")
        }
        let exchange = HLSExchange(mechanism: mechanism, credentials: credentials, ownSystemTitle: ownSystemTitle,
                                   peerSystemTitle: association.serverSystemTitle, ownChallenge: ownChallenge, peerChallenge: challenge)
        let reply = try Self.securityStep(.associate) {
            try exchange.response(invocationCounter: mechanism == .gmac ? try self.takeInvocationCounter() : 0)
        }
        let answer: DLMSData?
        do {
            answer = try await action(CosemMethodDescriptor(classID: .associationLN, instance: OBISCode(0, 0, 40, 0, 0, 255), method: 1),
                                      parameters: .octetString(ByteBuffer(bytes: reply)))
        } catch let error as DLMSClientError where error.code == .actionFailed || error.code == .dataAccessFailed {
            throw DLMSClientError(code: .associationRejected, step: .associate, reason: "the meter refused our \(mechanism) reply: \(error.reason)")
        }
        guard case .octetString(let meterReply)? = answer else {
            throw DLMSClientError(code: .securityFailed, step: .associate, reason: "reply_to_HLS_authentication returned no octet string")
        }
        try Self.securityStep(.associate) { try exchange.verify(Array(meterReply.readableBytesView)) }
    }

    // MARK: - Ciphering

    private func takeInvocationCounter() throws -> UInt32 {
        guard ciphering != nil else { return 0 }
        return try ciphering!.transmitCounter.next()
    }

    private func protect(_ plain: ByteBuffer, kind: CipheringKind, step: DLMSClientError.Step) throws -> CipheredAPDU {
        try Self.securityStep(step) {
            let state = ciphering!
            let counter = try state.transmitCounter.next()
            return try state.cipher.protect(plain.getBytes(at: plain.readerIndex, length: plain.readableBytes)!, kind: kind, invocationCounter: counter)
        }
    }

    /// A service request of the association, ciphered and encoded in one step.
    private func protectedAPDU(_ plain: ByteBuffer, kind: CipheringKind, step: DLMSClientError.Step) throws -> ByteBuffer {
        try Self.securityStep(step) {
            let state = ciphering!
            return try state.cipher.protectedAPDU(plain, kind: kind, invocationCounter: try state.transmitCounter.next())
        }
    }

    /// A service response of the association, deciphered into a buffer.
    private func unprotectedAPDU(_ apdu: CipheredAPDU, step: DLMSClientError.Step) throws -> ByteBuffer {
        try Self.securityStep(step) {
            let state = ciphering!
            return try state.cipher.unprotectedAPDU(apdu, counterGuard: &state.receiveGuard)
        }
    }

    /// Runs a security computation, turning its errors into `DLMSClientError`s of `step`.
    static func securityStep<T>(_ step: DLMSClientError.Step, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as DLMSClientError {
            throw error
        } catch {
            throw DLMSClientError.wrapping(error, step: step)
        }
    }

    /// Ends the association and the link. Failures are logged, not thrown: the data read is kept.
    private func release() async {
        if connection.profile.releaseMode == .releaseRequest {
            do {
                let response = try await exchange(.rlrq(RLRQ(reason: 0)), step: .release, invokeID: nil, timeout: connection.timeouts.release)
                if case .rlre = response {} else {
                    logger.debug("unexpected answer to RLRQ", metadata: [LogMetadataKey.dlmsAPDU: "\(response.name)"])
                }
            } catch {
                logger.debug("release failed", metadata: [LogMetadataKey.error: "\(error)"])
            }
        }
        await closeLink()
    }

    private func closeLink() async {
        await framing.close(deadline: deadline(connection.timeouts.release))
    }

    // MARK: - Services

    /// Reads one attribute.
    ///
    /// - Throws: `DLMSClientError` with `.dataAccessFailed` (and `dataAccessResult`) when the meter refuses.
    public func get(_ attribute: CosemAttributeDescriptor, accessSelection: AccessSelection? = nil) async throws -> DLMSData {
        let id = takeInvokeID()
        let response = try await exchange(.getRequest(.normal(invokeID: id, attribute: attribute, accessSelection: accessSelection)), step: .get, invokeID: id.invokeID)
        guard case .getResponse(let get) = response else {
            throw DLMSClientError(code: .unexpectedResponse, step: .get, reason: "expected a GET-Response to \(attribute), got \(response.name)")
        }
        switch get {
        case .normal(_, .data(let data)):
            return data
        case .normal(_, .dataAccessResult(let result)):
            throw DLMSClientError(code: .dataAccessFailed, step: .get, reason: "\(attribute): \(result)", dataAccessResult: result)
        case .withDataBlock(_, let block):
            var raw = try await collectBlocks(first: block, invokeID: id, what: "\(attribute)")
            do {
                let data = try DLMSData.decode(from: &raw)
                try raw.expectFullyConsumed("block-transfer data")
                return data
            } catch {
                throw DLMSClientError.wrapping(error, step: .get)
            }
        case .withList:
            throw DLMSClientError(code: .unexpectedResponse, step: .get, reason: "a GET-Response-With-List to a single GET of \(attribute)")
        }
    }

    /// Reads several attributes in one request (when the meter granted multiple references;
    /// otherwise one request each). Results are values: a refused attribute does not fail the others.
    public func getWithList(_ attributes: [AttributeWithSelection]) async throws -> [GetDataResult] {
        guard attributes.count > 1, association.conformance.contains(.multipleReferences) else {
            var results: [GetDataResult] = []
            for attribute in attributes {
                do {
                    results.append(.data(try await get(attribute.attribute, accessSelection: attribute.accessSelection)))
                } catch let error as DLMSClientError where error.code == .dataAccessFailed {
                    results.append(.dataAccessResult(error.dataAccessResult ?? .otherReason))
                }
            }
            return results
        }
        let id = takeInvokeID()
        let response = try await exchange(.getRequest(.withList(invokeID: id, attributes: attributes)), step: .get, invokeID: id.invokeID)
        guard case .getResponse(let get) = response else {
            throw DLMSClientError(code: .unexpectedResponse, step: .get, reason: "expected a GET-Response-With-List, got \(response.name)")
        }
        let results: [GetDataResult]
        switch get {
        case .withList(_, let list):
            results = list
        case .withDataBlock(_, let block):
            var raw = try await collectBlocks(first: block, invokeID: id, what: "a list of \(attributes.count) attribute(s)")
            results = try Self.decodeGetDataResults(&raw)
        case .normal(_, .dataAccessResult(let result)):
            throw DLMSClientError(code: .dataAccessFailed, step: .get, reason: "GET with list: \(result)", dataAccessResult: result)
        case .normal:
            throw DLMSClientError(code: .unexpectedResponse, step: .get, reason: "a GET-Response-Normal to a GET with list")
        }
        guard results.count == attributes.count else {
            throw DLMSClientError(code: .unexpectedResponse, step: .get, reason: "\(results.count) result(s) for \(attributes.count) attribute(s)")
        }
        return results
    }

    /// Writes one attribute.
    ///
    /// - Throws: `DLMSClientError` with `.dataAccessFailed` when the meter refuses.
    public func set(_ attribute: CosemAttributeDescriptor, to value: DLMSData, accessSelection: AccessSelection? = nil) async throws {
        let id = takeInvokeID()
        let request = DLMSAPDU.setRequest(.normal(invokeID: id, attribute: attribute, accessSelection: accessSelection, value: value))
        if let limit = requestSizeLimit, request.encoded.readableBytes > limit, association.conformance.contains(.blockTransferWithSetOrWrite) {
            try await setInBlocks(attribute, value: value, accessSelection: accessSelection, invokeID: id, limit: limit)
            return
        }
        let response = try await exchange(request, step: .set, invokeID: id.invokeID)
        guard case .setResponse(.normal(_, let result)) = response else {
            throw DLMSClientError(code: .unexpectedResponse, step: .set, reason: "expected a SET-Response-Normal to \(attribute), got \(response.name)")
        }
        guard result == .success else {
            throw DLMSClientError(code: .dataAccessFailed, step: .set, reason: "\(attribute): \(result)", dataAccessResult: result)
        }
    }

    /// The largest plain request the meter takes in one APDU (its max PDU size, less the
    /// ciphering's header and tag), or `nil` before the association.
    private var requestSizeLimit: Int? {
        guard association.serverMaxReceivePDUSize > 0 else { return nil }
        return Int(association.serverMaxReceivePDUSize) - (ciphering == nil ? 0 : Self.cipheringOverhead)
    }

    /// Tag, length (up to 3 bytes), security header (5) and authentication tag (12).
    static let cipheringOverhead = 1 + 3 + 5 + 12

    /// SET with block transfer (Green Book 9.3.7): the encoded value in blocks that fit the
    /// meter's PDU size, each acknowledged, the last answered with the result.
    private func setInBlocks(_ attribute: CosemAttributeDescriptor, value: DLMSData, accessSelection: AccessSelection?,
                             invokeID id: InvokeIDAndPriority, limit: Int) async throws {
        var encoded = ByteBuffer()
        value.encode(into: &encoded)
        let bytes = Array(encoded.readableBytesView)
        // The first request's header (attribute, selection) is the larger one; its block length
        // may take up to 2 more bytes once the block is filled.
        let header = DLMSAPDU.setRequest(.withFirstDataBlock(invokeID: id, attribute: attribute, accessSelection: accessSelection,
                                                             block: DataBlockSA(lastBlock: false, blockNumber: 1, rawData: []))).encoded.readableBytes + 2
        let chunk = limit - header
        guard chunk >= 1 else {
            throw DLMSClientError(code: .invalidArgument, step: .set, reason: "the meter's PDU size \(association.serverMaxReceivePDUSize) leaves no room for SET blocks")
        }
        var offset = 0
        var blockNumber: UInt32 = 1
        while true {
            let end = min(offset + chunk, bytes.count)
            let last = end == bytes.count
            let block = DataBlockSA(lastBlock: last, blockNumber: blockNumber, rawData: DLMSBytes(bytes[offset..<end]))
            let request: SetRequest = blockNumber == 1
                ? .withFirstDataBlock(invokeID: id, attribute: attribute, accessSelection: accessSelection, block: block)
                : .withDataBlock(invokeID: id, block: block)
            let response = try await exchange(.setRequest(request), step: .set, invokeID: id.invokeID)
            switch response {
            case .setResponse(.dataBlock(_, let acknowledged)) where !last && acknowledged == blockNumber:
                offset = end
                blockNumber += 1
            case .setResponse(.lastDataBlock(_, let result, let acknowledged)) where last && acknowledged == blockNumber:
                guard result == .success else {
                    throw DLMSClientError(code: .dataAccessFailed, step: .set, reason: "\(attribute): \(result)", dataAccessResult: result)
                }
                return
            case .setResponse(.normal(_, let result)) where result != .success,
                 .setResponse(.lastDataBlock(_, let result, _)) where result != .success:
                throw DLMSClientError(code: .dataAccessFailed, step: .set, reason: "\(attribute), block \(blockNumber): \(result)", dataAccessResult: result)
            default:
                throw DLMSClientError(code: .unexpectedResponse, step: .set, reason: "\(attribute): unexpected \(response.name) to SET block \(blockNumber)")
            }
        }
    }

    /// Invokes one method.
    ///
    /// - Returns: the return parameters, if the meter sent any.
    /// - Throws: `DLMSClientError` with `.actionFailed` (and `actionResult`) when the meter refuses.
    @discardableResult
    public func action(_ method: CosemMethodDescriptor, parameters: DLMSData? = nil) async throws -> DLMSData? {
        let id = takeInvokeID()
        let response = try await exchange(.actionRequest(.normal(invokeID: id, method: method, parameters: parameters)), step: .action, invokeID: id.invokeID)
        guard case .actionResponse(.normal(_, let answer)) = response else {
            throw DLMSClientError(code: .unexpectedResponse, step: .action, reason: "expected an ACTION-Response-Normal to \(method), got \(response.name)")
        }
        guard answer.result == .success else {
            throw DLMSClientError(code: .actionFailed, step: .action, reason: "\(method): \(answer.result)", actionResult: answer.result)
        }
        switch answer.returnParameters {
        case .data(let data)?: return data
        case .dataAccessResult(let result)?:
            throw DLMSClientError(code: .dataAccessFailed, step: .action, reason: "\(method) return parameters: \(result)", dataAccessResult: result)
        case nil: return nil
        }
    }

    // MARK: - Request/response

    private func takeInvokeID() -> InvokeIDAndPriority {
        let id = InvokeIDAndPriority(invokeID: nextInvokeID, confirmed: true, highPriority: true)
        nextInvokeID = (nextInvokeID + 1) & 0x0F
        return id
    }

    private func deadline(_ duration: Duration) -> NIODeadline {
        .now() + TimeAmount(duration)
    }

    /// Sends a request and waits for the answer with the same invoke id (answers to earlier,
    /// repeated requests are dropped). Exception responses and confirmed service errors throw.
    private func exchange(_ request: DLMSAPDU, step: DLMSClientError.Step, invokeID: UInt8?, timeout: Duration? = nil) async throws -> DLMSAPDU {
        let stepDeadline = deadline(timeout ?? connection.timeouts.step)
        var encoded = request.encoded
        if let kind = ciphering?.kind, request.isCipherableService {
            encoded = try protectedAPDU(encoded, kind: kind, step: step)
        }
        if association.serverMaxReceivePDUSize > 0, encoded.readableBytes > Int(association.serverMaxReceivePDUSize) {
            throw DLMSClientError(code: .invalidArgument, step: step,
                                  reason: "the request is \(encoded.readableBytes) bytes, the meter accepts \(association.serverMaxReceivePDUSize)")
        }
        do {
            try await framing.send(encoded)
            var repeats = 0
            while true {
                // Over UDP each send waits one retransmission interval; the last one waits for
                // whatever is left of the step's deadline (a late answer to any copy is taken).
                let mayRepeat = framing.repeatsRequestsOnTimeout && repeats < connection.timeouts.retries
                let attemptDeadline = mayRepeat ? min(stepDeadline, deadline(connection.timeouts.retransmission)) : stepDeadline
                guard let raw = try await framing.receive(until: attemptDeadline) else {
                    if mayRepeat, NIODeadline.now() < stepDeadline {
                        repeats += 1
                        logger.debug("no answer; sending the request again", metadata: [LogMetadataKey.dlmsStep: "\(step)", LogMetadataKey.dlmsAttempt: "\(repeats + 1)"])
                        try await framing.send(encoded)
                        continue
                    }
                    throw DLMSClientError(code: .timeout, step: step, reason: "no answer within \(timeout ?? connection.timeouts.step)")
                }
                var response = try decodeResponse(raw, step: step)
                if ciphering != nil, case .ciphered(let ciphered) = response {
                    response = try decodeResponse(try unprotectedAPDU(ciphered, step: step), step: step)
                } else if ciphering != nil, response.isCipherableService {
                    throw DLMSClientError(code: .securityFailed, step: step, reason: "a \(response.name) in the clear on a ciphered association")
                }
                switch response {
                case .exceptionResponse(let exception):
                    throw DLMSClientError(code: .serviceError, step: step, reason: "\(exception)")
                case .confirmedServiceError(let error):
                    throw DLMSClientError(code: .serviceError, step: step, reason: "\(error)")
                default:
                    break
                }
                if let invokeID, let answered = response.invokeID, answered.invokeID != invokeID {
                    logger.debug("dropping an answer to an earlier request", metadata: [LogMetadataKey.dlmsInvokeID: "\(answered.invokeID)", LogMetadataKey.dlmsExpectedInvokeID: "\(invokeID)"])
                    continue
                }
                return response
            }
        } catch {
            throw DLMSClientError.wrapping(error, step: step)
        }
    }

    private func decodeResponse(_ raw: ByteBuffer, step: DLMSClientError.Step) throws -> DLMSAPDU {
        var buffer = raw
        let response = try DLMSAPDU.decode(from: &buffer)
        if buffer.readableBytes > 0 {
            guard connection.profile.ignoresTrailingBytes else {
                throw DLMSClientError(code: .malformedResponse, step: step, reason: "\(buffer.readableBytes) byte(s) after the \(response.name)")
            }
            logger.debug("ignoring bytes after the response", metadata: [LogMetadataKey.dlmsTrailingBytes: "\(buffer.readableBytes)"])
        }
        return response
    }

    /// Fetches the remaining blocks of a long GET response and returns the concatenated raw data.
    private func collectBlocks(first: DataBlockG, invokeID: InvokeIDAndPriority, what: String) async throws -> ByteBuffer {
        var raw = ByteBuffer()
        var block = first
        var expected: UInt32 = 1
        let limit = 16 << 20
        // Every block is in time for the step timeout, but the whole answer must be in time too.
        let requestDeadline = deadline(connection.timeouts.request)
        while true {
            guard block.blockNumber == expected else {
                throw DLMSClientError(code: .unexpectedResponse, step: .get, reason: "\(what): block \(block.blockNumber) where \(expected) was expected")
            }
            switch block.result {
            case .rawData(let bytes):
                guard raw.readableBytes + bytes.count <= limit else {
                    throw DLMSClientError(code: .malformedResponse, step: .get, reason: "\(what): more than \(limit) bytes in blocks")
                }
                raw.writeBytes(bytes.bytes)
            case .dataAccessResult(let result):
                throw DLMSClientError(code: .dataAccessFailed, step: .get, reason: "\(what), block \(block.blockNumber): \(result)", dataAccessResult: result)
            }
            if block.lastBlock { return raw }
            let remaining = requestDeadline - .now()
            let endless = DLMSClientError(code: .timeout, step: .get,
                                          reason: "\(what): the answer did not end within \(connection.timeouts.request) (\(expected) block(s), \(raw.readableBytes) byte(s))")
            guard remaining > .zero else { throw endless }
            let response: DLMSAPDU
            do {
                response = try await exchange(.getRequest(.next(invokeID: invokeID, blockNumber: block.blockNumber)), step: .get,
                                              invokeID: invokeID.invokeID, timeout: min(connection.timeouts.step, Duration.nanoseconds(remaining.nanoseconds)))
            } catch let error as DLMSClientError where error.code == .timeout && requestDeadline <= .now() {
                throw endless
            }
            guard case .getResponse(.withDataBlock(_, let next)) = response else {
                throw DLMSClientError(code: .unexpectedResponse, step: .get, reason: "\(what): expected block \(expected + 1), got \(response.name)")
            }
            block = next
            expected += 1
        }
    }

    /// Decodes `SEQUENCE OF Get-Data-Result` (the raw data of a GET-with-list in blocks).
    static func decodeGetDataResults(_ raw: inout ByteBuffer) throws -> [GetDataResult] {
        do {
            let count = try raw.readAXDRLength(limit: 1024, "get-data-result count")
            var results: [GetDataResult] = []
            results.reserveCapacity(count)
            for _ in 0..<count {
                let choice: UInt8 = try raw.readDLMSInteger("get-data-result choice")
                switch choice {
                case 0: results.append(.data(try DLMSData.decode(from: &raw)))
                case 1: results.append(.dataAccessResult(DataAccessResult(rawValue: try raw.readDLMSInteger("data-access-result"))))
                default: throw DLMSError.unexpectedTag(choice, in: "get-data-result")
                }
            }
            try raw.expectFullyConsumed("GET-with-list blocks")
            return results
        } catch {
            throw DLMSClientError.wrapping(error, step: .get)
        }
    }
}

extension DLMSAPDU {
    /// xDLMS services that a ciphered association protects (ACSE APDUs carry their own).
    var isCipherableService: Bool {
        switch self {
        case .getRequest, .getResponse, .setRequest, .setResponse, .actionRequest, .actionResponse, .eventNotification: true
        default: false
        }
    }

    /// The service's invoke id, for responses that carry one.
    var invokeID: InvokeIDAndPriority? {
        switch self {
        case .getResponse(let r): r.invokeID
        case .setResponse(.normal(let id, _)), .setResponse(.dataBlock(let id, _)), .setResponse(.lastDataBlock(let id, _, _)),
             .setResponse(.lastDataBlockWithList(let id, _, _)), .setResponse(.withList(let id, _)):
            id
        case .actionResponse(.normal(let id, _)), .actionResponse(.withPBlock(let id, _)), .actionResponse(.withList(let id, _)),
             .actionResponse(.nextPBlock(let id, _)):
            id
        default: nil
        }
    }

    /// A short name for messages.
    var name: String {
        switch self {
        case .aarq: "AARQ"
        case .aare: "AARE"
        case .rlrq: "RLRQ"
        case .rlre: "RLRE"
        case .initiateRequest: "InitiateRequest"
        case .initiateResponse: "InitiateResponse"
        case .getRequest: "GET-Request"
        case .getResponse: "GET-Response"
        case .setRequest: "SET-Request"
        case .setResponse: "SET-Response"
        case .actionRequest: "ACTION-Request"
        case .actionResponse: "ACTION-Response"
        case .eventNotification: "EventNotification"
        case .dataNotification: "DataNotification"
        case .exceptionResponse: "ExceptionResponse"
        case .confirmedServiceError: "ConfirmedServiceError"
        case .generalBlockTransfer: "GeneralBlockTransfer"
        case .ciphered: "ciphered APDU"
        }
    }
}
