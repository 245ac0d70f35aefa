import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Persistence
import ServiceRuntime

/// The control-plane API of the IMS (served on the API port; the OpenAPI document at
/// `/openapi.yaml` is the contract, checked by schemathesis in the tests):
/// - `POST /v1/config/validate` dry run · `POST /v1/config/versions` apply (or stage with
///   `?activate=false`) · `PATCH /v1/config/meters` partial update · `GET /v1/config/versions`,
///   `GET /v1/config/versions/{id}`, `GET /v1/config/active` · `POST /v1/config/versions/{id}/activate`
///   · `POST /v1/config/rollback` · `GET /v1/config/diff?from=&to=`
/// - `GET|POST /v1/tokens`, `DELETE /v1/tokens/{name}`
///
/// Every route but `/openapi.yaml` asks for `Authorization: Bearer <token>`; viewers read,
/// operators also run commands, admins also change configuration and tokens. Errors are RFC
/// 9457 problem documents; a refused configuration lists every problem in `errors`.
struct ConfigRoutes: Sendable {
    let manager: ConfigurationManager
    let commands: CommandStore
    let tokens: APITokens
    let maxDocumentBytes: Int
    let logger: Logger
    /// Meter and region status for operators; without it those routes are absent.
    var operations: OperationsStore? = nil

    /// The operations the OpenAPI document declares (for `405 Method Not Allowed`).
    static let allowedMethods = AllowedMethods(openAPI: OpenAPIDocument.text)

