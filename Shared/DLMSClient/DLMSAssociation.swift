import COSEM
import DLMSCodec
import DLMSSecurity
import NIOCore

/// The client side of one DLMS/COSEM application association as a sans-IO state machine: the
/// mirror of `COSEMServerSession`, in the style of `HDLCConnection`. The shell (``DLMSClient``)
/// opens the link, passes events in — a request, an APDU received, the timer — with the time
/// they happened, and carries out the returned ``Action``: send an APDU and wait until a
/// deadline, keep waiting, or take the outcome.
///
/// What the machine does (Green Book 9.3, 9.4):
/// - AARQ/AARE with LLS, HLS (mechanisms 3–7; passes 3 and 4 through `reply_to_HLS_authentication`)
///   and ciphering (suites 0–2, global then dedicated keys), refusals with the AARE's diagnostic
///   (``DLMSClientError/AssociationDiagnostic``);
/// - invoke ids, and answers to earlier requests dropped by them;
/// - GET (normal, with list) with block transfer reassembly, SET in blocks when the value does
///   not fit the meter's PDU, ACTION, RLRQ;
/// - General-Block-Transfer (Green Book 9.3.5) reassembly of any answer, acknowledged per window;
/// - deadlines as values: each exchange has the step timeout, each request (all its blocks and
///   GBT windows) the request timeout, the association as a whole the association timeout;
///   a wait past any of them fails with `timeout`, and so does an answer that arrives after
///   the request's deadline — a meter that sends blocks without end cannot hold the session;
/// - bounds on what one response may become: 16 MiB of blocks, and
///   ``ManufacturerProfile/maximumResponseElements`` values once decoded, checked by an
///   allocation-free walk before anything is decoded (`responseTooLarge`);
/// - UDP: a request whose answer did not come within the retransmission interval is sent again.
///
/// Errors are thrown as ``DLMSClientError`` naming the step. After a failed service request
/// the association stays usable (a late answer to it is dropped by its invoke id); after a
/// failed association it must be opened again.
public struct DLMSAssociation: Sendable {
    /// What the shell must do next.
    public enum Action: Sendable {
        /// Send this APDU (already ciphered if the association is), then pass the answer to
        /// ``apduReceived(_:now:)``, or call ``timerFired(now:)`` if none came by `deadline`.
        case send(ByteBuffer, deadline: NIODeadline)
        /// Send nothing; keep waiting for an answer until `deadline` (an answer to an earlier
        /// request was dropped, a GBT window is still streaming, or the timer fired early).
        case wait(deadline: NIODeadline)
        /// The operation is finished.
        case completed(Outcome)
    }

    /// What a finished operation produced.
    public enum Outcome: Sendable {
        /// The association is open (``association`` holds what the AARE granted).
        case associated
        /// The value a GET returned.
        case data(DLMSData)
        /// The results of a GET with list, one per attribute.
        case dataResults([GetDataResult])
        /// A SET succeeded.
        case written
        /// An ACTION succeeded, with its return parameters if the meter sent any.
        case invoked(DLMSData?)
        /// The association is released; `unexpectedAnswer` names what the meter answered an
        /// RLRQ with when it was not an RLRE.
        case released(unexpectedAnswer: String?)
    }

    /// The largest answer taken in blocks (GET data blocks, GBT): 16 MiB.
    public static let maximumBlockBytes = 16 << 20

    /// Tag, length (up to 3 bytes), security header (5) and authentication tag (12).
    static let cipheringOverhead = 1 + 3 + 5 + 12

    // MARK: - State

    /// The ciphering state of a secured association.
    struct Ciphering: Sendable {
        var cipher: DLMSCipher
        var transmitCounter: InvocationCounter
        var receiveGuard = InvocationCounterGuard()
        /// Global until the association is up; dedicated afterwards when a dedicated key was sent.
        var kind: CipheringKind = .global
    }

    /// A GET answer arriving in data blocks (Green Book 9.3.6).
    struct BlockReassembly: Sendable {
        var raw = ByteBuffer()
        /// The block number expected next.
        var expected: UInt32 = 1
    }

    /// A General-Block-Transfer answer arriving in blocks.
    struct GBTReassembly: Sendable {
        var apdu = ByteBuffer()
        var expected: UInt16 = 1
        /// Our own block number, counted in our acknowledgements.
        var ownBlockNumber: UInt16 = 1
        var blocks = 0
    }

    /// A SET whose value goes in blocks (Green Book 9.3.7).
    struct SetTransfer: Sendable {
        var attribute: CosemAttributeDescriptor
        var accessSelection: AccessSelection?
        var bytes: [UInt8]
        var chunk: Int
        var offset = 0
        var blockNumber: UInt32 = 1
    }

    /// What the request in flight is for.
    enum Operation: Sendable {
        case associate(ownChallenge: [UInt8])
        case replyToHLS(HLSExchange)
        case get(CosemAttributeDescriptor, blocks: BlockReassembly?)
        case getWithList(count: Int, blocks: BlockReassembly?)
        case set(CosemAttributeDescriptor)
        case setInBlocks(SetTransfer)
        case action(CosemMethodDescriptor)
        case release
    }

    /// One request in flight with its deadlines.
    struct Exchange: Sendable {
        var operation: Operation
        var step: DLMSClientError.Step
        /// The invoke id answers must carry (`nil` for ACSE APDUs).
        var invokeID: UInt8?
        /// The APDU as sent, for repetition over UDP.
        var sent: ByteBuffer
        var repeats = 0
        /// When the request (all its blocks) started, and its own deadline.
        var requestDeadline: NIODeadline
        /// The deadline of the current exchange (this block).
        var stepDeadline: NIODeadline
        /// What the shell waits for now: the nearest of every deadline (and of the next UDP repetition).
        var waitDeadline: NIODeadline
        var gbt: GBTReassembly?
    }

