import COSEM
import DLMSCodec
import DLMSSecurity
import Foundation
import NIOCore

/// The server side of one association with a simulated meter: one per transport connection or
/// HDLC link. Sans-IO: a complete request APDU in, the complete response APDU out.
///
/// Responses longer than the negotiated PDU size are sent as GET-Response-with-datablock; the
/// session keeps the rest (for profiles: a cursor, not the encoding) until the client fetches
/// it with GET-Request-next. Malformed or unexpected input is answered with an
/// ExceptionResponse (or a rejecting AARE), never a trap.
///
/// The transport's part: strip and add the wrapper header or the HDLC LLC header (E6 E6 00 in,
/// E6 E7 00 out), segment with HDLC as its parameters say, and close (or expect DISC) once
/// `isReleased`. Block sizes follow the negotiated PDU size: every response APDU, headers
/// included, is at most `negotiatedPDUSize` bytes (Gurux fills blocks the same way).
public struct COSEMServerSession: Sendable {
    public let meter: SimulatedMeter
    public let clientSAP: UInt16
    var association: AssociationContext?
    var pending: PendingGet?
    /// A SET with block transfer in progress (boxed: sessions stay small).
    var pendingSet: PendingSet?
    /// Ciphering and HLS of the current association.
    var security = ServerSecurityContext()
    public private(set) var isReleased = false

    /// The server SAP reported in associated_partners_id (the management logical device).
    static let serverSAP: UInt16 = 1
    /// The smallest client max-receive-PDU-size accepted: a data block then still carries a few bytes.
    static let minimumPDUSize: UInt16 = 16
    static let decodingLimits = DLMSDecodingLimits(maxDepth: 16, maxElements: 4096, maxByteLength: 65_535)

    public init(meter: SimulatedMeter, clientSAP: UInt16) {
        self.meter = meter
        self.clientSAP = clientSAP
    }

    public var isAssociated: Bool { association != nil }

    /// The PDU size negotiated in the AARQ/AARE exchange: the largest APDU either side sends. Nil before association.
    public var negotiatedPDUSize: Int? { association?.pduSize }

    /// The conformance negotiated in the AARQ/AARE exchange. Nil before association.
    public var negotiatedConformance: Conformance? { association?.conformance }

    /// Handles one complete request APDU (as received from wrapper or HDLC, LLC header already removed).
    /// Returns the complete response APDU, or nil when nothing must be sent (e.g. unconfirmed request).
    /// `now` is real time; the meter's clock is now + clockOffset.
    public mutating func handle(_ request: ByteBuffer, now: Date) -> ByteBuffer? {
        dispatch(request, now: now, deciphered: false)
    }

    /// A deciphered service request (see `handleCiphered`).
    mutating func handleService(_ request: ByteBuffer, now: Date) -> ByteBuffer? {
        dispatch(request, now: now, deciphered: true)
    }

