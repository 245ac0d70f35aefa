import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import NIOCore
import Observability
import ServiceRuntime

/// The simulated IMS's HTTP API:
/// - `POST /v1/readings`, `POST /v1/results`: deliveries (``IMSAPI``), deduplicated and stored;
/// - `POST /v1/cim/meter-readings`: readings as IEC 61968-9 `MeterReadings` in a 61968-100
///   `RequestMessage` (``CIMMeterReadings``), stored with the native ones, answered with a
///   `ResponseMessage`;
/// - `GET /v1/stats[?meters=true]`: what it holds and what it absorbed;
/// - `GET /v1/meters/{id}/readings`, `GET /v1/results[?meter=id]`: what it holds, for checks;
/// - `GET|PUT|DELETE /v1/faults`, `POST /v1/faults/outage`: its fault plan.
///
/// With a token set, every route asks for `Authorization: Bearer <token>`.
struct IMSRoutes: Sendable {
    let store: IMSStore
    let faults: IMSFaultSwitch
    let token: String?
    let maxRequestBytes: Int
    let logger: Logger
    /// The IMS's clock (injected in tests).
    var now: @Sendable () -> Date = { Date() }
    var draw: @Sendable () -> Double = { Double.random(in: 0..<1) }

    func register(_ router: AdminRouter) {
        let group = router.group("v1").add(middleware: BearerTokenMiddleware(token: token))
        group.post("readings") { request, _ in try await deliver(request, kind: "readings") }
        group.post("results") { request, _ in try await deliver(request, kind: "results") }
        group.post("cim/meter-readings") { request, _ in try await deliverCIM(request) }
        group.get("stats") { request, _ in
            let perMeter = request.uri.queryParameters.get("meters") == "true"
            return try json(try await storeCall { try await store.stats(perMeter: perMeter) })
        }
        group.get("meters/:meter/readings") { _, context in
            let meterID = try context.parameters.require("meter")
            return try json(try await storeCall { try await store.readings(meterID: meterID) })
        }
        group.get("results") { request, _ in
            let meterID = request.uri.queryParameters.get("meter")
            return try json(try await storeCall { try await store.results(meterID: meterID) })
        }
        group.get("faults") { _, _ in try json(faults.faults) }
        group.put("faults") { request, _ in
            let replacement = try await decodeJSON(IMSFaults.self, from: request)
            do {
                faults.replace(with: try replacement.validated())
            } catch let error as IMSSimError {
                throw HTTPProblem.badRequest(error.reason)
            }
            logger.notice("fault plan replaced", metadata: ["faults": "\(replacement)"])
            return try json(faults.faults)
        }
        group.delete("faults") { _, _ in
            faults.replace(with: IMSFaults())
            logger.notice("fault plan cleared")
            return try json(faults.faults)
        }
        group.post("faults/outage") { request, _ in
            let outage = try await decodeJSON(IMSOutageRequest.self, from: request)
            guard outage.seconds >= 0, (outage.startsInSeconds ?? 0) >= 0 else { throw HTTPProblem.badRequest("seconds must not be negative") }
            var plan = faults.faults
            let from = now().addingTimeInterval(outage.startsInSeconds ?? 0)
            plan.outageFrom = from
            plan.outageUntil = from.addingTimeInterval(outage.seconds)
            faults.replace(with: plan)
            logger.notice("outage planned", metadata: ["from": "\(from)", "seconds": "\(outage.seconds)"])
            return try json(plan)
        }
    }