    enum State: Sendable {
        /// New, or after a failed association.
        case unassociated
        /// Open, no request in flight.
        case associated
        /// One request in flight.
        case exchanging(Exchange)
        case released
        /// Transient, while an exchange's buffers are mutated in place.
        case modifying

        var name: String {
            switch self {
            case .unassociated: "not associated"
            case .associated: "associated"
            case .exchanging(let exchange): "busy with a \(exchange.step) request"
            case .released: "released"
            case .modifying: "being modified"
            }
        }
    }

    public let connection: MeterConnection
    /// Whether requests without an answer in time are sent again (UDP: the link does not repeat them).
    public let repeatsRequests: Bool
    /// What the AARE granted (``DLMSClient/Association/hdlcParameters`` stays for the shell).
    public private(set) var association = DLMSClient.Association(conformance: [], serverMaxReceivePDUSize: 0, dlmsVersion: 6,
                                                                 hdlcParameters: nil, serverSystemTitle: nil)
    private(set) var state: State = .unassociated
    private var ciphering: Ciphering?
    private var nextInvokeID: UInt8 = 0
    private let firstInvocationCounter: UInt32
    /// Set by ``associate(now:)``: nothing of the association may last beyond it.
    private(set) var associationDeadline: NIODeadline?

    /// - Parameters:
    ///   - connection: the meter: authentication, security, profile and timeouts.
    ///   - firstInvocationCounter: the first transmit invocation counter of a ciphered association.
    ///   - repeatsRequests: send a request again after `timeouts.retransmission` without an
    ///     answer, up to `timeouts.retries` times (UDP). Default: false.
    public init(connection: MeterConnection, firstInvocationCounter: UInt32 = 0, repeatsRequests: Bool = false) {
        self.connection = connection
        self.firstInvocationCounter = firstInvocationCounter
        self.repeatsRequests = repeatsRequests
    }

    /// Whether the association is ciphered (its service APDUs are glo- or ded-ciphered).
    public var isCiphered: Bool { ciphering != nil }

    /// Whether the association is open and idle.
    public var isAssociated: Bool {
        if case .associated = state { return true }
        return false
    }

    /// The step of the request in flight, if any.
    public var step: DLMSClientError.Step? {
        if case .exchanging(let exchange) = state { return exchange.step }
        return nil
    }

    /// The deadline the shell waits for while a request is in flight.
    public var deadline: NIODeadline? {
        if case .exchanging(let exchange) = state { return exchange.waitDeadline }
        return nil
    }

    // MARK: - Events: requests

    /// Opens the association: AARQ (the link below must be up).
    ///
    /// - Throws: `DLMSClientError` `.invalidArgument` for authentication settings that do not fit
    ///   together, or when the association is not new.
    public mutating func associate(now: NIODeadline) throws -> Action {
        guard case .unassociated = state else { throw invalidState("associate", step: .associate) }
        associationDeadline = now + TimeAmount(connection.timeouts.association)
        do {
            return try startAssociation(now: now)
        } catch {
            ciphering = nil
            throw DLMSClientError.wrapping(error, step: .associate)
        }
    }

    /// Reads one attribute. Completes with ``Outcome/data(_:)``.
    ///
    /// - Throws: `DLMSClientError` with `.dataAccessFailed` (and `dataAccessResult`) when the meter refuses.
    public mutating func get(_ attribute: CosemAttributeDescriptor, accessSelection: AccessSelection? = nil, now: NIODeadline) throws -> Action {
        let id = try takeInvokeID(for: .get)
        return try start(.getRequest(.normal(invokeID: id, attribute: attribute, accessSelection: accessSelection)),
                         operation: .get(attribute, blocks: nil), step: .get, invokeID: id.invokeID, now: now)
    }

    /// Reads several attributes in one request. Completes with ``Outcome/dataResults(_:)``.
    /// The caller decides whether the meter granted multiple references.
    public mutating func getWithList(_ attributes: [AttributeWithSelection], now: NIODeadline) throws -> Action {
        let id = try takeInvokeID(for: .get)
        return try start(.getRequest(.withList(invokeID: id, attributes: attributes)),
                         operation: .getWithList(count: attributes.count, blocks: nil), step: .get, invokeID: id.invokeID, now: now)
    }

    /// Writes one attribute, in blocks when it does not fit the meter's PDU and the meter
    /// granted block transfer with SET. Completes with ``Outcome/written``.
    public mutating func set(_ attribute: CosemAttributeDescriptor, to value: DLMSData, accessSelection: AccessSelection? = nil,
                             now: NIODeadline) throws -> Action {
        let id = try takeInvokeID(for: .set)
        let request = DLMSAPDU.setRequest(.normal(invokeID: id, attribute: attribute, accessSelection: accessSelection, value: value))
        if let limit = requestSizeLimit, request.encoded.readableBytes > limit, association.conformance.contains(.blockTransferWithSetOrWrite) {
            var encoded = ByteBuffer()
            value.encode(into: &encoded)
            // The first request's header (attribute, selection) is the larger one; its block length
            // may take up to 2 more bytes once the block is filled.
            let header = DLMSAPDU.setRequest(.withFirstDataBlock(invokeID: id, attribute: attribute, accessSelection: accessSelection,
                                                                 block: DataBlockSA(lastBlock: false, blockNumber: 1, rawData: []))).encoded.readableBytes + 2
            let chunk = limit - header
            guard chunk >= 1 else {
                throw DLMSClientError(code: .invalidArgument, step: .set, reason: "the meter's PDU size \(association.serverMaxReceivePDUSize) leaves no room for SET blocks")
            }
            let transfer = SetTransfer(attribute: attribute, accessSelection: accessSelection, bytes: Array(encoded.readableBytesView), chunk: chunk)
            return try start(Self.setBlockRequest(transfer, invokeID: id), operation: .setInBlocks(transfer), step: .set, invokeID: id.invokeID, now: now)
        }
        return try start(request, operation: .set(attribute), step: .set, invokeID: id.invokeID, now: now)
    }

