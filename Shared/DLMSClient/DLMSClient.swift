import COSEM
import DLMSCodec
import DLMSLink
import DLMSSecurity
import Logging
import NIOCore
import NIOPosix
import Observability

/// One open association with a meter: GET, SET and ACTION with invoke-id correlation, block
/// transfer reassembly and deadlines on every step, request and the association as a whole.
/// Obtain one with `withAssociation`.
///
/// The protocol is ``DLMSAssociation`` (sans-IO); this class is its shell: it opens the
/// transport and the link, carries the state machine's actions out over the framing and feeds
/// it the answers and the time.
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

    public let connection: MeterConnection
    public private(set) var association: Association
    public let logger: Logger
    private let framing: any APDUFraming
    /// The association's protocol state.
    private var machine: DLMSAssociation

    /// Whether the association is ciphered (its service APDUs are glo- or ded-ciphered).
    public var isCiphered: Bool { machine.isCiphered }

    private init(connection: MeterConnection, framing: any APDUFraming, firstInvocationCounter: UInt32, logger: Logger) {
        self.connection = connection
        self.framing = framing
        self.logger = logger
        self.machine = DLMSAssociation(connection: connection, firstInvocationCounter: firstInvocationCounter,
                                       repeatsRequests: framing.repeatsRequestsOnTimeout)
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
        let client = DLMSClient(connection: connection, framing: framing, firstInvocationCounter: firstCounter, logger: logger)
        do {
            try await client.open()
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

    private func open() async throws {
        do {
            try await framing.open(deadline: .now() + TimeAmount(connection.timeouts.step))
        } catch {
            throw DLMSClientError.wrapping(error, step: .linkSetup)
        }
        var hdlcParameters: HDLCParameters?
        if let hdlc = framing as? HDLCFraming {
            hdlcParameters = hdlc.parameters
            logger.debug("HDLC link up", metadata: [LogMetadataKey.hdlcParameters: "\(hdlc.parameters)"])
        }
        guard case .associated = try await run({ try $0.associate(now: $1) }) else {
            throw DLMSClientError(code: .unexpectedResponse, step: .associate, reason: "the association ended without an AARE")
        }
        association = machine.association
        association.hdlcParameters = hdlcParameters
        logger.debug("associated", metadata: [LogMetadataKey.dlmsConformance: "\(association.conformance)", LogMetadataKey.dlmsMaxPDU: "\(association.serverMaxReceivePDUSize)",
                                              LogMetadataKey.dlmsSecurity: "\(connection.security.map { "\($0)" } ?? "none")"])
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
        do {
            if case .released(let unexpected?) = try await run({ try $0.release(now: $1) }) {
                logger.debug("unexpected answer to RLRQ", metadata: [LogMetadataKey.dlmsAPDU: "\(unexpected)"])
            }
        } catch {
            logger.debug("release failed", metadata: [LogMetadataKey.error: "\(error)"])
        }
        await closeLink()
    }

    private func closeLink() async {
        await framing.close(deadline: .now() + TimeAmount(connection.timeouts.release))
    }

    // MARK: - Services

    /// Reads one attribute.
    ///
    /// - Throws: `DLMSClientError` with `.dataAccessFailed` (and `dataAccessResult`) when the meter
    ///   refuses, `.responseTooLarge` when the value exceeds the profile's element budget.
    public func get(_ attribute: CosemAttributeDescriptor, accessSelection: AccessSelection? = nil) async throws -> DLMSData {
        let outcome = try await run { try $0.get(attribute, accessSelection: accessSelection, now: $1) }
        guard case .data(let data) = outcome else { throw Self.mismatch(outcome, step: .get) }
        return data
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
        let outcome = try await run { try $0.getWithList(attributes, now: $1) }
        guard case .dataResults(let results) = outcome else { throw Self.mismatch(outcome, step: .get) }
        return results
    }

    /// Writes one attribute (in blocks when it does not fit the meter's PDU size, Green Book 9.3.7).
    ///
    /// - Throws: `DLMSClientError` with `.dataAccessFailed` when the meter refuses.
    public func set(_ attribute: CosemAttributeDescriptor, to value: DLMSData, accessSelection: AccessSelection? = nil) async throws {
        let outcome = try await run { try $0.set(attribute, to: value, accessSelection: accessSelection, now: $1) }
        guard case .written = outcome else { throw Self.mismatch(outcome, step: .set) }
    }

    /// Invokes one method.
    ///
    /// - Returns: the return parameters, if the meter sent any.
    /// - Throws: `DLMSClientError` with `.actionFailed` (and `actionResult`) when the meter refuses.
    @discardableResult
    public func action(_ method: CosemMethodDescriptor, parameters: DLMSData? = nil) async throws -> DLMSData? {
        let outcome = try await run { try $0.action(method, parameters: parameters, now: $1) }
        guard case .invoked(let data) = outcome else { throw Self.mismatch(outcome, step: .action) }
        return data
    }

    // MARK: - Carrying out the state machine's actions

    /// Starts an operation of the state machine and carries out its actions until it completes:
    /// sends, waits for answers until the deadlines the machine sets, and tells it the time.
    private func run(_ start: (inout DLMSAssociation, NIODeadline) throws -> DLMSAssociation.Action) async throws -> DLMSAssociation.Outcome {
        var action = try start(&machine, .now())
        while true {
            let deadline: NIODeadline
            switch action {
            case .completed(let outcome):
                return outcome
            case .send(let apdu, let until):
                do {
                    try await framing.send(apdu)
                } catch {
                    throw machine.transportFailed(error)
                }
                deadline = until
            case .wait(let until):
                deadline = until
            }
            let answer: ByteBuffer?
            do {
                answer = try await framing.receive(until: deadline)
            } catch {
                throw machine.transportFailed(error)
            }
            if let answer {
                action = try machine.apduReceived(answer, now: .now())
            } else {
                action = try machine.timerFired(now: .now())
                if case .send = action {
                    logger.debug("no answer; sending the request again", metadata: [LogMetadataKey.dlmsStep: "\(machine.step.map { "\($0)" } ?? "")"])
                }
            }
        }
    }

    private static func mismatch(_ outcome: DLMSAssociation.Outcome, step: DLMSClientError.Step) -> DLMSClientError {
        DLMSClientError(code: .unexpectedResponse, step: step, reason: "the association completed the \(step) with \(outcome)")
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