    func register(_ router: AdminRouter) {
        router.add(middleware: AllowedMethodsMiddleware(allowed: Self.allowedMethods))
        router.add(middleware: RefuseNULMiddleware())
        router.get("openapi.yaml") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "application/yaml"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.text)))
        }
        router.get("hes-configuration-v1.schema.json") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "application/schema+json"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.configurationSchema)))
        }
        let api = router.group("v1")
        api.post("config/validate") { request, _ in
            _ = try await authorize(request, .viewer)
            let report = try await run {
                do {
                    return try await manager.validate(try await documentBody(request), basedOn: try query(request, "basedOn"))
                } catch let error as ConfigServiceError where error.code == .invalidDocument {
                    // YAML that is no document: the same report as JSON that is none.
                    return ValidationReport(valid: false, basedOn: nil, problems: error.problems, changes: nil)
                }
            }
            return try json(report, status: report.valid ? .ok : .unprocessableContent)
        }
        api.post("config/versions") { request, _ in
            let caller = try await authorize(request, .admin)
            let report = try await run {
                try await manager.apply(try await documentBody(request), basedOn: try query(request, "basedOn"), activate: try flag(request, "activate", default: true),
                                        actor: caller.name, comment: request.uri.queryParameters.get("comment"))
            }
            return try json(report, status: .created)
        }
        api.patch("config/meters") { request, _ in
            let caller = try await authorize(request, .admin)
            let report = try await run {
                try await manager.changeMeters(try await documentBody(request), basedOn: try query(request, "basedOn"), activate: try flag(request, "activate", default: true),
                                               actor: caller.name, comment: request.uri.queryParameters.get("comment"))
            }
            return try json(report, status: .created)
        }
        api.get("config/versions") { request, _ in
            _ = try await authorize(request, .viewer)
            let limit = try limit(request, default: 50)
            return try json(try await run { try await manager.store.versions(limit: limit) })
        }
        api.get("config/versions/:id") { request, context in
            _ = try await authorize(request, .viewer)
            return try await versionResponse(try id(context))
        }
        api.get("config/active") { request, _ in
            _ = try await authorize(request, .viewer)
            return try await versionResponse(nil)
        }
        api.post("config/versions/:id/activate") { request, context in
            let caller = try await authorize(request, .admin)
            let version = try id(context)
            return try json(try await run { try await manager.activate(version, expectedActive: try query(request, "expectedActive"), actor: caller.name) })
        }
        api.post("config/rollback") { request, _ in
            let caller = try await authorize(request, .admin)
            return try json(try await run {
                try await manager.rollback(to: try query(request, "toVersion"), expectedActive: try query(request, "expectedActive"), actor: caller.name)
            })
        }
        api.post("config/rotate-master-key") { request, _ in
            let caller = try await authorize(request, .admin)
            return try json(try await run { try await manager.rotateMasterKey(actor: caller.name) })
        }
        api.get("config/diff") { request, _ in
            _ = try await authorize(request, .viewer)
            guard let from = try query(request, "from") else { throw HTTPProblem.badRequest("'from' (a version id) is required") }
            return try json(try await run { try await manager.diff(from: from, to: try query(request, "to")) })
        }
        registerCommands(api)
        if let operations { registerOperations(api, operations) }
        api.get("tokens") { request, _ in
            _ = try await authorize(request, .admin)
            return try json(try await run { try await tokens.list() })
        }
        api.post("tokens") { request, _ in
            let caller = try await authorize(request, .admin)
            let wanted: TokenRequest
            do {
                wanted = try JSONDecoder().decode(TokenRequest.self, from: try await body(request, limit: 4096))
            } catch {
                throw HTTPProblem.badRequest("the body is {\"name\": \"…\", \"role\": \"viewer|operator|admin\"}")
            }
            guard !wanted.name.isEmpty, wanted.name.count <= 64, wanted.name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
                throw HTTPProblem.badRequest("a token name is 1…64 of letters, digits, '-', '_' and '.'")
            }
            let token = try await run { try await tokens.create(name: wanted.name, role: wanted.role, by: caller.name) }
            logger.notice("API token created", metadata: ["token.name": "\(wanted.name)", "token.role": "\(wanted.role.rawValue)", "actor": "\(caller.name)"])
            return try json(CreatedToken(name: wanted.name, role: wanted.role, token: token), status: .created)
        }
        api.delete("tokens/:name") { request, context in
            let caller = try await authorize(request, .admin)
            let name = try context.parameters.require("name")
            try await run { try await tokens.revoke(name: name, by: caller.name) }
            logger.notice("API token revoked", metadata: ["token.name": "\(name)", "actor": "\(caller.name)"])
            return Response(status: .noContent)
        }
    }

    /// `GET /v1/meters/{id}/status` and `GET /v1/regions/status` (viewer): what operators ask
    /// about a meter and the regions (`hesctl meters status`, `hesctl regions`).
    private func registerOperations(_ api: RouterGroup<BasicRequestContext>, _ operations: OperationsStore) {
        api.get("meters/:id/status") { request, context in
            _ = try await authorize(request, .viewer)
            let id = try context.parameters.require("id")
            guard let view = try await run({ try await operations.meterStatus(id) }) else {
                throw HTTPProblem.notFound("meter '\(id)' is not in the active configuration")
            }
            return try json(view)
        }
        api.get("regions/status") { request, _ in
            _ = try await authorize(request, .viewer)
            return try json(try await run { try await operations.regionStatus() })
        }
    }

    /// `POST /v1/commands` (operator; `Idempotency-Key` makes a retry find its command),
    /// `GET /v1/commands[?meter=&state=&kind=&limit=]`, `GET /v1/commands/{id}`,
    /// `POST /v1/commands/{id}/approve` (a second operator), `POST /v1/commands/{id}/cancel`.
    private func registerCommands(_ api: RouterGroup<BasicRequestContext>) {
        api.post("commands") { request, _ in
            let caller = try await authorize(request, .operator)
            let command: CommandRequest
            do {
                command = try ContractCoder.makeDecoder().decode(CommandRequest.self, from: try await body(request, limit: 65_536))
            } catch let error as DecodingError {
                let problem = ConfigurationParser.problem(error)
                throw HTTPProblem(.unprocessableContent, detail: "the body is not a command", errors: [HTTPProblem.Entry(pointer: problem.pointer, detail: problem.detail)])
            }
            let key = request.headers[HTTPField.Name("Idempotency-Key")!]
            if let key, key.isEmpty || key.count > 200 { throw HTTPProblem.badRequest("an Idempotency-Key is 1…200 characters") }
            let (view, created) = try await run { try await commands.create(command, requestKey: key, by: caller.name) }
            if created {
                logger.notice("command accepted", metadata: [
                    "command.id": "\(view.id)", "command.kind": "\(command.kind.rawValue)", "meter.id": "\(command.meterID)",
                    "actor": "\(caller.name)", "command.requires_approval": "\(view.requiresApproval)",
                ])
            }
            return try json(view, status: created ? .created : .ok)
        }
        api.get("commands") { request, _ in
            _ = try await authorize(request, .viewer)
            let parameters = request.uri.queryParameters
            let state = parameters.get("state")
            if let state, !["accepted", "dispatched", "running", "succeeded", "failed", "expired", "cancelled"].contains(state) {
                throw HTTPProblem.badRequest("unknown state '\(state)'")
            }
            let kind = parameters.get("kind")
            if let kind, CommandRequest.Kind(rawValue: kind) == nil { throw HTTPProblem.badRequest("unknown kind '\(kind)'") }
            let limit = try limit(request, default: 100)
            return try json(try await run { try await commands.list(meterID: parameters.get("meter"), state: state, kind: kind, limit: limit) })
        }
        api.get("commands/:id") { request, context in
            _ = try await authorize(request, .viewer)
            return try json(try await run { try await commands.get(try commandID(context)) })
        }
        api.post("commands/:id/approve") { request, context in
            let caller = try await authorize(request, .operator)
            let view = try await run { try await commands.approve(try commandID(context), by: caller.name) }
            logger.notice("command approved", metadata: ["command.id": "\(view.id)", "actor": "\(caller.name)"])
            return try json(view)
        }
        api.post("commands/:id/cancel") { request, context in
            let caller = try await authorize(request, .operator)
            let view = try await run { try await commands.cancel(try commandID(context), by: caller.name) }
            logger.notice("command cancelled", metadata: ["command.id": "\(view.id)", "actor": "\(caller.name)"])
            return try json(view)
        }
    }

    private func commandID(_ context: BasicRequestContext) throws -> UUID {
        let text = try context.parameters.require("id")
        guard let id = UUID(uuidString: text) else { throw HTTPProblem.badRequest("a command id is a UUID, not '\(text)'") }
        return id
    }

    struct TokenRequest: Codable { var name: String; var role: APIRole }
    struct CreatedToken: Codable { var name: String; var role: APIRole; var token: String }
    struct VersionView: Codable { var version: VersionSummary; var document: ConfigurationDocument }

    private func versionResponse(_ id: Int64?) async throws -> Response {
        guard let stored = try await run({ try await manager.store.version(id) }) else {
            throw HTTPProblem.notFound(id.map { "there is no configuration version \($0)" } ?? "no configuration is active yet")
        }
        return try json(VersionView(version: stored.summary, document: stored.document.redacted()))
    }

    // MARK: - Request helpers

    /// The caller, when its bearer token has at least `role`.
    private func authorize(_ request: Request, _ role: APIRole) async throws -> Principal {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer "), header.count > 7 else {
            throw HTTPProblem(.unauthorized, detail: "a bearer token is required (Authorization: Bearer …)")
        }
        let principal: Principal?
        do {
            principal = try await tokens.principal(for: String(header.dropFirst(7)))
        } catch {
            logger.error("token lookup failed", metadata: ["error": "\(error)"])
            throw HTTPProblem(.serviceUnavailable, detail: "the token store is unavailable; try again")
        }
        guard let principal else { throw HTTPProblem(.unauthorized, detail: "the token is unknown or revoked") }
        guard principal.role >= role else {
            throw HTTPProblem(.forbidden, detail: "this needs the \(role.rawValue) role; token '\(principal.name)' is \(principal.role.rawValue)")
        }
        return principal
    }

    private func body(_ request: Request, limit: Int? = nil) async throws -> Data {
        let limit = limit ?? maxDocumentBytes
        let data: Data
        do {
            data = Data(try await request.body.collect(upTo: limit).readableBytesView)
        } catch {
            throw HTTPProblem(.contentTooLarge, detail: "the body is larger than \(limit) bytes")
        }
        try Self.refuseNUL(data)
        return data
    }

    /// A configuration document or meter change: JSON, or YAML when the `Content-Type` says so
    /// (``ConfigurationYAML``), read as the same JSON.
    /// - Throws: ``ConfigServiceError`` `.invalidDocument` for YAML that is no document (the
    ///   callers' ``run(_:)`` makes it a problem answer).
    private func documentBody(_ request: Request) async throws -> Data {
        let data = try await body(request)
        guard ConfigurationYAML.isYAML(contentType: request.headers[.contentType]) else { return data }
        let json = try ConfigurationYAML.json(fromYAML: data)
        try Self.refuseNUL(json)
        return json
    }

    /// PostgreSQL's text cannot hold U+0000: a JSON body that escapes one is refused here as a
    /// bad request instead of failing in the store.
    static func refuseNUL(_ data: Data) throws {
        if data.firstRange(of: Data(#"\u0000"#.utf8)) != nil {
            throw HTTPProblem.badRequest("text may not contain the NUL character (\\u0000)")
        }
    }

    private func query(_ request: Request, _ name: String) throws -> Int64? {
        guard let text = request.uri.queryParameters.get(name) else { return nil }
        guard let value = Int64(text), value > 0 else { throw HTTPProblem.badRequest("'\(name)' is a positive integer, not '\(text)'") }
        return value
    }

    /// `limit`: how many rows a list answers, 1…10,000 (as the OpenAPI document declares).
    private func limit(_ request: Request, default value: Int) throws -> Int {
        guard let limit = try query(request, "limit") else { return value }
        guard limit <= 10_000 else { throw HTTPProblem.badRequest("'limit' is at most 10000, not \(limit)") }
        return Int(limit)
    }

    private func flag(_ request: Request, _ name: String, default value: Bool) throws -> Bool {
        switch request.uri.queryParameters.get(name) {
        case nil: value
        case "true": true
        case "false": false
        case let other?: throw HTTPProblem.badRequest("'\(name)' is true or false, not '\(other)'")
        }
    }

    private func id(_ context: BasicRequestContext) throws -> Int64 {
        let text = try context.parameters.require("id")
        guard let id = Int64(text), id > 0 else { throw HTTPProblem.badRequest("a version id is a positive integer, not '\(text)'") }
        return id
    }

    /// Runs a use case; its ``ConfigServiceError`` becomes the matching problem document.
    @discardableResult
    private func run<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as ConfigServiceError {
            throw Self.problem(error)
        } catch let error as PersistenceError {
            if let inner = error.underlying as? ConfigServiceError { throw Self.problem(inner) }
            logger.error("the database failed a request", metadata: ["error": "\(error)"])
            throw HTTPProblem(.serviceUnavailable, detail: "the database is unavailable; nothing was changed, try again")
        }
    }

    static func problem(_ error: ConfigServiceError) -> HTTPProblem {
        switch error.code {
        case .invalidDocument:
            HTTPProblem(.unprocessableContent, detail: error.reason, type: "urn:swifthes:problem:invalid-configuration",
                        errors: error.problems.map { HTTPProblem.Entry(pointer: $0.pointer, detail: $0.detail) })
        case .conflict: HTTPProblem(.conflict, detail: error.reason, type: "urn:swifthes:problem:conflict")
        case .notFound: HTTPProblem.notFound(error.reason)
        case .noMasterKey: HTTPProblem(.unprocessableContent, detail: error.reason, type: "urn:swifthes:problem:no-master-key")
        case .invalidRequest: HTTPProblem.badRequest(error.reason)
        case .limitReached: HTTPProblem(.tooManyRequests, detail: error.reason, type: "urn:swifthes:problem:limit-reached")
        default: HTTPProblem(.serviceUnavailable, detail: error.reason)
        }
    }
}

/// JSON as the contracts write it: sorted keys, ISO 8601 dates.
func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
    var headers = HTTPFields()
    headers[.contentType] = "application/json"
    let bytes = try ContractCoder.makeEncoder().encode(value)
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
}