    /// Invokes one method. Completes with ``Outcome/invoked(_:)``.
    ///
    /// - Throws: `DLMSClientError` with `.actionFailed` (and `actionResult`) when the meter refuses.
    public mutating func action(_ method: CosemMethodDescriptor, parameters: DLMSData? = nil, now: NIODeadline) throws -> Action {
        let id = try takeInvokeID(for: .action)
        return try start(.actionRequest(.normal(invokeID: id, method: method, parameters: parameters)),
                         operation: .action(method), step: .action, invokeID: id.invokeID, now: now)
    }

    /// Ends the association: RLRQ (unless the profile ends with the link only), waiting at most
    /// `timeouts.release`. Completes with ``Outcome/released(unexpectedAnswer:)``.
    public mutating func release(now: NIODeadline) throws -> Action {
        switch state {
        case .associated:
            break
        case .unassociated, .released:
            state = .released
            return .completed(.released(unexpectedAnswer: nil))
        case .exchanging, .modifying:
            throw invalidState("release", step: .release)
        }
        guard connection.profile.releaseMode == .releaseRequest else {
            state = .released
            return .completed(.released(unexpectedAnswer: nil))
        }
        let deadline = now + TimeAmount(connection.timeouts.release)
        return try send(.rlrq(RLRQ(reason: 0)), operation: .release, step: .release, invokeID: nil, now: now,
                        stepDeadline: deadline, requestDeadline: deadline)
    }

    // MARK: - Events: answers and time

    /// An APDU from the meter (framing removed).
    ///
    /// - Returns: what to do next.
    /// - Throws: `DLMSClientError` of the request's step; the request is over.
    public mutating func apduReceived(_ apdu: ByteBuffer, now: NIODeadline) throws -> Action {
        guard case .exchanging(var exchange) = state else {
            throw DLMSClientError(code: .unexpectedResponse, step: .get, reason: "an APDU from the meter with no request in flight")
        }
        state = .modifying
        do {
            let action = try handle(apdu, in: &exchange, now: now)
            if case .modifying = state { state = .exchanging(exchange) }
            return action
        } catch {
            fail(exchange)
            throw DLMSClientError.wrapping(error, step: exchange.step)
        }
    }

    /// The deadline the shell waited for passed (or the shell woke up for another reason).
    ///
    /// - Returns: `.wait` when `now` is before the deadline; `.send` of the same request again
    ///   over UDP while repetitions are left.
    /// - Throws: `DLMSClientError` `.timeout` of the request's step; the request is over.
    public mutating func timerFired(now: NIODeadline) throws -> Action {
        guard case .exchanging(var exchange) = state else { throw invalidState("timerFired", step: .get) }
        guard now >= exchange.waitDeadline else { return .wait(deadline: exchange.waitDeadline) }
        if let error = deadlineError(exchange, now: now) {
            fail(exchange)
            throw error
        }
        if mayRepeat(exchange), now < exchange.stepDeadline {
            exchange.repeats += 1
            exchange.waitDeadline = waitDeadline(exchange, now: now)
            state = .exchanging(exchange)
            return .send(exchange.sent, deadline: exchange.waitDeadline)
        }
        fail(exchange)
        throw DLMSClientError(code: .timeout, step: exchange.step, reason: "no answer within \(stepTimeout(exchange))")
    }

    /// The transport or the link failed under the request in flight: the request is over.
    ///
    /// - Returns: the error to throw, for the request's step.
    public mutating func transportFailed(_ error: any Error) -> DLMSClientError {
        guard case .exchanging(let exchange) = state else { return DLMSClientError.wrapping(error, step: .get) }
        fail(exchange)
        return DLMSClientError.wrapping(error, step: exchange.step)
    }

    // MARK: - Sending

    private mutating func start(_ request: DLMSAPDU, operation: Operation, step: DLMSClientError.Step, invokeID: UInt8?,
                                now: NIODeadline) throws -> Action {
        guard case .associated = state else { throw invalidState("\(step)", step: step) }
        let timeouts = connection.timeouts
        let requestDeadline = now + TimeAmount(timeouts.request)
        do {
            return try send(request, operation: operation, step: step, invokeID: invokeID, now: now,
                            stepDeadline: now + TimeAmount(timeouts.step), requestDeadline: requestDeadline)
        } catch {
            throw DLMSClientError.wrapping(error, step: step)
        }
    }

    /// Encodes (and ciphers) a request and enters the exchange.
    private mutating func send(_ request: DLMSAPDU, operation: Operation, step: DLMSClientError.Step, invokeID: UInt8?, now: NIODeadline,
                               stepDeadline: NIODeadline, requestDeadline: NIODeadline, gbt: GBTReassembly? = nil) throws -> Action {
        var encoded = request.encoded
        if let kind = ciphering?.kind, request.isCipherableService {
            encoded = try protectedAPDU(encoded, kind: kind)
        }
        if association.serverMaxReceivePDUSize > 0, encoded.readableBytes > Int(association.serverMaxReceivePDUSize) {
            throw DLMSClientError(code: .invalidArgument, step: step,
                                  reason: "the request is \(encoded.readableBytes) bytes, the meter accepts \(association.serverMaxReceivePDUSize)")
        }
        return transmit(encoded, operation: operation, step: step, invokeID: invokeID, now: now,
                        stepDeadline: stepDeadline, requestDeadline: requestDeadline, gbt: gbt)
    }

