import COSEM
import DLMSCodec
import DLMSLink
import Logging
import NIOCore
import NIOPosix

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
    }

    public let connection: MeterConnection
    public private(set) var association: Association
    public let logger: Logger
    private let framing: any APDUFraming
    private var nextInvokeID: UInt8 = 0

    private init(connection: MeterConnection, framing: any APDUFraming, logger: Logger) {
        self.connection = connection
        self.framing = framing
        self.logger = logger
        self.association = Association(conformance: [], serverMaxReceivePDUSize: 0, dlmsVersion: 6, hdlcParameters: nil)
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
        let transport = try await connection.endpoint.open(on: group, timeout: connection.timeouts.connect)
        return try await withAssociation(to: connection, over: transport, logger: logger, closesTransport: true, body)
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
        logger[metadataKey: "meter.endpoint"] = "\(connection.endpoint)"
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
                    logger.debug("IEC 62056-21 mode E opening done", metadata: ["iec21.identification": "\(id.manufacturer) \(id.identification)"])
                } catch {
                    if closesTransport { await transport.close() }
                    throw error
                }
            }
            framing = HDLCFraming(transport: transport, configuration: try connection.hdlcConfiguration())
        }
        let client = DLMSClient(connection: connection, framing: framing, logger: logger)
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

    // MARK: - Association

    private func open() async throws {
        let deadline = deadline(connection.timeouts.step)
        do {
            try await framing.open(deadline: deadline)
        } catch {
            throw DLMSClientError.wrapping(error, step: .linkSetup)
        }
        if let hdlc = framing as? HDLCFraming {
            association.hdlcParameters = hdlc.parameters
            logger.debug("HDLC link up", metadata: ["hdlc.parameters": "\(hdlc.parameters)"])
        }
        let profile = connection.profile
        let initiate = InitiateRequest(proposedConformance: profile.proposedConformance, clientMaxReceivePDUSize: profile.maximumReceivePDUSize)
        let aarq: AARQ
        switch connection.authentication {
        case .none:
            aarq = AARQ(userInformation: .initiateRequest(initiate))
        case .low(let password):
            aarq = .authenticated(mechanism: .low, secret: password, initiate: initiate)
        }
        let response = try await exchange(.aarq(aarq), step: .associate, invokeID: nil)
        guard case .aare(let aare) = response else {
            throw DLMSClientError(code: .unexpectedResponse, step: .associate, reason: "expected an AARE, got \(response.name)")
        }
        guard aare.isAccepted else {
            var reason = aare.resultDescription
            if case .confirmedServiceError(let error)? = aare.userInformation { reason += "; \(error)" }
            throw DLMSClientError(code: .associationRejected, step: .associate, reason: reason)
        }
        guard case .initiateResponse(let granted)? = aare.userInformation else {
            throw DLMSClientError(code: .unexpectedResponse, step: .associate, reason: "the AARE carries no InitiateResponse")
        }
        association.conformance = granted.negotiatedConformance
        association.serverMaxReceivePDUSize = granted.serverMaxReceivePDUSize
        association.dlmsVersion = granted.negotiatedDLMSVersion
        logger.debug("associated", metadata: ["dlms.conformance": "\(granted.negotiatedConformance)", "dlms.max_pdu": "\(granted.serverMaxReceivePDUSize)"])
    }

    /// Ends the association and the link. Failures are logged, not thrown: the data read is kept.
    private func release() async {
        if connection.profile.releaseMode == .releaseRequest {
            do {
                let response = try await exchange(.rlrq(RLRQ(reason: 0)), step: .release, invokeID: nil, timeout: connection.timeouts.release)
                if case .rlre = response {} else {
                    logger.debug("unexpected answer to RLRQ", metadata: ["dlms.apdu": "\(response.name)"])
                }
            } catch {
                logger.debug("release failed", metadata: ["error": "\(error)"])
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
        let response = try await exchange(.setRequest(.normal(invokeID: id, attribute: attribute, accessSelection: accessSelection, value: value)), step: .set, invokeID: id.invokeID)
        guard case .setResponse(.normal(_, let result)) = response else {
            throw DLMSClientError(code: .unexpectedResponse, step: .set, reason: "expected a SET-Response-Normal to \(attribute), got \(response.name)")
        }
        guard result == .success else {
            throw DLMSClientError(code: .dataAccessFailed, step: .set, reason: "\(attribute): \(result)", dataAccessResult: result)
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
        let encoded = request.encoded
        if association.serverMaxReceivePDUSize > 0, encoded.readableBytes > Int(association.serverMaxReceivePDUSize) {
            throw DLMSClientError(code: .invalidArgument, step: step,
                                  reason: "the request is \(encoded.readableBytes) bytes, the meter accepts \(association.serverMaxReceivePDUSize)")
        }
        do {
            try await framing.send(encoded)
            var repeats = 0
            while true {
                let attemptDeadline = framing.repeatsRequestsOnTimeout ? min(stepDeadline, deadline(connection.timeouts.retransmission)) : stepDeadline
                guard let raw = try await framing.receive(until: attemptDeadline) else {
                    if framing.repeatsRequestsOnTimeout, repeats < connection.timeouts.retries, NIODeadline.now() < stepDeadline {
                        repeats += 1
                        logger.debug("no answer; sending the request again", metadata: ["dlms.step": "\(step)", "dlms.attempt": "\(repeats + 1)"])
                        try await framing.send(encoded)
                        continue
                    }
                    throw DLMSClientError(code: .timeout, step: step, reason: "no answer within \(timeout ?? connection.timeouts.step)")
                }
                let response = try decodeResponse(raw, step: step)
                switch response {
                case .exceptionResponse(let exception):
                    throw DLMSClientError(code: .serviceError, step: step, reason: "exception-response: \(exception)")
                case .confirmedServiceError(let error):
                    throw DLMSClientError(code: .serviceError, step: step, reason: "\(error)")
                default:
                    break
                }
                if let invokeID, let answered = response.invokeID, answered.invokeID != invokeID {
                    logger.debug("dropping an answer to an earlier request", metadata: ["dlms.invoke_id": "\(answered.invokeID)", "dlms.expected_invoke_id": "\(invokeID)"])
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
            logger.debug("ignoring bytes after the response", metadata: ["dlms.trailing_bytes": "\(buffer.readableBytes)"])
        }
        return response
    }

    /// Fetches the remaining blocks of a long GET response and returns the concatenated raw data.
    private func collectBlocks(first: DataBlockG, invokeID: InvokeIDAndPriority, what: String) async throws -> ByteBuffer {
        var raw = ByteBuffer()
        var block = first
        var expected: UInt32 = 1
        let limit = 16 << 20
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
            let response = try await exchange(.getRequest(.next(invokeID: invokeID, blockNumber: block.blockNumber)), step: .get, invokeID: invokeID.invokeID)
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