    private mutating func dispatch(_ request: ByteBuffer, now: Date, deciphered: Bool) -> ByteBuffer? {
        guard let tag = request.getInteger(at: request.readerIndex, as: UInt8.self) else { return nil }
        // The PDU size bounds xDLMS APDUs; the AARQ that negotiates it (and RLRQ) is not bound by it.
        guard request.readableBytes <= Int(meter.configuration.maximumServerPDUSize) || tag == AARQ.tag || tag == RLRQ.tag else {
            return Self.exception(.serviceNotAllowed, .pduTooLong)
        }
        let apdu: DLMSAPDU
        do {
            apdu = try DLMSAPDU(exactly: request, limits: Self.decodingLimits)
        } catch {
            switch tag {
            case AARQ.tag:
                association = nil
                pending = nil
                return DLMSAPDU.aare(AARE(result: .rejectedPermanent, resultSourceDiagnostic: .init(source: .serviceUser, value: 1))).encoded
            case GetRequest.tag, SetRequest.tag, ActionRequest.tag, RLRQ.tag:
                return Self.exception(.serviceNotAllowed, .otherReason)
            case let tag where CipheredAPDU.isCipheredTag(tag):
                return Self.exception(.serviceNotAllowed, .decipheringError)
            default:
                return Self.exception(.serviceUnknown, .serviceNotSupported)
            }
        }
        switch apdu {
        case .getRequest, .setRequest, .actionRequest:
            // A ciphered association takes only ciphered services; an HLS association only
            // reply_to_HLS_authentication until the client proved itself.
            if security.isCiphered && !deciphered { return Self.exception(.serviceNotAllowed, .operationNotPossible) }
            if security.pendingHLS != nil {
                guard case .actionRequest(.normal(let id, let method, let parameters)) = apdu, method == Self.replyToHLS else {
                    return Self.exception(.serviceNotAllowed, .operationNotPossible)
                }
                return replyToHLS(invokeID: id, parameters: parameters)
            }
        case .ciphered(let ciphered) where !deciphered:
            return handleCiphered(ciphered, now: now)
        default:
            break
        }
        switch apdu {
        case .aarq(let aarq):
            return DLMSAPDU.aare(associate(aarq)).encoded
        case .rlrq:
            guard meter.configuration.answersReleaseRequest else { return nil }
            let userInformation = association.map { ACSEUserInformation.initiateResponse(Self.initiateResponse($0)) }
            association = nil
            pending = nil
            security = ServerSecurityContext()
            isReleased = true
            return DLMSAPDU.rlre(RLRE(reason: 0, userInformation: userInformation)).encoded
        case .getRequest(let request):
            guard let association else { return Self.exception(.serviceNotAllowed, .operationNotPossible) }
            let response = get(request, association: association, now: now)
            return request.invokeID.isConfirmed ? response : nil
        case .setRequest(let request):
            guard let association else { return Self.exception(.serviceNotAllowed, .operationNotPossible) }
            pending = nil
            return set(request, association: association, now: now)
        case .actionRequest(let request):
            guard let association else { return Self.exception(.serviceNotAllowed, .operationNotPossible) }
            pending = nil
            return action(request, association: association, now: now)
        case .eventNotification, .dataNotification, .exceptionResponse, .confirmedServiceError:
            return nil
        case .aare, .rlre, .initiateRequest, .initiateResponse, .getResponse, .setResponse, .actionResponse, .generalBlockTransfer, .ciphered:
            // Ciphered and general-block-transfer APDUs need security and GBT negotiation (not offered yet).
            return Self.exception(.serviceUnknown, .serviceNotSupported)
        }
    }

    // MARK: - Association (Green Book 9.3.2, 9.4.6.1)