    private mutating func transmit(_ encoded: ByteBuffer, operation: Operation, step: DLMSClientError.Step, invokeID: UInt8?, now: NIODeadline,
                                   stepDeadline: NIODeadline, requestDeadline: NIODeadline, gbt: GBTReassembly? = nil) -> Action {
        var exchange = Exchange(operation: operation, step: step, invokeID: invokeID, sent: encoded, requestDeadline: requestDeadline,
                                stepDeadline: min(stepDeadline, requestDeadline), waitDeadline: now, gbt: gbt)
        exchange.waitDeadline = waitDeadline(exchange, now: now)
        state = .exchanging(exchange)
        return .send(encoded, deadline: exchange.waitDeadline)
    }

    /// The next request of the same exchange (a block, the HLS reply): a new step deadline within
    /// the request's.
    private mutating func continueWith(_ request: DLMSAPDU, operation: Operation, invokeID: UInt8?, in exchange: Exchange,
                                       now: NIODeadline) throws -> Action {
        try send(request, operation: operation, step: exchange.step, invokeID: invokeID, now: now,
                 stepDeadline: now + TimeAmount(connection.timeouts.step), requestDeadline: exchange.requestDeadline)
    }

    private func mayRepeat(_ exchange: Exchange) -> Bool {
        repeatsRequests && exchange.repeats < connection.timeouts.retries && exchange.gbt == nil
    }

    /// The nearest of the step's, the request's and the association's deadlines, and over UDP of
    /// the next repetition (the last one waits for the rest of the step).
    private func waitDeadline(_ exchange: Exchange, now: NIODeadline) -> NIODeadline {
        var deadline = exchange.stepDeadline
        if let associationDeadline, exchange.step != .release { deadline = min(deadline, associationDeadline) }
        if mayRepeat(exchange) { deadline = min(deadline, now + TimeAmount(connection.timeouts.retransmission)) }
        return deadline
    }

    private func stepTimeout(_ exchange: Exchange) -> Duration {
        exchange.step == .release ? connection.timeouts.release : connection.timeouts.step
    }

    /// The timeout of a request or association whose deadline passed at `now`, if one did.
    private func deadlineError(_ exchange: Exchange, now: NIODeadline) -> DLMSClientError? {
        guard exchange.step != .release else { return nil }
        if let associationDeadline, now >= associationDeadline {
            return DLMSClientError(code: .timeout, step: exchange.step,
                                   reason: "the association did not end within \(connection.timeouts.association)")
        }
        guard now >= exchange.requestDeadline else { return nil }
        return DLMSClientError(code: .timeout, step: exchange.step,
                               reason: "\(Self.describe(exchange.operation)): the answer did not end within \(connection.timeouts.request)\(Self.progress(exchange))")
    }

    /// The request's state, leaving the exchange after a failure.
    private mutating func fail(_ exchange: Exchange) {
        switch exchange.operation {
        case .associate, .replyToHLS:
            state = .unassociated
            ciphering = nil
        case .release:
            state = .released
        case .get, .getWithList, .set, .setInBlocks, .action:
            state = .associated
        }
    }

    private mutating func takeInvokeID(for step: DLMSClientError.Step) throws -> InvokeIDAndPriority {
        guard case .associated = state else { throw invalidState("\(step)", step: step) }
        let id = InvokeIDAndPriority(invokeID: nextInvokeID, confirmed: true, highPriority: true)
        nextInvokeID = (nextInvokeID + 1) & 0x0F
        return id
    }

    private func invalidState(_ event: String, step: DLMSClientError.Step) -> DLMSClientError {
        DLMSClientError(code: .invalidArgument, step: step, reason: "\(event) while the association is \(state.name)")
    }

    /// The largest plain request the meter takes in one APDU (its max PDU size, less the
    /// ciphering's header and tag), or `nil` before the association.
    private var requestSizeLimit: Int? {
        guard association.serverMaxReceivePDUSize > 0 else { return nil }
        return Int(association.serverMaxReceivePDUSize) - (ciphering == nil ? 0 : Self.cipheringOverhead)
    }

    // MARK: - Receiving

