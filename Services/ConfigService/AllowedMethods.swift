import Foundation
import HTTPTypes
import Hummingbird
import ServiceRuntime
import Yams

/// The API's operations as the OpenAPI document declares them: a request for a declared path
/// with a method the path does not have is answered `405 Method Not Allowed` with an `Allow`
/// header (RFC 9110 §15.5.6), not `404` — the router alone cannot tell the two apart.
struct AllowedMethods: Sendable {
    /// Path templates (`/v1/commands/{id}/approve` as segments, `nil` for a parameter) and their methods.
    let paths: [(segments: [String?], methods: [String])]

    /// The operations of an OpenAPI document's `paths`.
    init(openAPI text: String) {
        var paths: [(segments: [String?], methods: [String])] = []
        let methods: Set<String> = ["get", "put", "post", "delete", "options", "head", "patch", "trace"]
        if let document = (try? Yams.load(yaml: text)) as? [String: Any], let declared = document["paths"] as? [String: Any] {
            for (path, item) in declared {
                guard let operations = item as? [String: Any] else { continue }
                let segments: [String?] = path.split(separator: "/").map { $0.hasPrefix("{") && $0.hasSuffix("}") ? nil : String($0) }
                paths.append((segments, operations.keys.filter { methods.contains($0) }.map { $0.uppercased() }.sorted()))
            }
        }
        self.paths = paths
    }

    /// The methods declared for `path`, `nil` when no declared path matches it.
    func methods(for path: String) -> [String]? {
        let segments = path.split(separator: "/")
        for entry in paths where entry.segments.count == segments.count {
            if zip(entry.segments, segments).allSatisfy({ $0.0 == nil || $0.0! == $0.1 }) { return entry.methods }
        }
        return nil
    }
}

/// Answers `405` with `Allow` for a declared path asked with an undeclared method (see ``AllowedMethods``).
struct AllowedMethodsMiddleware<Context: RequestContext>: RouterMiddleware {
    let allowed: AllowedMethods

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let methods = allowed.methods(for: request.uri.path), !methods.contains(request.method.rawValue),
           !(request.method == .head && methods.contains("GET")) {
            let detail = "\(request.method.rawValue) is not an operation of \(request.uri.path); it has \(methods.joined(separator: ", "))"
            var response = try HTTPProblem(.methodNotAllowed, detail: detail).response(from: request, context: context)
            response.headers[.allow] = methods.joined(separator: ", ")
            return response
        }
        return try await next(request, context)
    }
}

/// Refuses a path or query holding an encoded NUL (`%00`) as a bad request: PostgreSQL's text
/// cannot hold U+0000, so such a value could only fail later as a store error.
struct RefuseNULMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.uri.description.range(of: "%00", options: .caseInsensitive) != nil {
            throw HTTPProblem.badRequest("the path and query may not contain the NUL character (%00)")
        }
        return try await next(request, context)
    }
}