    mutating func associate(_ aarq: AARQ) -> AARE {
        association = nil
        pending = nil
        security = ServerSecurityContext()
        func reject(_ diagnostic: Int, _ userInformation: ACSEUserInformation? = nil) -> AARE {
            AARE(applicationContextName: aarq.applicationContextName, result: .rejectedPermanent,
                 resultSourceDiagnostic: AssociateSourceDiagnostic(source: .serviceUser, value: diagnostic), userInformation: userInformation)
        }
        func initiateError(_ value: UInt8) -> AARE { reject(1, .confirmedServiceError(ConfirmedServiceError(service: 1, errorKind: 6, errorValue: value))) }

        if meter.refusesAssociation { return reject(ACSEDiagnostic.noReasonGiven) }
        // LN referencing, with or without ciphering; SN is not offered.
        guard aarq.applicationContextName == .logicalName || aarq.applicationContextName == .logicalNameWithCiphering else {
            return reject(ACSEDiagnostic.applicationContextNameNotSupported)
        }
        guard let role = ClientRole(sap: clientSAP) else { return reject(ACSEDiagnostic.noReasonGiven) }
        let mechanism = aarq.mechanismName ?? .lowest
        if let failure = authenticate(role: role, mechanism: mechanism, value: aarq.callingAuthenticationValue) { return reject(failure) }
        let secured: (context: ServerSecurityContext, initiate: InitiateRequest?, kind: CipheringKind?)
        switch secureAssociation(aarq, role: role) {
        case .success(let result): secured = result
        case .failure(.diagnostic(let diagnostic)): return reject(diagnostic)
        case .failure(.deciphering):
            // A ciphered InitiateRequest that does not decipher: rejected-permanent, acse-service-user
            // no-reason-given, and in the clear the ConfirmedServiceError initiateError /
            // application-reference / deciphering-error (0E 01 00 06) of the Green Book. The
            // acse-service-provider diagnostic has only the values 0-2: the 6 sent here before made
            // Gurux's client print "Invalid error code" and dlms-cosem's raise ValueError.
            return reject(ACSEDiagnostic.noReasonGiven, .confirmedServiceError(
                ConfirmedServiceError(service: 1, errorKind: 0, errorValue: ApplicationReferenceError.decipheringError)))
        }
        let initiate: InitiateRequest
        if let deciphered = secured.initiate {
            initiate = deciphered
        } else if case .initiateRequest(let plain)? = aarq.userInformation, !secured.context.isCiphered {
            initiate = plain
        } else {
            return reject(ACSEDiagnostic.noReasonGiven)
        }
        guard initiate.proposedDLMSVersion >= 6 else { return initiateError(1) }                   // dlms-version-too-low
        guard initiate.clientMaxReceivePDUSize >= Self.minimumPDUSize else { return initiateError(3) }  // pdu-size-too-short
        let offered: Conformance = meter.configuration.offersSetBlockTransfer ? Conformance.simulatedMeter.union(.blockTransferWithSetOrWrite) : .simulatedMeter
        let conformance = initiate.proposedConformance.intersection(offered)
        guard !conformance.isEmpty else { return initiateError(2) }                             // incompatible-conformance
        let context = AssociationContext(role: role, clientSAP: clientSAP, conformance: conformance,
                                         pduSize: Int(min(initiate.clientMaxReceivePDUSize, max(meter.configuration.maximumServerPDUSize, Self.minimumPDUSize))),
                                         mechanism: mechanism, dlmsVersion: 6)
        association = context
        security = secured.context
        isReleased = false
        meter.openedSession()
        let aare = AARE(applicationContextName: .logicalName, result: .accepted, resultSourceDiagnostic: .null,
                        userInformation: .initiateResponse(Self.initiateResponse(context)))
        guard secured.context.isCiphered || secured.context.pendingHLS != nil else { return aare }
        return secureAARE(aare, aarq: aarq, context: secured.context, initiateKind: secured.kind)
    }

    /// Checks the authentication a client role requires; returns the ACSE diagnostic of a failure.
    /// HLS mechanisms are not recognised yet; they will be checked here (with the challenge kept in the session).
    func authenticate(role: ClientRole, mechanism: AuthenticationMechanism, value: AuthenticationValue?) -> Int? {
        switch (role.requiresAuthentication, mechanism) {
        case (false, .lowest): return nil
        case (true, .lowest): return ACSEDiagnostic.authenticationMechanismNameRequired
        case (true, .low):
            guard let value else { return ACSEDiagnostic.authenticationRequired }
            return value.bytes == meter.configuration.lowLevelPassword ? nil : ACSEDiagnostic.authenticationFailure
        case (true, let hls) where HLSMechanism(hls) != nil:
            // Checked by `secureAssociation`; proven later through reply_to_HLS_authentication.
            return nil
        default: return ACSEDiagnostic.authenticationMechanismNameNotRecognised
        }
    }

    static func initiateResponse(_ context: AssociationContext) -> InitiateResponse {
        InitiateResponse(negotiatedDLMSVersion: context.dlmsVersion, negotiatedConformance: context.conformance,
                         serverMaxReceivePDUSize: UInt16(clamping: context.pduSize), vaaName: 0x0007)
    }

    // MARK: - GET (Green Book 9.3.6, block transfer 9.4.6.3)