    private mutating func handle(_ raw: ByteBuffer, in exchange: inout Exchange, now: NIODeadline) throws -> Action {
        if let error = deadlineError(exchange, now: now) { throw error }
        var response = try decodeResponse(raw, step: exchange.step)
        if case .generalBlockTransfer(let block) = response {
            guard let whole = try reassemble(block, in: &exchange) else {
                if block.streaming { return .wait(deadline: exchange.waitDeadline) }
                return acknowledge(block, in: &exchange, now: now)
            }
            response = try decodeResponse(whole, step: exchange.step)
        }
        if ciphering != nil, case .ciphered(let ciphered) = response {
            response = try decodeResponse(try unprotectedAPDU(ciphered), step: exchange.step)
        } else if ciphering != nil, response.isCipherableService {
            throw DLMSClientError(code: .securityFailed, step: exchange.step, reason: "a \(response.name) in the clear on a ciphered association")
        }
        switch response {
        case .exceptionResponse(let exception):
            throw DLMSClientError(code: .serviceError, step: exchange.step, reason: "\(exception)")
        case .confirmedServiceError(let error):
            throw DLMSClientError(code: .serviceError, step: exchange.step, reason: "\(error)")
        default:
            break
        }
        if let invokeID = exchange.invokeID, let answered = response.invokeID, answered.invokeID != invokeID {
            // An answer to an earlier, repeated or abandoned request.
            return .wait(deadline: exchange.waitDeadline)
        }
        if case .aare = response {
            switch exchange.operation {
            case .associate: break
            default:
                // The meter's answer to an AARQ sent again (UDP repetition) that arrived after the
                // association was up: it carries no invoke id, and belongs to no later request.
                return .wait(deadline: exchange.waitDeadline)
            }
        }
        switch exchange.operation {
        case .associate(let ownChallenge):
            return try associated(response, ownChallenge: ownChallenge, exchange: exchange, now: now)
        case .replyToHLS(let hls):
            return try verifiedHLS(response, hls)
        case .get(let attribute, var blocks):
            // The reassembly is taken out of the exchange before it grows: one owner, no copy per block.
            exchange.operation = .get(attribute, blocks: nil)
            return try got(response, attribute: attribute, blocks: &blocks, in: exchange, now: now)
        case .getWithList(let count, var blocks):
            exchange.operation = .getWithList(count: count, blocks: nil)
            return try gotList(response, count: count, blocks: &blocks, in: exchange, now: now)
        case .set(let attribute):
            guard case .setResponse(.normal(_, let result)) = response else {
                throw DLMSClientError(code: .unexpectedResponse, step: .set, reason: "expected a SET-Response-Normal to \(attribute), got \(response.name)")
            }
            guard result == .success else {
                throw DLMSClientError(code: .dataAccessFailed, step: .set, reason: "\(attribute): \(result)", dataAccessResult: result)
            }
            return complete(.written)
        case .setInBlocks(let transfer):
            return try setBlockAnswered(response, transfer, in: exchange, now: now)
        case .action(let method):
            return complete(.invoked(try Self.actionReturn(response, method: method)))
        case .release:
            state = .released
            if case .rlre = response { return .completed(.released(unexpectedAnswer: nil)) }
            return .completed(.released(unexpectedAnswer: response.name))
        }
    }

    private mutating func complete(_ outcome: Outcome) -> Action {
        state = .associated
        return .completed(outcome)
    }

    /// Decodes one APDU, after checking that the Data values in it stay within the profile's
    /// element budget.
    private func decodeResponse(_ raw: ByteBuffer, step: DLMSClientError.Step) throws -> DLMSAPDU {
        try Self.checkElements(of: raw, limit: connection.profile.maximumResponseElements)
        var buffer = raw
        let response = try DLMSAPDU.decode(from: &buffer)
        if buffer.readableBytes > 0, !connection.profile.ignoresTrailingBytes {
            throw DLMSClientError(code: .malformedResponse, step: step, reason: "\(buffer.readableBytes) byte(s) after the \(response.name)")
        }
        return response
    }

    // MARK: - General-Block-Transfer (Green Book 9.3.5)

    /// Adds a GBT block; returns the whole APDU once the last block is in.
    private func reassemble(_ block: GeneralBlockTransfer, in exchange: inout Exchange) throws -> ByteBuffer? {
        var gbt = exchange.gbt ?? GBTReassembly()
        exchange.gbt = nil
        guard block.blockNumber == gbt.expected else {
            throw DLMSClientError(code: .unexpectedResponse, step: exchange.step,
                                  reason: "\(Self.describe(exchange.operation)): GBT block \(block.blockNumber) where \(gbt.expected) was expected")
        }
        guard gbt.apdu.readableBytes + block.blockData.count <= Self.maximumBlockBytes else {
            throw DLMSClientError(code: .responseTooLarge, step: exchange.step,
                                  reason: "\(Self.describe(exchange.operation)): more than \(Self.maximumBlockBytes) bytes in GBT blocks")
        }
        gbt.apdu.writeBytes(block.blockData.bytes)
        gbt.blocks += 1
        gbt.expected &+= 1
        if block.lastBlock { return gbt.apdu }
        exchange.gbt = gbt
        return nil
    }

    /// Asks for the next GBT window: our (empty, last) block with block-number-ack of the last one
    /// received, as Gurux's and dlms-cosem's clients do.
    private func acknowledge(_ block: GeneralBlockTransfer, in exchange: inout Exchange, now: NIODeadline) -> Action {
        var gbt = exchange.gbt!
        exchange.gbt = nil
        gbt.ownBlockNumber &+= 1
        var ack = ByteBuffer()
        GeneralBlockTransfer(lastBlock: true, streaming: false, window: 1, blockNumber: gbt.ownBlockNumber, blockNumberAck: block.blockNumber,
                             blockData: []).encode(into: &ack)
        exchange.gbt = gbt
        exchange.sent = ack
        exchange.stepDeadline = min(now + TimeAmount(connection.timeouts.step), exchange.requestDeadline)
        exchange.waitDeadline = waitDeadline(exchange, now: now)
        return .send(ack, deadline: exchange.waitDeadline)
    }

    // MARK: - Association (Green Book 9.4.6.1, 9.2.7.4)

