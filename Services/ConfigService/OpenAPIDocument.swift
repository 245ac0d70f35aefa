import Foundation

/// The API's OpenAPI 3.1 document (`openapi.yaml` beside this file), served at `/openapi.yaml`:
/// the contract the routes are checked against (schemathesis in the tests).
enum OpenAPIDocument {
    static let text: String = {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "yaml"),
              let text = try? String(contentsOf: url, encoding: .utf8) else {
            return "openapi: 3.1.0\ninfo: {title: SwiftHES config-service, version: missing}\npaths: {}\n"
        }
        return text
    }()

    /// The configuration document's JSON Schema (`hes-configuration-v1.schema.json` beside this
    /// file), served at `/hes-configuration-v1.schema.json`.
    static let configurationSchema: String = {
        guard let url = Bundle.module.url(forResource: "hes-configuration-v1.schema", withExtension: "json"),
              let text = try? String(contentsOf: url, encoding: .utf8) else {
            return #"{"$comment": "the schema was not bundled"}"#
        }
        return text
    }()
}
