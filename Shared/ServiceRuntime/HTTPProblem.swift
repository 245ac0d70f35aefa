import Foundation
import Hummingbird
import Logging
import Observability
import NIOCore

/// An HTTP error answered as an RFC 9457 problem document (`application/problem+json`):
/// `{"type": "about:blank", "title": "Bad Request", "status": 400, "detail": "unknown fault 'x'"}`.
///
/// Throw it from any route; ``ProblemMiddleware`` also turns Hummingbird's own errors (an
/// unknown path, a body that does not decode) and unexpected errors into problems, so a client
/// always gets a JSON answer that says what was wrong.
public struct HTTPProblem: Error, HTTPResponseError, Codable, Sendable, CustomStringConvertible {
    /// A URI naming the kind of problem. Default: `about:blank` (the status says it all).
    public var type: String
    /// The status's short, human summary (`Not Found`).
    public var title: String
    public var status: HTTPResponse.Status
    /// What was wrong with this request, for a human.
    public var detail: String?
    /// An extension member: each problem of a request body at its RFC 6901 pointer (all of
    /// them, not the first).
    public var errors: [Entry]?

    /// One problem of a request body: where, and what.
    public struct Entry: Codable, Sendable, Hashable {
        public var pointer: String
        public var detail: String

        public init(pointer: String, detail: String) {
            self.pointer = pointer
            self.detail = detail
        }
    }

    public init(_ status: HTTPResponse.Status, detail: String? = nil, type: String = "about:blank", errors: [Entry]? = nil) {
        self.type = type
        self.title = status.reasonPhrase
        self.status = status
        self.detail = detail
        self.errors = errors
    }

    /// A 400 naming what was wrong with the request.
    public static func badRequest(_ detail: String) -> Self { Self(.badRequest, detail: detail) }
    /// A 404 naming what was not found.
    public static func notFound(_ detail: String) -> Self { Self(.notFound, detail: detail) }

    public var description: String { "\(status.code) \(title)\(detail.map { ": \($0)" } ?? "")" }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var body = try encoder.encode(self)
        body.append(UInt8(ascii: "\n"))
        var headers = HTTPFields()
        headers[.contentType] = "application/problem+json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    enum CodingKeys: String, CodingKey { case type, title, status, detail, errors }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.type = try container.decodeIfPresent(String.self, forKey: .type) ?? "about:blank"
        self.title = try container.decodeIfPresent(String.self, forKey: .title) ?? ""
        self.status = HTTPResponse.Status(code: try container.decode(Int.self, forKey: .status))
        self.detail = try container.decodeIfPresent(String.self, forKey: .detail)
        self.errors = try container.decodeIfPresent([Entry].self, forKey: .errors)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(type, forKey: .type)
        try container.encode(title, forKey: .title)
        try container.encode(status.code, forKey: .status)
        try container.encodeIfPresent(detail, forKey: .detail)
        try container.encodeIfPresent(errors, forKey: .errors)
    }
}

/// Answers every error a route throws as an ``HTTPProblem``: problems as they are, Hummingbird's
/// `HTTPError`s (404 for an unknown path, 400 for a body that does not decode) with their
/// status and message, anything else as a 500 that is logged (its text is not sent: it may say
/// more than a client should see).
struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let problem as HTTPProblem {
            throw problem
        } catch let error as HTTPError {
            throw HTTPProblem(error.status, detail: error.body)
        } catch let error as any HTTPResponseError {
            throw HTTPProblem(error.status, detail: "\(error)")
        } catch {
            logger.error("request failed", metadata: [
                LogMetadataKey.httpPath: "\(request.uri.path)", LogMetadataKey.error: "\(error)",
            ])
            throw HTTPProblem(.internalServerError, detail: "the request could not be completed; the server log has the cause")
        }
    }
}