    mutating func get(_ request: GetRequest, association: AssociationContext, now: Date) -> ByteBuffer {
        switch request {
        case .normal(let id, let attribute, let selection):
            pending = nil
            var stream: ResponseStream
            switch meter.read(attribute, selection: selection, association: association, now: now) {
            case .failure(let result): return DLMSAPDU.getResponse(.normal(invokeID: id, result: .dataAccessResult(result))).encoded
            case .data(let data): stream = ResponseStream(data: data)
            case .rows(let rows): stream = ResponseStream(rows: rows)
            }
            // C4 01 id 00 <data>
            let capacity = association.pduSize - 4
            stream.fill(upTo: capacity + 1)
            if stream.isBufferedOnly, stream.bufferedBytes <= capacity {
                var out = ByteBufferAllocator().buffer(capacity: 4 + stream.bufferedBytes)
                out.writeBytes([GetResponse.tag, 1, id.rawValue, 0])
                out.writeImmutableBuffer(stream.take(stream.bufferedBytes))
                return out
            }
            return firstBlock(id: id, stream: stream, association: association)
        case .next(let id, let blockNumber):
            guard var p = pending else {
                return Self.blockFailure(id: id, blockNumber: blockNumber, .noLongGetInProgress)
            }
            guard blockNumber == p.blockNumber else {
                pending = nil
                return Self.blockFailure(id: id, blockNumber: blockNumber, .dataBlockNumberInvalid)
            }
            p.invokeID = id
            return sendBlock(&p, association: association)
        case .withList(let id, let attributes):
            pending = nil
            var budget = SimulatedMeter.maximumRowsPerRead
            let results: [GetDataResult] = attributes.map { item in
                switch meter.read(item.attribute, selection: item.accessSelection, association: association, now: now) {
                case .failure(let r): return .dataAccessResult(r)
                case .data(let d): return .data(d)
                case .rows(let rows):
                    guard rows.count <= budget else { return .dataAccessResult(.temporaryFailure) }
                    budget -= rows.count
                    return .data(rows.data)
                }
            }
            let response = DLMSAPDU.getResponse(.withList(invokeID: id, results: results)).encoded
            guard response.readableBytes > association.pduSize else { return response }
            // The raw data of a with-list block transfer is the SEQUENCE OF Get-Data-Result.
            var body = response
            body.moveReaderIndex(forwardBy: 3)
            return firstBlock(id: id, stream: ResponseStream(bytes: body), association: association)
        }
    }

    private mutating func firstBlock(id: InvokeIDAndPriority, stream: ResponseStream, association: AssociationContext) -> ByteBuffer {
        guard association.conformance.contains(.blockTransferWithGetOrRead) else {
            return Self.exception(.serviceNotAllowed, .pduTooLong)
        }
        var p = PendingGet(invokeID: id, blockNumber: 0, stream: stream)
        return sendBlock(&p, association: association)
    }

    /// Sends block `p.blockNumber + 1` and keeps the rest pending (or drops it after the last block).
    private mutating func sendBlock(_ p: inout PendingGet, association: AssociationContext) -> ByteBuffer {
        // C4 02 id | last-block | block-number(4) | 00 raw-data | length | bytes
        let size = association.pduSize
        let raw = size - 10 <= 0x7F ? size - 10 : (size - 11 <= 0xFF ? size - 11 : size - 12)
        let chunk = p.stream.take(max(raw, 1))
        p.blockNumber += 1
        let last = p.stream.isExhausted
        var out = ByteBufferAllocator().buffer(capacity: size)
        out.writeBytes([GetResponse.tag, 2, p.invokeID.rawValue, last ? 1 : 0])
        out.writeInteger(p.blockNumber)
        out.writeInteger(UInt8(0))
        out.writeAXDROctetString(chunk)
        pending = last ? nil : p
        return out
    }

    static func blockFailure(id: InvokeIDAndPriority, blockNumber: UInt32, _ result: DataAccessResult) -> ByteBuffer {
        DLMSAPDU.getResponse(.withDataBlock(invokeID: id, block: DataBlockG(lastBlock: true, blockNumber: blockNumber, result: .dataAccessResult(result)))).encoded
    }

    // MARK: - SET and ACTION