    /// One delivery: faults first (nothing stored when refused), then the items decided and
    /// stored in one transaction, then the slow-accept delay, then the reply.
    private func deliver(_ request: Request, kind: String) async throws -> Response {
        let plan = faults.faults
        if plan.latencyMilliseconds > 0 { try await Task.sleep(for: .milliseconds(plan.latencyMilliseconds)) }
        if let refusal = plan.refusal(now: now(), draw: draw()) {
            Metrics.Counter(label: "ims_sim_requests_total", dimensions: [("kind", kind), ("status", "503")]).increment()
            throw HTTPProblem(.serviceUnavailable, detail: refusal)
        }
        let body = try await request.body.collect(upTo: maxRequestBytes)
        let intake = IMSIntake(rejectMeters: Set(plan.rejectMeters), now: now())
        let headerKey = request.headers[HTTPField.Name(IMSAPI.idempotencyKeyHeader)!]
        let reply: IMSDeliveryReply
        do {
            if kind == "readings" {
                let delivery = try ContractCoder.decode(IMSReadingsRequest.self, from: body.readableBytesView)
                try checkKey(headerKey, delivery.requestID)
                reply = try await storeCall { try await store.storeReadings(requestID: delivery.requestID, decision: intake.readings(delivery.batches)) }
            } else {
                let delivery = try ContractCoder.decode(IMSResultsRequest.self, from: body.readableBytesView)
                try checkKey(headerKey, delivery.requestID)
                reply = try await storeCall { try await store.storeResults(requestID: delivery.requestID, decision: intake.results(delivery.results)) }
            }
        } catch let error as ContractError {
            Metrics.Counter(label: "ims_sim_requests_total", dimensions: [("kind", kind), ("status", "400")]).increment()
            throw HTTPProblem.badRequest("the body is not a \(kind) delivery request: \(error)")
        }
        if plan.slowAcceptMilliseconds > 0 { try await Task.sleep(for: .milliseconds(plan.slowAcceptMilliseconds)) }
        let status: HTTPResponse.Status = reply.status == .failed ? .unprocessableContent : .ok
        Metrics.Counter(label: "ims_sim_requests_total", dimensions: [("kind", kind), ("status", "\(status.code)")]).increment()
        logger.debug("delivery stored", metadata: [
            LogMetadataKey.imsRequestID: "\(reply.requestID)", "stored": "\(reply.stored)", "duplicates": "\(reply.duplicates)",
            "rejected": "\(reply.rejected.count)", "replayed": "\(reply.replayed)",
        ])
        return jsonResponse(try ContractCoder.encode(reply), status: status)
    }

    /// A CIM delivery: the same faults, intake, store and deduplication as `POST /v1/readings`
    /// (the `MessageID` is the idempotency key, and must equal the `Idempotency-Key` header when
    /// both are sent). Every answer is a 61968-100 `ResponseMessage`: 200 OK or PARTIAL (the
    /// rejected items as `Error`s), 422 FAILED when every item was rejected, 400 FAILED for a body
    /// that is not a `RequestMessage` (verb `created`, noun `MeterReadings`), 503 FAILED for a
    /// simulated fault or an unavailable store (nothing decided: send again).
    private func deliverCIM(_ request: Request) async throws -> Response {
        let kind = "cim-readings"
        let plan = faults.faults
        if plan.latencyMilliseconds > 0 { try await Task.sleep(for: .milliseconds(plan.latencyMilliseconds)) }
        if let refusal = plan.refusal(now: now(), draw: draw()) {
            return cimFailure(.serviceUnavailable, code: "ims.unavailable", reason: refusal, kind: kind)
        }
        let body = try await request.body.collect(upTo: maxRequestBytes)
        let headerKey = request.headers[HTTPField.Name(IMSAPI.idempotencyKeyHeader)!]
        let delivery: CIMMeterReadingsRequest
        do {
            delivery = try CIMMeterReadingsRequest.parse(Data(body.readableBytesView))
        } catch let error as IMSSimError {
            return cimFailure(.badRequest, code: "request.malformed", reason: error.reason, requestID: headerKey ?? "", kind: kind)
        }
        guard delivery.verb == CIMMeterReadings.requestVerb || delivery.verb == "create", delivery.noun == CIMMeterReadings.noun else {
            return cimFailure(.badRequest, code: "request.unsupported", reason: "this IMS accepts verb created, noun MeterReadings; got \(delivery.verb) \(delivery.noun)",
                              requestID: delivery.messageID, kind: kind)
        }
        guard !delivery.messageID.isEmpty else {
            return cimFailure(.badRequest, code: "request.malformed", reason: "Header/MessageID (the idempotency key) is missing", requestID: headerKey ?? "", kind: kind)
        }
        if let headerKey, headerKey != delivery.messageID {
            return cimFailure(.badRequest, code: "request.malformed", reason: "the \(IMSAPI.idempotencyKeyHeader) header (\(headerKey)) differs from Header/MessageID (\(delivery.messageID))",
                              requestID: delivery.messageID, kind: kind)
        }
        let intake = IMSIntake(rejectMeters: Set(plan.rejectMeters), now: now())
        let reply: IMSDeliveryReply
        do {
            reply = try await store.storeReadings(requestID: delivery.messageID, decision: intake.readings(delivery.items))
        } catch {
            logger.error("the IMS store failed", metadata: [LogMetadataKey.error: "\(error)"])
            return cimFailure(.serviceUnavailable, code: "ims.store-unavailable", reason: "the IMS store is unavailable; send again later", requestID: delivery.messageID, kind: kind)
        }
        if plan.slowAcceptMilliseconds > 0 { try await Task.sleep(for: .milliseconds(plan.slowAcceptMilliseconds)) }
        let status: HTTPResponse.Status = reply.status == .failed ? .unprocessableContent : .ok
        Metrics.Counter(label: "ims_sim_requests_total", dimensions: [("kind", kind), ("status", "\(status.code)")]).increment()
        logger.debug("CIM delivery stored", metadata: [
            LogMetadataKey.imsRequestID: "\(reply.requestID)", "stored": "\(reply.stored)", "duplicates": "\(reply.duplicates)",
            "rejected": "\(reply.rejected.count)", "replayed": "\(reply.replayed)",
        ])
        return xmlResponse(CIMMeterReadings.responseMessage(reply, timestamp: now(), source: Self.cimSource), status: status)
    }