    private mutating func startAssociation(now: NIODeadline) throws -> Action {
        let profile = connection.profile
        var initiate = InitiateRequest(proposedConformance: profile.proposedConformance, clientMaxReceivePDUSize: profile.maximumReceivePDUSize)
        let security = connection.security
        if let security, security.ciphers {
            let signingCurve: ECDSACurve? = if case .highECDSA(let signing) = connection.authentication { signing.signingKey.curve } else { nil }
            let suite: UInt8
            do {
                suite = try DLMSCipher.securitySuite(blockCipherKey: security.blockCipherKey, signingCurve: signingCurve)
            } catch {
                throw DLMSClientError(code: .invalidArgument, step: .associate, reason: "\(error)", underlying: error)
            }
            ciphering = Ciphering(
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
            ownChallenge = try HLS.challenge(length: 16)
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
            ownChallenge = try HLS.challenge(length: 16)
            aarq.callingAPTitle = signing.systemTitle.dlmsBytes
            aarq.senderACSERequirements = [0x07, 0x80]
            aarq.mechanismName = HLSMechanism.ecdsa.mechanism
            aarq.callingAuthenticationValue = .charString(DLMSBytes(ownChallenge))
        }
        if ciphering != nil {
            aarq.userInformation = .ciphered(try protect(DLMSAPDU.initiateRequest(initiate).encoded, kind: .global))
        } else {
            aarq.userInformation = .initiateRequest(initiate)
        }
        // Opening the association is one request: AARQ/AARE and the HLS passes share its deadline.
        let timeouts = connection.timeouts
        return try send(.aarq(aarq), operation: .associate(ownChallenge: ownChallenge), step: .associate, invokeID: nil, now: now,
                        stepDeadline: now + TimeAmount(timeouts.step), requestDeadline: now + TimeAmount(timeouts.request))
    }

    /// The AARE: accepted (then HLS pass 3 if authenticating with HLS) or refused with its diagnostic.
    private mutating func associated(_ response: DLMSAPDU, ownChallenge: [UInt8], exchange: Exchange, now: NIODeadline) throws -> Action {
        guard case .aare(let aare) = response else {
            throw DLMSClientError(code: .unexpectedResponse, step: .associate, reason: "expected an AARE, got \(response.name)")
        }
        guard aare.isAccepted else {
            // resultDescription already names a ConfirmedServiceError in the user-information.
            throw DLMSClientError(code: .associationRejected, step: .associate, reason: aare.resultDescription,
                                  associationDiagnostic: DLMSClientError.AssociationDiagnostic(aare))
        }
        if let title = aare.respondingAPTitle {
            association.serverSystemTitle = try SystemTitle(title)
        }
        let security = connection.security
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
            ciphering!.cipher.peerSystemTitle = title
            var buffer = try unprotectedAPDU(ciphered)
            granted = try InitiateResponse.decode(from: &buffer)
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

        let hls: HLSExchange
        switch connection.authentication {
        case .high(let mechanism, let secret):
            let credentials: HLSCredentials
            if mechanism == .gmac, let security {
                credentials = .keys(blockCipherKey: security.blockCipherKey, authenticationKey: security.authenticationKey)
            } else {
                credentials = .secret(secret!)
            }
            hls = try hlsExchange(mechanism, credentials: credentials, ownSystemTitle: security?.systemTitle, ownChallenge: ownChallenge, aare: aare)
        case .highECDSA(let signing):
            hls = try hlsExchange(.ecdsa, credentials: .signing(privateKey: signing.signingKey, peerPublicKey: signing.meterPublicKey),
                                  ownSystemTitle: signing.systemTitle, ownChallenge: ownChallenge, aare: aare)
        case .none, .low:
            return finishAssociation()
        }
        // HLS pass 3: our f(StoC) through reply_to_HLS_authentication, within the same request deadline.
        let reply = try hls.response(invocationCounter: hls.mechanism == .gmac ? try takeInvocationCounter() : 0)
        let id = InvokeIDAndPriority(invokeID: nextInvokeID, confirmed: true, highPriority: true)
        nextInvokeID = (nextInvokeID + 1) & 0x0F
        return try continueWith(.actionRequest(.normal(invokeID: id, method: Self.replyToHLSAuthentication, parameters: .octetString(ByteBuffer(bytes: reply)))),
                                operation: .replyToHLS(hls), invokeID: id.invokeID, in: exchange, now: now)
    }

    /// `reply_to_HLS_authentication` of the current association object (class 15, method 1).
    static let replyToHLSAuthentication = CosemMethodDescriptor(classID: .associationLN, instance: OBISCode(0, 0, 40, 0, 0, 255), method: 1)

    private func hlsExchange(_ mechanism: HLSMechanism, credentials: HLSCredentials, ownSystemTitle: SystemTitle?, ownChallenge: [UInt8],
                             aare: AARE) throws -> HLSExchange {
        guard let challenge = aare.respondingAuthenticationValue?.bytes, HLS.challengeLengths.contains(challenge.count) else {
            throw DLMSClientError(code: .securityFailed, step: .associate, reason: "the AARE carries no HLS challenge of 8 to 64 bytes")
        }
        return HLSExchange(mechanism: mechanism, credentials: credentials, ownSystemTitle: ownSystemTitle,
                           peerSystemTitle: association.serverSystemTitle, ownChallenge: ownChallenge, peerChallenge: challenge)
    }

    /// HLS pass 4: the meter's f(CtoS), returned by reply_to_HLS_authentication.
    private mutating func verifiedHLS(_ response: DLMSAPDU, _ hls: HLSExchange) throws -> Action {
        let answer: DLMSData?
        do {
            answer = try Self.actionReturn(response, method: Self.replyToHLSAuthentication)
        } catch let error as DLMSClientError where error.code == .actionFailed || error.code == .dataAccessFailed {
            throw DLMSClientError(code: .associationRejected, step: .associate, reason: "the meter refused our \(hls.mechanism) reply: \(error.reason)",
                                  dataAccessResult: error.dataAccessResult, actionResult: error.actionResult, underlying: error)
        }
        guard case .octetString(let meterReply)? = answer else {
            throw DLMSClientError(code: .securityFailed, step: .associate, reason: "reply_to_HLS_authentication returned no octet string")
        }
        try hls.verify(Array(meterReply.readableBytesView))
        return finishAssociation()
    }

    private mutating func finishAssociation() -> Action {
        // The dedicated key serves the association once it is up, i.e. after HLS pass 3/4: the
        // reply_to_HLS_authentication ACTION stays glo-ciphered. Gurux's client does the same and
        // its server deciphers a ded- APDU only in an authenticated association (a ded- pass 3 is
        // refused with deciphering-error); meter-sim takes either.
        if ciphering?.cipher.dedicatedKey != nil { ciphering?.kind = .dedicated }
        return complete(.associated)
    }

    // MARK: - GET (Green Book 9.3.6)

    private mutating func got(_ response: DLMSAPDU, attribute: CosemAttributeDescriptor, blocks: inout BlockReassembly?,
                              in exchange: Exchange, now: NIODeadline) throws -> Action {
        let what = "\(attribute)"
        guard case .getResponse(let get) = response else {
            throw DLMSClientError(code: .unexpectedResponse, step: .get, reason: "expected a GET-Response to \(attribute), got \(response.name)")
        }
        switch get {
        case .withDataBlock(let id, let block):
            guard var raw = try Self.collect(block, into: &blocks, what: what) else {
                return try continueWith(.getRequest(.next(invokeID: id, blockNumber: block.blockNumber)), operation: .get(attribute, blocks: blocks),
                                        invokeID: id.invokeID, in: exchange, now: now)
            }
            var budget = DLMSDataElementBudget(limit: connection.profile.maximumResponseElements)
            try budget.spend(on: raw)
            let data = try DLMSData.decode(from: &raw)
            try raw.expectFullyConsumed("block-transfer data")
            return complete(.data(data))
        case _ where blocks != nil:
            throw DLMSClientError(code: .unexpectedResponse, step: .get, reason: "\(what): expected block \(blocks!.expected), got \(response.name)")
        case .normal(_, .data(let data)):
            return complete(.data(data))
        case .normal(_, .dataAccessResult(let result)):
            throw DLMSClientError(code: .dataAccessFailed, step: .get, reason: "\(attribute): \(result)", dataAccessResult: result)
        case .withList:
            throw DLMSClientError(code: .unexpectedResponse, step: .get, reason: "a GET-Response-With-List to a single GET of \(attribute)")
        }
    }

    private mutating func gotList(_ response: DLMSAPDU, count: Int, blocks: inout BlockReassembly?, in exchange: Exchange,
                                  now: NIODeadline) throws -> Action {
        let what = "a list of \(count) attribute(s)"
        guard case .getResponse(let get) = response else {
            throw DLMSClientError(code: .unexpectedResponse, step: .get, reason: "expected a GET-Response-With-List, got \(response.name)")
        }
        let results: [GetDataResult]
        switch get {
        case .withDataBlock(let id, let block):
            guard var raw = try Self.collect(block, into: &blocks, what: what) else {
                return try continueWith(.getRequest(.next(invokeID: id, blockNumber: block.blockNumber)), operation: .getWithList(count: count, blocks: blocks),
                                        invokeID: id.invokeID, in: exchange, now: now)
            }
            try Self.checkElements(ofResults: raw, at: 0, limit: connection.profile.maximumResponseElements)
            results = try Self.decodeGetDataResults(&raw)
        case _ where blocks != nil:
            throw DLMSClientError(code: .unexpectedResponse, step: .get, reason: "\(what): expected block \(blocks!.expected), got \(response.name)")
        case .withList(_, let list):
            results = list
        case .normal(_, .dataAccessResult(let result)):
            throw DLMSClientError(code: .dataAccessFailed, step: .get, reason: "GET with list: \(result)", dataAccessResult: result)
        case .normal:
            throw DLMSClientError(code: .unexpectedResponse, step: .get, reason: "a GET-Response-Normal to a GET with list")
        }
        guard results.count == count else {
            throw DLMSClientError(code: .unexpectedResponse, step: .get, reason: "\(results.count) result(s) for \(count) attribute(s)")
        }
        return complete(.dataResults(results))
    }

    /// Adds a data block to `blocks`; returns the whole raw data after the last block, `nil`
    /// while more are to come.
    private static func collect(_ block: DataBlockG, into blocks: inout BlockReassembly?, what: String) throws -> ByteBuffer? {
        var reassembly = blocks ?? BlockReassembly()
        blocks = nil
        guard block.blockNumber == reassembly.expected else {
            throw DLMSClientError(code: .unexpectedResponse, step: .get, reason: "\(what): block \(block.blockNumber) where \(reassembly.expected) was expected")
        }
        switch block.result {
        case .rawData(let bytes):
            guard reassembly.raw.readableBytes + bytes.count <= maximumBlockBytes else {
                throw DLMSClientError(code: .responseTooLarge, step: .get, reason: "\(what): more than \(maximumBlockBytes) bytes in blocks")
            }
            reassembly.raw.writeBytes(bytes.bytes)
        case .dataAccessResult(let result):
            throw DLMSClientError(code: .dataAccessFailed, step: .get, reason: "\(what), block \(block.blockNumber): \(result)", dataAccessResult: result)
        }
        if block.lastBlock { return reassembly.raw }
        reassembly.expected += 1
        blocks = reassembly
        return nil
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

    // MARK: - SET in blocks (Green Book 9.3.7)

    private static func setBlockRequest(_ transfer: SetTransfer, invokeID id: InvokeIDAndPriority) -> DLMSAPDU {
        let end = min(transfer.offset + transfer.chunk, transfer.bytes.count)
        let block = DataBlockSA(lastBlock: end == transfer.bytes.count, blockNumber: transfer.blockNumber,
                                rawData: DLMSBytes(transfer.bytes[transfer.offset..<end]))
        return .setRequest(transfer.blockNumber == 1
            ? .withFirstDataBlock(invokeID: id, attribute: transfer.attribute, accessSelection: transfer.accessSelection, block: block)
            : .withDataBlock(invokeID: id, block: block))
    }

    private mutating func setBlockAnswered(_ response: DLMSAPDU, _ transfer: SetTransfer, in exchange: Exchange, now: NIODeadline) throws -> Action {
        let attribute = transfer.attribute
        let end = min(transfer.offset + transfer.chunk, transfer.bytes.count)
        let last = end == transfer.bytes.count
        let blockNumber = transfer.blockNumber
        switch response {
        case .setResponse(.dataBlock(let id, let acknowledged)) where !last && acknowledged == blockNumber:
            var next = transfer
            next.offset = end
            next.blockNumber += 1
            return try continueWith(Self.setBlockRequest(next, invokeID: id), operation: .setInBlocks(next), invokeID: id.invokeID, in: exchange, now: now)
        case .setResponse(.lastDataBlock(_, let result, let acknowledged)) where last && acknowledged == blockNumber:
            guard result == .success else {
                throw DLMSClientError(code: .dataAccessFailed, step: .set, reason: "\(attribute): \(result)", dataAccessResult: result)
            }
            return complete(.written)
        case .setResponse(.normal(_, let result)) where result != .success,
             .setResponse(.lastDataBlock(_, let result, _)) where result != .success:
            throw DLMSClientError(code: .dataAccessFailed, step: .set, reason: "\(attribute), block \(blockNumber): \(result)", dataAccessResult: result)
        default:
            throw DLMSClientError(code: .unexpectedResponse, step: .set, reason: "\(attribute): unexpected \(response.name) to SET block \(blockNumber)")
        }
    }

    // MARK: - ACTION

    /// The return parameters of an ACTION-Response-Normal, or the meter's refusal.
    static func actionReturn(_ response: DLMSAPDU, method: CosemMethodDescriptor) throws -> DLMSData? {
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

    // MARK: - Ciphering

    private mutating func takeInvocationCounter() throws -> UInt32 {
        guard ciphering != nil else { return 0 }
        return try ciphering!.transmitCounter.next()
    }

    private mutating func protect(_ plain: ByteBuffer, kind: CipheringKind) throws -> CipheredAPDU {
        let counter = try ciphering!.transmitCounter.next()
        return try ciphering!.cipher.protect(plain.getBytes(at: plain.readerIndex, length: plain.readableBytes)!, kind: kind, invocationCounter: counter)
    }

    /// A service request of the association, ciphered and encoded in one step.
    private mutating func protectedAPDU(_ plain: ByteBuffer, kind: CipheringKind) throws -> ByteBuffer {
        let counter = try ciphering!.transmitCounter.next()
        return try ciphering!.cipher.protectedAPDU(plain, kind: kind, invocationCounter: counter)
    }

    /// A service response of the association, deciphered into a buffer.
    private mutating func unprotectedAPDU(_ apdu: CipheredAPDU) throws -> ByteBuffer {
        var counterGuard = ciphering!.receiveGuard
        defer { ciphering!.receiveGuard = counterGuard }
        return try ciphering!.cipher.unprotectedAPDU(apdu, counterGuard: &counterGuard)
    }

    // MARK: - Element budget (DESIGN.md invariant 7)

    /// Walks the Data values an encoded response carries (GET-Response-Normal and -With-List,
    /// ACTION-Response-Normal) before the codec decodes them. Other APDUs carry none, or only raw
    /// block data that is checked once whole.
    static func checkElements(of apdu: ByteBuffer, limit: Int) throws {
        let bytes = apdu.readableBytesView
        guard bytes.count >= 4, let tag = bytes.first else { return }
        let start = bytes.startIndex
        switch (tag, bytes[start + 1]) {
        case (GetResponse.tag, 1) where bytes[start + 3] == 0:
            var budget = DLMSDataElementBudget(limit: limit)
            try budget.spend(on: apdu, at: 4)
        case (GetResponse.tag, 3):
            try checkElements(ofResults: apdu, at: 3, limit: limit)
        case (ActionResponse.tag, 1) where bytes.count >= 7 && bytes[start + 4] == 1 && bytes[start + 5] == 0:
            var budget = DLMSDataElementBudget(limit: limit)
            try budget.spend(on: apdu, at: 6)
        default:
            return
        }
    }

    /// Walks a `SEQUENCE OF Get-Data-Result` starting `offset` bytes into `buffer`. Malformed
    /// input ends the walk: the decoder says what is wrong.
    static func checkElements(ofResults buffer: ByteBuffer, at offset: Int, limit: Int) throws {
        guard var list = buffer.getSlice(at: buffer.readerIndex + offset, length: buffer.readableBytes - offset),
              let count = try? list.readAXDRLength(limit: 1024, bytesPerUnit: 0, "get-data-result count") else { return }
        var budget = DLMSDataElementBudget(limit: limit)
        for _ in 0..<count {
            guard let choice: UInt8 = list.readInteger() else { return }
            switch choice {
            case 0:
                guard let end = try budget.spend(on: list) else { return }
                list.moveReaderIndex(forwardBy: end)
            default:
                guard list.readInteger(as: UInt8.self) != nil else { return }
            }
        }
    }

    // MARK: - Descriptions

    static func describe(_ operation: Operation) -> String {
        switch operation {
        case .associate, .replyToHLS: "the association"
        case .get(let attribute, _): "\(attribute)"
        case .getWithList(let count, _): "a list of \(count) attribute(s)"
        case .set(let attribute): "\(attribute)"
        case .setInBlocks(let transfer): "\(transfer.attribute)"
        case .action(let method): "\(method)"
        case .release: "the release"
        }
    }

    static func progress(_ exchange: Exchange) -> String {
        if let gbt = exchange.gbt { return " (\(gbt.blocks) GBT block(s), \(gbt.apdu.readableBytes) byte(s))" }
        switch exchange.operation {
        case .get(_, let blocks?), .getWithList(_, let blocks?):
            return " (\(blocks.expected - 1) block(s), \(blocks.raw.readableBytes) byte(s))"
        default:
            return ""
        }
    }
}
