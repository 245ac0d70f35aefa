import Contracts
import Foundation
import Yams

/// Configuration documents (and meter changes) written in YAML: turned into the JSON the service
/// reads, so the same JSON Schema, the same validation and the same JSON-pointer paths in errors
/// hold for both. Scalars are typed by the YAML 1.1 core rules (quote a serial number such as
/// `"00012345"`, or YAML reads it as a number); timestamps stay text; keys must be text. Anchors
/// and aliases are read (an alias repeats its anchor's value), but a document that stands for
/// far more values than its size (a "billion laughs") is refused.
enum ConfigurationYAML {
    /// The media types read as YAML; anything else is JSON.
    static let mediaTypes: Set<String> = ["application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"]

    /// Whether a `Content-Type` header value names YAML (parameters such as `charset` ignored).
    static func isYAML(contentType: String?) -> Bool {
        guard let contentType else { return false }
        let type = contentType.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        return mediaTypes.contains(type)
    }

    /// The JSON text of a YAML document.
    /// - Throws: ``ConfigServiceError`` `.invalidDocument` with the line and column of what is not
    ///   a configuration document in YAML.
    static func json(fromYAML data: Data) throws -> Data {
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigServiceError.invalidDocument([ConfigurationProblem(pointer: "", detail: "the YAML document is not UTF-8 text")])
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            // The parser's message quotes the whole document: keep its first line and where.
            let message = "\(error)"
            let first = message.split(separator: "\n", maxSplits: 1).first.map(String.init) ?? message
            let location = message.range(of: " in line ", options: .backwards).map { String(message[$0.lowerBound...]).trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
            throw ConfigServiceError.invalidDocument([ConfigurationProblem(pointer: "", detail: "not a YAML document: \(first.prefix(300))\(location.isEmpty ? "" : " (" + location.dropFirst(1) + ")")")])
        }
        guard let root else {
            throw ConfigServiceError.invalidDocument([ConfigurationProblem(pointer: "", detail: "the YAML document is empty")])
        }
        var pointer: [String] = []
        // Aliases share their anchor's node: a few lines can stand for billions of values.
        var budget = 64 + 4 * data.count
        let object = try value(of: root, at: &pointer, budget: &budget)
        guard object is [String: Any] else {
            throw ConfigServiceError.invalidDocument([ConfigurationProblem(pointer: "", detail: "a configuration document is a mapping")])
        }
        do {
            return try JSONSerialization.data(withJSONObject: object, options: [.fragmentsAllowed])
        } catch {
            throw ConfigServiceError.invalidDocument([ConfigurationProblem(pointer: "", detail: "the YAML document has no JSON form: \(error)")])
        }
    }

    private static func value(of node: Node, at pointer: inout [String], budget: inout Int) throws -> Any {
        func problem(_ detail: String) -> ConfigServiceError {
            let location = node.mark.map { " (line \($0.line), column \($0.column))" } ?? ""
            return ConfigServiceError.invalidDocument([ConfigurationProblem(pointer: ConfigurationProblem.pointer(tokens: pointer), detail: detail + location)])
        }
        budget -= 1
        guard budget >= 0 else { throw problem("the YAML document stands for far more values than it has text (aliases repeating anchors?)") }
        switch node {
        case .alias(let alias):
            throw problem("the YAML alias *\(alias.anchor) was not resolved")
        case .scalar(let scalar):
            switch Tag.Name(rawValue: node.tag.rawValue) {
            case .null: return NSNull()
            case .bool: return node.bool ?? scalar.string
            case .int: return node.int ?? scalar.string
            case .float:
                guard let number = node.float, number.isFinite else { throw problem("'\(scalar.string)' is not a finite number") }
                return number
            default: return scalar.string
            }
        case .sequence(let sequence):
            var items: [Any] = []
            items.reserveCapacity(sequence.count)
            for (index, item) in sequence.enumerated() {
                pointer.append(String(index))
                items.append(try value(of: item, at: &pointer, budget: &budget))
                pointer.removeLast()
            }
            return items
        case .mapping(let mapping):
            var object: [String: Any] = [:]
            for (key, item) in mapping {
                guard case .scalar(let name) = key else { throw problem("a mapping key must be text") }
                guard object[name.string] == nil else { throw problem("the key '\(name.string)' appears twice") }
                pointer.append(name.string)
                object[name.string] = try value(of: item, at: &pointer, budget: &budget)
                pointer.removeLast()
            }
            return object
        }
    }
}