    /// `Header/Source` of ims-sim's CIM replies.
    static let cimSource = "ims-sim"

    /// A FAILED `ResponseMessage` for a request refused as a whole: one `Error` naming no item.
    private func cimFailure(_ status: HTTPResponse.Status, code: String, reason: String, requestID: String = "", kind: String) -> Response {
        Metrics.Counter(label: "ims_sim_requests_total", dimensions: [("kind", kind), ("status", "\(status.code)")]).increment()
        let reply = IMSDeliveryReply(requestID: requestID, status: .failed, accepted: 0, stored: 0, duplicates: 0,
                                     rejected: [.init(index: -1, id: nil, code: code, reason: reason)])
        return xmlResponse(CIMMeterReadings.responseMessage(reply, timestamp: now(), source: Self.cimSource), status: status)
    }

    private func checkKey(_ header: String?, _ requestID: String) throws {
        guard !requestID.isEmpty else { throw HTTPProblem.badRequest("requestID is empty") }
        if let header, header != requestID {
            throw HTTPProblem.badRequest("the \(IMSAPI.idempotencyKeyHeader) header (\(header)) differs from the body's requestID (\(requestID))")
        }
    }

    /// Runs a store operation; a store that cannot answer (its database down) is a 503: the
    /// client may send again, nothing was decided.
    private func storeCall<T: Sendable>(_ operation: () async throws -> T) async throws -> T {
        do {
            return try await operation()
        } catch let problem as HTTPProblem {
            throw problem
        } catch {
            logger.error("the IMS store failed", metadata: [LogMetadataKey.error: "\(error)"])
            throw HTTPProblem(.serviceUnavailable, detail: "the IMS store is unavailable; send again later")
        }
    }
}

/// Decodes a small JSON body (dates as ``json(_:status:)`` writes them).
func decodeJSON<T: Decodable>(_ type: T.Type, from request: Request) async throws -> T {
    let body = try await request.body.collect(upTo: 1 << 20)
    do {
        return try ContractCoder.makeDecoder().decode(type, from: Data(body.readableBytesView))
    } catch {
        throw HTTPProblem.badRequest("the body is not a valid \(T.self): \(error)")
    }
}

/// JSON as the contracts write it: sorted keys, ISO 8601 dates.
func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
    jsonResponse(Array(try ContractCoder.makeEncoder().encode(value)), status: status)
}

func jsonResponse(_ bytes: [UInt8], status: HTTPResponse.Status = .ok) -> Response {
    var headers = HTTPFields()
    headers[.contentType] = "application/json"
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
}

func xmlResponse(_ bytes: [UInt8], status: HTTPResponse.Status) -> Response {
    var headers = HTTPFields()
    headers[.contentType] = CIMMeterReadings.contentType
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
}

/// Asks for `Authorization: Bearer <token>` when a token is set.
struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let token, request.headers[.authorization] != "Bearer \(token)" {
            throw HTTPProblem(.unauthorized, detail: "a bearer token is required (Authorization: Bearer …)")
        }
        return try await next(request, context)
    }
}
