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