    mutating func set(_ request: SetRequest, association: AssociationContext, now: Date) -> ByteBuffer? {
        let response: SetResponse
        let id: InvokeIDAndPriority
        switch request {
        case .normal(let i, let attribute, let selection, let value):
            id = i
            pendingSet = nil
            response = .normal(invokeID: i, result: meter.write(attribute, selection: selection, value: value, association: association, now: now))
        case .withList(let i, let attributes, let values):
            id = i
            pendingSet = nil
            guard attributes.count == values.count else { return Self.exception(.serviceNotAllowed, .otherReason) }
            response = .withList(invokeID: i, results: zip(attributes, values).map {
                meter.write($0.attribute, selection: $0.accessSelection, value: $1, association: association, now: now)
            })
        case .withFirstDataBlock(let i, let attribute, let selection, let block):
            // Green Book 9.3.7: SET with block transfer; blocks numbered from 1.
            id = i
            guard association.conformance.contains(.blockTransferWithSetOrWrite) else { return Self.exception(.serviceNotAllowed, .serviceNotSupported) }
            guard block.blockNumber == 1 else {
                pendingSet = nil
                response = .lastDataBlock(invokeID: i, result: .dataBlockNumberInvalid, blockNumber: block.blockNumber)
                break
            }
            pendingSet = PendingSet(attribute: attribute, selection: selection)
            response = receiveSetBlock(block, invokeID: i, association: association, now: now)
        case .withDataBlock(let i, let block):
            id = i
            guard pendingSet != nil else {
                response = .lastDataBlock(invokeID: i, result: .noLongSetInProgress, blockNumber: block.blockNumber)
                break
            }
            response = receiveSetBlock(block, invokeID: i, association: association, now: now)
        case .withListAndFirstDataBlock(let i, _, let block):
            id = i
            pendingSet = nil
            // SET-with-list in blocks: not offered (the simulated objects take short values).
            response = .lastDataBlock(invokeID: i, result: .otherReason, blockNumber: block.blockNumber)
        }
        return id.isConfirmed ? DLMSAPDU.setResponse(response).encoded : nil
    }

    /// Appends a SET block; the last one is decoded and written.
    mutating func receiveSetBlock(_ block: DataBlockSA, invokeID: InvokeIDAndPriority, association: AssociationContext, now: Date) -> SetResponse {
        guard let transfer = pendingSet, block.blockNumber == transfer.nextBlock else {
            pendingSet = nil
            return .lastDataBlock(invokeID: invokeID, result: .dataBlockNumberInvalid, blockNumber: block.blockNumber)
        }
        guard transfer.data.readableBytes + block.rawData.bytes.count <= PendingSet.maximumLength else {
            pendingSet = nil
            return .lastDataBlock(invokeID: invokeID, result: .otherReason, blockNumber: block.blockNumber)
        }
        transfer.data.writeBytes(block.rawData.bytes)
        transfer.nextBlock += 1
        guard block.lastBlock else { return .dataBlock(invokeID: invokeID, blockNumber: block.blockNumber) }
        pendingSet = nil
        var raw = transfer.data
        guard let value = try? DLMSData.decode(from: &raw, limits: Self.decodingLimits), raw.readableBytes == 0 else {
            return .lastDataBlock(invokeID: invokeID, result: .typeUnmatched, blockNumber: block.blockNumber)
        }
        let result = meter.write(transfer.attribute, selection: transfer.selection, value: value, association: association, now: now)
        return .lastDataBlock(invokeID: invokeID, result: result, blockNumber: block.blockNumber)
    }

    /// The security setup's key_agreement (class 64 method 3), handled by the session: it needs
    /// the association's ciphering and the client's system title.
    static let keyAgreement = CosemMethodDescriptor(classID: .securitySetup, instance: .securitySetup, method: 3)

    func action(_ request: ActionRequest, association: AssociationContext, now: Date) -> ByteBuffer? {
        let response: ActionResponse
        let id: InvokeIDAndPriority
        switch request {
        case .normal(let i, let method, let parameters) where method == Self.keyAgreement:
            id = i
            response = .normal(invokeID: i, response: keyAgreement(parameters: parameters, association: association))
        case .normal(let i, let method, let parameters):
            id = i
            response = .normal(invokeID: i, response: ActionResponseWithOptionalData(
                result: meter.invoke(method, parameters: parameters, association: association, now: now)))
        case .withList(let i, let methods, let parameters):
            id = i
            guard methods.count == parameters.count else { return Self.exception(.serviceNotAllowed, .otherReason) }
            response = .withList(invokeID: i, responses: zip(methods, parameters).map {
                ActionResponseWithOptionalData(result: meter.invoke($0, parameters: $1, association: association, now: now))
            })
        case .nextPBlock, .withFirstPBlock, .withListAndFirstPBlock, .withPBlock:
            // block-transfer-with-action is not offered in the conformance block.
            return Self.exception(.serviceNotAllowed, .serviceNotSupported)
        }
        return id.isConfirmed ? DLMSAPDU.actionResponse(response).encoded : nil
    }

