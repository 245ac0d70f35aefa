import Contracts
import Foundation
import Testing

/// The configuration's JSON Schema (served by config-service), the Swift types that decode and
/// encode the document, and docs/configuration.md name the same fields.
@Suite struct ConfigurationSchemaTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func schema() throws -> [String: Any] {
        let data = try Data(contentsOf: root.appendingPathComponent("Services/ConfigService/hes-configuration-v1.schema.json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// A document that sets every field, every endpoint kind and every form of a secret.
    static let everything = """
        {"schema": "hes-configuration/v1",
         "regions": [{"id": "north", "name": "North"}],
         "lines": [
           {"id": "L1", "region": "north", "endpoint": {"kind": "tcp", "host": "10.0.0.1", "port": 4059}, "maxSessions": 2,
            "timeouts": {"connectSeconds": 5, "stepSeconds": 10}, "retry": {"attempts": 3, "backoffSeconds": 2},
            "networkSegment": "cell-1", "segmentConnectionsPerSecond": 5},
           {"id": "L2", "region": "north", "endpoint": {"kind": "udp", "host": "10.0.0.2", "port": 4059}},
           {"id": "L3", "region": "north", "endpoint": {"kind": "gateway-udp", "host": "10.0.0.3", "port": 4001}},
           {"id": "L4", "region": "north", "endpoint": {"kind": "serial", "device": "/dev/ttyS0", "baudRate": 9600}},
           {"id": "L5", "region": "north", "endpoint": {"kind": "optical", "device": "/dev/ttyUSB0", "maximumBaudRate": 9600}}],
         "templates": [{"id": "home", "schedules": ["daily"], "objects": [{"classID": 3, "obis": "1.0.1.8.0.255", "attribute": 2}],
                        "profiles": [{"obis": "1.0.99.1.0.255", "classID": 7, "attribute": 2, "lookbackHours": 24}],
                        "defaults": {"protocol": "dlms-hdlc", "clientSAP": 17, "serverLogicalAddress": 1, "authentication": "lls",
                                     "security": "none", "manufacturerProfile": "standard"}}],
         "schedules": [{"id": "daily", "cron": "0 2 * * *", "timeZone": "Europe/Berlin", "windowMinutes": 60, "jitterSeconds": 600}],
         "manufacturerProfiles": [{"id": "fam-a", "profile": "standard"}, {"id": "fam-b", "profile": {"name": "inline"}}],
         "meters": [
           {"id": "M1", "serialNumber": "S1", "line": "L1", "template": "home", "hdlcPhysicalAddress": 17, "deviceAddress": "12345678",
            "systemTitle": "4D4D4D0000000001", "serverSystemTitle": "4D4D4D0000BC614E", "protocol": "dlms-wrapper", "clientSAP": 1,
            "serverLogicalAddress": 1, "authentication": "hls-gmac", "security": "both", "manufacturerProfile": "fam-a",
            "keys": {"password": "secret", "blockCipherKey": "000102030405060708090A0B0C0D0E0F", "authenticationKey": "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"}},
           {"id": "M2", "line": "L2", "template": "home",
            "keys": {"password": {"masterKeyID": "k1", "sealed": "AAAA"}, "blockCipherKey": {"masterKeyID": "k1", "sealed": "AAAA"},
                     "authenticationKey": {"masterKeyID": "k1", "sealed": "AAAA"}}},
           {"id": "M3", "line": "L3", "template": "home",
            "keys": {"password": {"redacted": true}, "blockCipherKey": {"redacted": true}, "authenticationKey": {"redacted": true}}}]}
        """

    /// Every field path the schema declares (`meters[].keys.password.sealed`).
    static func declaredPaths(_ node: [String: Any], _ prefix: String, _ defs: [String: Any], into paths: inout Set<String>) {
        let node = resolve(node, defs)
        if let variants = node["oneOf"] as? [[String: Any]] {
            for variant in variants { declaredPaths(variant, prefix, defs, into: &paths) }
            return
        }
        if node["type"] as? String == "array", let items = node["items"] as? [String: Any] {
            declaredPaths(items, prefix + "[]", defs, into: &paths)
            return
        }
        for (key, child) in node["properties"] as? [String: [String: Any]] ?? [:] {
            let path = prefix.isEmpty ? key : prefix + "." + key
            paths.insert(path)
            declaredPaths(child, path, defs, into: &paths)
        }
    }

    static func resolve(_ node: [String: Any], _ defs: [String: Any]) -> [String: Any] {
        guard let reference = node["$ref"] as? String, let name = reference.split(separator: "/").last,
              let target = defs[String(name)] as? [String: Any] else { return node }
        return resolve(target, defs)
    }

    /// Walks an encoded document against the schema: the paths it uses, and keys the schema does not declare.
    static func usedPaths(_ value: Any, _ node: [String: Any], _ prefix: String, _ defs: [String: Any], used: inout Set<String>, undeclared: inout Set<String>) {
        var node = resolve(node, defs)
        if let variants = node["oneOf"] as? [[String: Any]] {
            let candidates = variants.map { resolve($0, defs) }
            if value is String, let variant = candidates.first(where: { $0["type"] as? String == "string" }) {
                node = variant
            } else if let object = value as? [String: Any] {
                let fitting = candidates.filter { variant in
                    guard variant["type"] as? String == "object" else { return false }
                    let properties = variant["properties"] as? [String: [String: Any]]
                    guard let properties else { return true }
                    if let kind = object["kind"] as? String, let constant = properties["kind"]?["const"] as? String, kind != constant { return false }
                    return Set(object.keys).isSubset(of: properties.keys)
                }
                guard let variant = fitting.first else { undeclared.insert(prefix + " (no variant fits)"); return }
                node = variant
            }
        }
        if let array = value as? [Any], let items = node["items"] as? [String: Any] {
            for element in array { usedPaths(element, items, prefix + "[]", defs, used: &used, undeclared: &undeclared) }
            return
        }
        guard let object = value as? [String: Any], let properties = node["properties"] as? [String: [String: Any]] else { return }
        for (key, child) in object {
            let path = prefix.isEmpty ? key : prefix + "." + key
            guard let declared = properties[key] else {
                undeclared.insert(path)
                continue
            }
            used.insert(path)
            usedPaths(child, declared, path, defs, used: &used, undeclared: &undeclared)
        }
    }

    @Test("the JSON Schema declares exactly the fields the Swift types decode and encode")
    func schemaMatchesTypes() throws {
        let schema = try Self.schema()
        let defs = schema["$defs"] as? [String: Any] ?? [:]
        var declared = Set<String>()
        Self.declaredPaths(schema, "", defs, into: &declared)
        let document = try JSONDecoder().decode(ConfigurationDocument.self, from: Data(Self.everything.utf8))
        let encoded = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(document))
        var used = Set<String>()
        var undeclared = Set<String>()
        Self.usedPaths(encoded, schema, "", defs, used: &used, undeclared: &undeclared)
        #expect(undeclared.isEmpty, "encoded but not in the schema: \(undeclared.sorted())")
        #expect(declared.subtracting(used).isEmpty, "in the schema but never encoded: \(declared.subtracting(used).sorted())")
        #expect(declared.count > 70)
    }

    @Test("docs/configuration.md documents every field of the schema, and no other")
    func referenceMatchesSchema() throws {
        let schema = try Self.schema()
        var declared = Set<String>()
        Self.declaredPaths(schema, "", schema["$defs"] as? [String: Any] ?? [:], into: &declared)
        let reference = try String(contentsOf: Self.root.appendingPathComponent("docs/configuration.md"), encoding: .utf8)
        var documented = Set<String>()
        for line in reference.split(separator: "\n") where line.hasPrefix("| `") {
            let cell = line.dropFirst(3)
            if let end = cell.firstIndex(of: "`") { documented.insert(String(cell[..<end])) }
        }
        #expect(declared.subtracting(documented).isEmpty, "not documented: \(declared.subtracting(documented).sorted())")
        #expect(documented.subtracting(declared).isEmpty, "documented but not in the schema: \(documented.subtracting(declared).sorted())")
    }
}