    // MARK: - Exceptions (Green Book 9.3.5 ExceptionResponse)

    enum StateError: UInt8 { case serviceNotAllowed = 1, serviceUnknown = 2 }
    enum ServiceError: UInt8 {
        case operationNotPossible = 1, serviceNotSupported = 2, otherReason = 3, pduTooLong = 4, decipheringError = 5, invocationCounterError = 6
    }

    static func exception(_ state: StateError, _ service: ServiceError, invocationCounter: UInt32? = nil) -> ByteBuffer {
        DLMSAPDU.exceptionResponse(ExceptionResponse(stateError: state.rawValue, serviceError: service.rawValue, invocationCounter: invocationCounter)).encoded
    }
}

/// ACSE service-user diagnostics (IEC 61131-2 / Green Book 9.4.2, `Associate-source-diagnostic`).
enum ACSEDiagnostic {
    static let noReasonGiven = 1
    static let applicationContextNameNotSupported = 2
    static let authenticationMechanismNameNotRecognised = 11
    static let authenticationMechanismNameRequired = 12
    static let authenticationFailure = 13
    static let authenticationRequired = 14
    static let callingAPTitleNotRecognised = 3
}

/// ServiceError application-reference values (Green Book, `ConfirmedServiceError`).
enum ApplicationReferenceError {
    /// The ciphered xDLMS InitiateRequest did not verify (wrong key, system title or tampering).
    static let decipheringError: UInt8 = 6
}

/// A long GET in progress: the last block number sent and what remains to send.
/// The blocks of a SET received so far (a reference: a session stays small while none is pending,
/// and only the session that owns it touches it).
final class PendingSet: @unchecked Sendable {
    static let maximumLength = 65_535
    let attribute: CosemAttributeDescriptor
    let selection: AccessSelection?
    var data = ByteBuffer()
    var nextBlock: UInt32 = 1

    init(attribute: CosemAttributeDescriptor, selection: AccessSelection?) {
        self.attribute = attribute
        self.selection = selection
    }
}

struct PendingGet: Sendable {
    var invokeID: InvokeIDAndPriority
    var blockNumber: UInt32
    var stream: ResponseStream
}

/// The encoded bytes of a response, produced on demand: a ready buffer, or a profile selection
/// whose rows are encoded as the blocks are cut (so a 60-day profile never sits in memory whole).
struct ResponseStream: Sendable {
    private var buffered: ByteBuffer
    private var rows: ProfileRows?
    private var nextRow: Int

    init(bytes: ByteBuffer) {
        buffered = bytes
        rows = nil
        nextRow = 0
    }

    init(data: DLMSData) {
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        data.encode(into: &buffer)
        self.init(bytes: buffer)
    }

    init(rows: ProfileRows) {
        buffered = ByteBufferAllocator().buffer(capacity: 256)
        buffered.writeInteger(DLMSDataType.array.rawValue)
        buffered.writeAXDRLength(rows.count)
        self.rows = rows
        nextRow = rows.rows.lowerBound
    }

    var bufferedBytes: Int { buffered.readableBytes }
    /// Nothing is left to encode: all remaining bytes are buffered.
    var isBufferedOnly: Bool { rows.map { nextRow >= $0.rows.upperBound } ?? true }
    var isExhausted: Bool { buffered.readableBytes == 0 && isBufferedOnly }

    /// Encodes rows until at least `count` bytes are buffered or nothing is left.
    mutating func fill(upTo count: Int) {
        guard let rows else { return }
        while buffered.readableBytes < count, nextRow < rows.rows.upperBound {
            rows.row(nextRow).encode(into: &buffered)
            nextRow += 1
        }
    }

    /// Up to `count` bytes, from the front.
    mutating func take(_ count: Int) -> ByteBuffer {
        fill(upTo: count)
        let slice = buffered.readSlice(length: min(count, buffered.readableBytes)) ?? ByteBuffer()
        if rows != nil {
            // Keep only the unsent tail: the buffer never grows beyond a block and a row.
            var tail = ByteBufferAllocator().buffer(capacity: buffered.readableBytes + 256)
            tail.writeImmutableBuffer(buffered)
            buffered = tail
        }
        return slice
    }
}
