import Contracts
import DLMSSecurity
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Persistence
import PostgresNIO
import ServiceRuntime
import Synchronization
import Testing
import TestSupport
@testable import ConfigService

/// The control-plane API over its real store (a private PostgreSQL database per test): apply,
/// refuse, diff, roll back, concurrent writers, partial updates, secrets, roles, audit, repair.
@Suite("config-service: versions, validation, secrets, roles", .timeLimit(.minutes(3)))
struct ConfigAPITests {
    static let adminToken = "test-admin-token"
    static let masterKey = try! MasterKey(id: "m1", hex: "00112233445566778899aabbccddeeff")
    static let secretKeyHex = "5EC4E75EC4E75EC4E75EC4E75EC4E75E"

    /// Collects every log line with its metadata, to prove secrets never reach a log.
    final class LogText: Sendable {
        let lines = Mutex<[String]>([])
        func logger() -> Logger {
            var logger = Logger(label: "config-test") { _ in Handler(sink: self) }
            logger.logLevel = .trace
            return logger
        }
        struct Handler: LogHandler {
            let sink: LogText
            var metadata: Logger.Metadata = [:]
            var logLevel: Logger.Level = .trace
            subscript(metadataKey key: String) -> Logger.Metadata.Value? {
                get { metadata[key] }
                set { metadata[key] = newValue }
            }
            func log(event: LogEvent) {
                let all = metadata.merging(event.metadata ?? [:]) { $1 }
                sink.lines.withLock { $0.append("\(event.message) \(all)") }
            }
        }
    }

    struct Harness: Sendable {
        let client: any TestClientProtocol
        let database: PostgresTestDatabase
        let service: DatabaseService
        let store: ConfigurationStore
        let commands: CommandStore
        let logs: LogText

        func send(_ method: HTTPRequest.Method, _ uri: String, token: String? = ConfigAPITests.adminToken, body: String? = nil,
                  idempotencyKey: String? = nil, contentType: String = "application/json") async throws -> (status: HTTPResponse.Status, body: String) {
            var headers = HTTPFields()
            if let idempotencyKey { headers[HTTPField.Name("Idempotency-Key")!] = idempotencyKey }
            if let token { headers[.authorization] = "Bearer \(token)" }
            headers[.contentType] = contentType
            return try await client.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) { response in
                (response.status, String(buffer: response.body))
            }
        }

        func sql(_ text: String) async throws -> [String] {
            try await service.withConnection { connection in
                var values: [String] = []
                for try await value in try await connection.query(PostgresQuery(unsafeSQL: text), logger: Logger(label: "sql")).decode(String.self) {
                    values.append(value)
                }
                return values
            }
        }
    }

    func withAPI(masterKey: MasterKey? = ConfigAPITests.masterKey, previousKeys: [MasterKey] = [], commandGuard: CommandStore.Guard = .init(),
                 _ body: @Sendable (Harness) async throws -> Void) async throws {
        let database = try await PostgresTestCluster.shared.createDatabase(prefix: "config")
        let logs = LogText()
        let logger = logs.logger()
        _ = try await MigrationRunner(migrations: Migration.bundled(), logger: logger).run(configuration: database.configuration)
        let service = DatabaseService(configuration: .init(database: database.configuration, runMigrations: false), logger: logger)
        let store = ConfigurationStore(database: service, logger: logger)
        let tokens = APITokens(database: service, logger: logger)
        let manager = ConfigurationManager(store: store, vault: SecretVault(masterKeys: masterKey.map { MasterKeyRing(current: $0, previous: previousKeys) }), validator: App.validator, logger: logger)
        let commands = CommandStore(database: service, guardrails: commandGuard, logger: logger)
        let routes = ConfigRoutes(manager: manager, commands: commands, tokens: tokens, maxDocumentBytes: 1 << 20, logger: logger)
        let server = APIServer(configuration: .init(port: 0, name: "config api"), logger: logger) { routes.register($0) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await service.client.run() }
            try await tokens.ensureBootstrap(Self.adminToken)
            try await Application(router: server.makeRouter()).test(.router) { client in
                try await body(Harness(client: client, database: database, service: service, store: store, commands: commands, logs: logs))
            }
            group.cancelAll()
        }
    }

    /// A document with `meters` HDLC meters on one gateway bus and one HLS-GMAC wrapper meter.
    static func document(meters: Int = 3, schedule: String = "0 2 * * *", extraObject: Bool = false) -> String {
        let bus = (0..<meters).map { #"{"id": "M\#($0)", "line": "bus-1", "template": "home", "hdlcPhysicalAddress": \#(16 + $0)}"# }
        let objects = extraObject ? #"{"classID": 3, "obis": "1.0.1.8.0.255", "attribute": 2}, {"classID": 8, "obis": "0.0.1.0.0.255", "attribute": 2}"#
                                  : #"{"classID": 3, "obis": "1.0.1.8.0.255", "attribute": 2}"#
        return """
            {"schema": "hes-configuration/v1",
             "regions": [{"id": "north"}],
             "schedules": [{"id": "daily", "cron": "\(schedule)", "timeZone": "Europe/Berlin"}],
             "templates": [{"id": "home", "schedules": ["daily"], "defaults": {"protocol": "dlms-hdlc"}, "objects": [\(objects)]}],
             "lines": [{"id": "bus-1", "region": "north", "endpoint": {"kind": "gateway-udp", "host": "10.0.0.1", "port": 4001}},
                       {"id": "ip-1", "region": "north", "endpoint": {"kind": "tcp", "host": "10.0.0.2", "port": 4059}}],
             "meters": [\((bus + [#"{"id": "SEC", "line": "ip-1", "template": "home", "protocol": "dlms-wrapper", "authentication": "hls-gmac", "systemTitle": "4D4D4D0000BC614E", "keys": {"blockCipherKey": "\#(secretKeyHex)", "authenticationKey": "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"}}"#]).joined(separator: ",\n")) ]}
            """
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        try ContractCoder.makeDecoder().decode(type, from: Data(text.utf8))
    }

    @Test("apply: a version is stored, activated, the read models rebuilt, audited and notified")
    func applyActivates() async throws {
        try await withAPI { api in
            let listener = try await api.database.configuration.connect(logger: Logger(label: "listen"))
            defer { Task { try? await listener.close() } }
            let notifications = try await listener.listen(ConfigurationStore.notificationChannel)
            let reply = try await api.send(.post, "/v1/config/versions?comment=first", body: Self.document())
            #expect(reply.status == .created, "\(reply.body)")
            let report = try Self.decode(ApplyReport.self, reply.body)
            #expect(report.version.status == "active" && report.version.meters == 4 && report.version.comment == "first")
            #expect(report.changes.meters.added.count == 4)
            var iterator = notifications.makeAsyncIterator()
            let notified = try await iterator.next()
            #expect(notified?.payload == "\(report.version.id)")
            #expect(try await api.sql("SELECT count(*)::text FROM meters") == ["4"])
            #expect(try await api.sql("SELECT kind || ' ' || address FROM lines ORDER BY id") == ["gateway-udp 10.0.0.1:4001", "tcp 10.0.0.2:4059"])
            #expect(try await api.sql("SELECT template_id || '/' || schedule_id FROM template_schedules") == ["home/daily"])
            #expect(try await api.sql("SELECT protocol || ' ' || authentication FROM meters WHERE id = 'SEC'") == ["dlms-wrapper hls-gmac"])
            #expect(try await api.sql("SELECT key_kind FROM meter_secrets ORDER BY key_kind") == ["authentication-key", "global-unicast-key"])
            #expect(try await api.sql("SELECT action FROM audit_log ORDER BY id") == ["token.bootstrap", "config.staged", "config.activated"])
            #expect(try await api.sql("SELECT actor FROM audit_log WHERE action = 'config.activated'") == ["bootstrap"])

            // The same document again: same hash, nothing changes in the read models' content.
            let again = try Self.decode(ApplyReport.self, try await api.send(.post, "/v1/config/versions", body: Self.document()).body)
            #expect(again.changes.isEmpty)
            #expect(again.version.sha256 == report.version.sha256)
            #expect(again.version.parentID == report.version.id)
        }
    }

    @Test("a document with problems is refused whole: 422 with every problem at its pointer, nothing changed")
    func refusedChangesNothing() async throws {
        try await withAPI { api in
            _ = try await api.send(.post, "/v1/config/versions", body: Self.document())
            let versionsBefore = try await api.sql("SELECT count(*)::text FROM config_versions")
            var broken = Self.document(meters: 5, schedule: "0 0 31 4 *")
            broken = broken.replacingOccurrences(of: #""hdlcPhysicalAddress": 20"#, with: #""hdlcPhysicalAddress": 16"#)
            broken = broken.replacingOccurrences(of: #""line": "bus-1", "template": "home", "hdlcPhysicalAddress": 19"#, with: #""line": "bus-7", "template": "home", "hdlcPhysicalAddress": 19"#)
            let reply = try await api.send(.post, "/v1/config/versions", body: broken)
            #expect(reply.status == .unprocessableContent)
            let problem = try Self.decode(HTTPProblem.self, reply.body)
            #expect(problem.type == "urn:swifthes:problem:invalid-configuration")
            let pointers = Set(problem.errors?.map(\.pointer) ?? [])
            #expect(pointers == ["/schedules/0/cron", "/meters/3/line", "/meters/4/hdlcPhysicalAddress"], "\(reply.body)")
            #expect(try await api.sql("SELECT count(*)::text FROM config_versions") == versionsBefore)
            #expect(try await api.sql("SELECT count(*)::text FROM meters") == ["4"])

            let notJSON = try await api.send(.post, "/v1/config/versions", body: "{not json")
            #expect(notJSON.status == .unprocessableContent)
            let dryRun = try await api.send(.post, "/v1/config/validate", body: broken)
            #expect(dryRun.status == .unprocessableContent)
            #expect(try Self.decode(ValidationReport.self, dryRun.body).problems.count == 3)
            let goodDryRun = try Self.decode(ValidationReport.self, try await api.send(.post, "/v1/config/validate", body: Self.document(meters: 5)).body)
            #expect(goodDryRun.valid && goodDryRun.changes?.meters.added == ["M3", "M4"])
            #expect(try await api.sql("SELECT count(*)::text FROM config_versions") == versionsBefore)
        }
    }

    /// ``document(meters: 2)`` without its secured meter, written in block-style YAML.
    static let yamlDocument = """
        # Two meters on a gateway bus, read daily.
        schema: hes-configuration/v1
        regions:
          - id: north
        schedules:
          - id: daily
            cron: "0 2 * * *"
            timeZone: Europe/Berlin
        templates:
          - id: home
            schedules: [daily]
            defaults:
              protocol: dlms-hdlc
            objects:
              - {classID: 3, obis: 1.0.1.8.0.255, attribute: 2}
        lines:
          - id: bus-1
            region: north
            endpoint: {kind: gateway-udp, host: 10.0.0.1, port: 4001}
        meters:
          - id: M0
            line: bus-1
            template: home
            hdlcPhysicalAddress: 16
          - {id: M1, line: bus-1, template: home, hdlcPhysicalAddress: 17}
        """

    @Test("YAML documents: stored like the same document in JSON; problems at the same JSON pointers; aliases read, billion laughs, duplicate keys, nulls and broken YAML refused with where")
    func yamlDocuments() async throws {
        try await withAPI { api in
            let applied = try await api.send(.post, "/v1/config/versions", body: Self.yamlDocument, contentType: "application/yaml")
            #expect(applied.status == .created, "\(applied.body)")
            #expect(try await api.sql("SELECT id FROM meters ORDER BY id") == ["M0", "M1"])
            // The same document in JSON changes nothing.
            let json = #"""
                {"schema": "hes-configuration/v1", "regions": [{"id": "north"}],
                 "schedules": [{"id": "daily", "cron": "0 2 * * *", "timeZone": "Europe/Berlin"}],
                 "templates": [{"id": "home", "schedules": ["daily"], "defaults": {"protocol": "dlms-hdlc"}, "objects": [{"classID": 3, "obis": "1.0.1.8.0.255", "attribute": 2}]}],
                 "lines": [{"id": "bus-1", "region": "north", "endpoint": {"kind": "gateway-udp", "host": "10.0.0.1", "port": 4001}}],
                 "meters": [{"id": "M0", "line": "bus-1", "template": "home", "hdlcPhysicalAddress": 16}, {"id": "M1", "line": "bus-1", "template": "home", "hdlcPhysicalAddress": 17}]}
                """#
            let same = try Self.decode(ValidationReport.self, try await api.send(.post, "/v1/config/validate", body: json).body)
            #expect(same.valid)
            let changes = try #require(same.changes)
            #expect([changes.regions, changes.lines, changes.templates, changes.schedules, changes.meters].allSatisfy {
                $0.added.isEmpty && $0.removed.isEmpty && $0.changed.isEmpty
            }, "\(changes)")

            // Validation problems keep their JSON pointers.
            let broken = Self.yamlDocument.replacingOccurrences(of: "obis: 1.0.1.8.0.255", with: "obis: 1.0.1.8.0").replacingOccurrences(of: "hdlcPhysicalAddress: 17", with: "hdlcPhysicalAddress: 16")
            let refused = try await api.send(.post, "/v1/config/validate", body: broken, contentType: "text/yaml; charset=utf-8")
            #expect(refused.status == .unprocessableContent)
            #expect(Set(try Self.decode(ValidationReport.self, refused.body).problems.map(\.pointer)) == ["/templates/0/objects/0/obis", "/meters/1/hdlcPhysicalAddress"], "\(refused.body)")

            // Aliases repeat their anchor's value; a few lines standing for billions of values are refused.
            let aliased = Self.yamlDocument.replacingOccurrences(of: "    defaults:\n      protocol: dlms-hdlc", with: "    defaults: &hdlc\n      protocol: dlms-hdlc")
                + "\n  - {id: M2, line: bus-1, template: home, hdlcPhysicalAddress: 18}"
            #expect(try await api.send(.post, "/v1/config/validate", body: aliased, contentType: "application/yaml").status == .ok)
            var laughs = "schema: hes-configuration/v1\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
            for level in 1...8 { laughs += "a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ") + "]\n" }
            for (yaml, expected) in [
                (laughs, "far more values"),
                (Self.yamlDocument.replacingOccurrences(of: "    hdlcPhysicalAddress: 16", with: "    hdlcPhysicalAddress: 16\n    hdlcPhysicalAddress: 18"), "unique"),
                ("schema: [unclosed", "not a YAML document"),
                ("- a list\n- not a mapping", "a mapping"),
                (Self.yamlDocument.replacingOccurrences(of: "  - id: north", with: "  - id: north\n    name: null"), "null is not a value here"),
            ] {
                let reply = try await api.send(.post, "/v1/config/versions", body: yaml, contentType: "application/yaml")
                #expect(reply.status == .unprocessableContent, "\(yaml)")
                #expect(reply.body.contains(expected), "\(reply.body)")
            }
            #expect(try await api.sql("SELECT count(*)::text FROM config_versions") == ["1"], "nothing refused was stored")
        }
    }

    @Test("diff between versions, rollback to the previous one, read models follow")
    func diffAndRollback() async throws {
        try await withAPI { api in
            let first = try Self.decode(ApplyReport.self, try await api.send(.post, "/v1/config/versions", body: Self.document()).body)
            let second = try Self.decode(ApplyReport.self, try await api.send(.post, "/v1/config/versions", body: Self.document(meters: 5, extraObject: true)).body)
            let diff = try Self.decode(ConfigurationDiff.self, try await api.send(.get, "/v1/config/diff?from=\(first.version.id)&to=\(second.version.id)").body)
            #expect(diff.meters.added == ["M3", "M4"] && diff.templates.changed == ["home"] && diff.metersAffectedIndirectly == 4)
            #expect(try await api.sql("SELECT count(*)::text FROM meters") == ["6"])

            let rolledBack = try await api.send(.post, "/v1/config/rollback?expectedActive=\(second.version.id)")
            #expect(rolledBack.status == .ok, "\(rolledBack.body)")
            #expect(try Self.decode(VersionSummary.self, rolledBack.body).id == first.version.id)
            #expect(try await api.sql("SELECT count(*)::text FROM meters") == ["4"])
            #expect(try await api.sql("SELECT status FROM config_versions ORDER BY id") == ["active", "superseded"])
            #expect(try await api.sql("SELECT action FROM audit_log WHERE action = 'config.rolled-back'") == ["config.rolled-back"])
            let list = try Self.decode([VersionSummary].self, try await api.send(.get, "/v1/config/versions").body)
            #expect(list.map(\.id) == [second.version.id, first.version.id])
            #expect(try await api.send(.get, "/v1/config/versions/999").status == .notFound)
            #expect(try await api.send(.get, "/v1/config/diff?from=abc").status == .badRequest)
        }
    }

    @Test("two writers based on the same version: one wins, the other gets a conflict; a stale staged version cannot be activated")
    func concurrentWriters() async throws {
        try await withAPI { api in
            let first = try Self.decode(ApplyReport.self, try await api.send(.post, "/v1/config/versions", body: Self.document()).body)
            let results = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for meters in [5, 6] {
                    group.addTask { try await api.send(.post, "/v1/config/versions?basedOn=\(first.version.id)", body: Self.document(meters: meters)).status }
                }
                return try await group.reduce(into: [HTTPResponse.Status]()) { $0.append($1) }
            }
            #expect(results.sorted { $0.code < $1.code } == [.created, .conflict])
            #expect(try await api.sql("SELECT count(*)::text FROM config_versions WHERE status = 'active'") == ["1"])

            // Staged on an old version: activating it would silently drop the newer change.
            let staged = try Self.decode(ApplyReport.self, try await api.send(.post, "/v1/config/versions?activate=false&basedOn=\(first.version.id)", body: Self.document(meters: 2)).body)
            #expect(staged.version.status == "staged")
            let activation = try await api.send(.post, "/v1/config/versions/\(staged.version.id)/activate")
            #expect(activation.status == .conflict, "\(activation.body)")
        }
    }

    @Test("partial update: meters added, changed and removed make a new version; an unknown meter to remove is refused")
    func partialUpdate() async throws {
        try await withAPI { api in
            _ = try await api.send(.post, "/v1/config/versions", body: Self.document())
            let patch = #"{"upsert": [{"id": "M9", "line": "bus-1", "template": "home", "hdlcPhysicalAddress": 40}, {"id": "M0", "line": "bus-1", "template": "home", "hdlcPhysicalAddress": 41}], "remove": ["M1"]}"#
            let reply = try await api.send(.patch, "/v1/config/meters", body: patch)
            #expect(reply.status == .created, "\(reply.body)")
            let report = try Self.decode(ApplyReport.self, reply.body)
            #expect(report.changes.meters == ConfigurationDiff.Changes(added: ["M9"], removed: ["M1"], changed: ["M0"]))
            #expect(try await api.sql("SELECT id || ':' || hdlc_address FROM meters WHERE line_id = 'bus-1' ORDER BY id") == ["M0:41", "M2:18", "M9:40"])
            // The HLS meter kept its keys through the partial update.
            #expect(try await api.sql("SELECT count(*)::text FROM meter_secrets") == ["2"])

            let clash = try await api.send(.patch, "/v1/config/meters", body: #"{"upsert": [{"id": "M8", "line": "bus-1", "template": "home", "hdlcPhysicalAddress": 40}], "remove": ["NOPE"]}"#)
            #expect(clash.status == .unprocessableContent)
            #expect(Set(try Self.decode(HTTPProblem.self, clash.body).errors?.map(\.pointer) ?? []) == ["/upsert/0/hdlcPhysicalAddress", "/remove"])
        }
    }

    @Test("secrets: sealed in the database, never in an API answer or a log; a redacted round trip keeps them; no master key refuses them")
    func secrets() async throws {
        try await withAPI { api in
            let applied = try await api.send(.post, "/v1/config/versions", body: Self.document())
            #expect(applied.status == .created)
            let lowered = Self.secretKeyHex.lowercased()
            for text in try await api.sql("SELECT document::text FROM config_versions") + (try await api.sql("SELECT encode(ciphertext, 'hex') FROM meter_secrets"))
                + (try await api.sql("SELECT spec::text FROM meters")) {
                #expect(!text.uppercased().contains(Self.secretKeyHex), "a secret is in the clear in the database")
                #expect(!text.contains(lowered))
            }
            // The box opens with the master key, bound to its meter.
            let box = try await api.sql("SELECT encode(ciphertext, 'base64') FROM meter_secrets WHERE key_kind = 'global-unicast-key'")
            let plain = try Self.masterKey.open(Array(Data(base64Encoded: box[0].replacingOccurrences(of: "\n", with: ""))!), context: "SEC/blockCipherKey")
            #expect(plain.map { String(format: "%02X", $0) }.joined() == Self.secretKeyHex)

            let shown = try await api.send(.get, "/v1/config/active")
            #expect(shown.status == .ok)
            #expect(!shown.body.uppercased().contains(Self.secretKeyHex) && shown.body.contains(#""redacted":true"#))
            // What the API shows, sent back: nothing changes, the secrets stay.
            let view = try Self.decode(ConfigRoutes.VersionView.self, shown.body)
            let roundTrip = String(decoding: try JSONEncoder().encode(view.document), as: UTF8.self)
            let again = try await api.send(.post, "/v1/config/versions", body: roundTrip)
            #expect(again.status == .created, "\(again.body)")
            #expect(try Self.decode(ApplyReport.self, again.body).changes.isEmpty)
            #expect(try await api.sql("SELECT count(*)::text FROM meter_secrets") == ["2"])
            #expect(!api.logs.lines.withLock { $0 }.contains { $0.uppercased().contains(Self.secretKeyHex) })
        }
        try await withAPI(masterKey: nil) { api in
            let refused = try await api.send(.post, "/v1/config/versions", body: Self.document())
            #expect(refused.status == .unprocessableContent)
            #expect(try Self.decode(HTTPProblem.self, refused.body).type == "urn:swifthes:problem:no-master-key")
        }
    }

    @Test("master-key rotation: secrets sealed under the previous key are sealed again under the current one in a new active version; the old key is then not needed")
    func masterKeyRotation() async throws {
        let newKey = try MasterKey(id: "m2", hex: "FFEEDDCCBBAA99887766554433221100")
        // The configuration as a service holding only m1 stored it: its secrets sealed under m1.
        var document = try ContractCoder.makeDecoder().decode(ConfigurationDocument.self, from: Data(Self.document().utf8))
        document = try SecretVault(masterKeys: MasterKeyRing(current: Self.masterKey)).seal(document, base: nil)
        let sealedUnderM1 = String(decoding: try JSONEncoder().encode(document), as: UTF8.self)
        #expect(sealedUnderM1.contains(#""masterKeyID":"m1""#))

        try await withAPI(masterKey: newKey, previousKeys: [Self.masterKey]) { api in
            let applied = try await api.send(.post, "/v1/config/versions", body: sealedUnderM1)
            #expect(applied.status == .created, "boxes of the previous key are accepted: \(applied.body)")
            let rotated = try await api.send(.post, "/v1/config/rotate-master-key")
            #expect(rotated.status == .ok, "\(rotated.body)")
            let report = try Self.decode(KeyRotationReport.self, rotated.body)
            #expect(report.masterKeyID == "m2" && report.resealed == 2 && report.version?.status == "active", "\(rotated.body)")
            let active = try await api.sql("SELECT document::text FROM config_versions WHERE status = 'active'")
            #expect(active.count == 1 && active[0].contains(#""m2""#) && !active[0].contains(#""m1""#))
            // The read model holds boxes that open with m2 only, bound to their meter; the value is unchanged.
            let box = try await api.sql("SELECT encode(ciphertext, 'base64') FROM meter_secrets WHERE key_kind = 'global-unicast-key'")
            let plain = try newKey.open(Array(Data(base64Encoded: box[0].replacingOccurrences(of: "\n", with: ""))!), context: "SEC/blockCipherKey")
            #expect(plain.map { String(format: "%02X", $0) }.joined() == Self.secretKeyHex)
            #expect((try? Self.masterKey.open(Array(Data(base64Encoded: box[0].replacingOccurrences(of: "\n", with: ""))!), context: "SEC/blockCipherKey")) == nil)
            #expect(try await api.sql("SELECT comment FROM config_versions WHERE status = 'active'") == ["master key rotated to 'm2': 2 secret(s) sealed again"])
            // Nothing left to do: no new version.
            let again = try Self.decode(KeyRotationReport.self, try await api.send(.post, "/v1/config/rotate-master-key").body)
            #expect(again.resealed == 0 && again.version == nil)
            #expect(try await api.send(.post, "/v1/config/rotate-master-key", token: nil).status == .unauthorized)
        }
        // A service that holds neither key refuses boxes it cannot open.
        let stranger = try MasterKey(id: "m3", hex: "0F0E0D0C0B0A09080706050403020100")
        try await withAPI(masterKey: stranger) { api in
            let refused = try await api.send(.post, "/v1/config/versions", body: sealedUnderM1)
            #expect(refused.status == .unprocessableContent, "a box of a key this service does not hold is refused: \(refused.body)")
        }
    }

    @Test("roles: no token 401, unknown 401, viewer reads but may not change, admin makes and revokes tokens")
    func roles() async throws {
        try await withAPI { api in
            #expect(try await api.send(.get, "/v1/config/versions", token: nil).status == .unauthorized)
            #expect(try await api.send(.get, "/v1/config/versions", token: "guess").status == .unauthorized)
            let created = try await api.send(.post, "/v1/tokens", body: #"{"name": "ims-reader", "role": "viewer"}"#)
            #expect(created.status == .created)
            let token = try Self.decode(ConfigRoutes.CreatedToken.self, created.body).token
            #expect(try await api.sql("SELECT count(*)::text FROM api_tokens WHERE token_sha256 = '\(APITokens.hash(token))'") == ["1"])
            #expect(try await api.sql("SELECT count(*)::text FROM api_tokens WHERE token_sha256 = '\(token)'") == ["0"])
            #expect(try await api.send(.get, "/v1/config/versions", token: token).status == .ok)
            let forbidden = try await api.send(.post, "/v1/config/versions", token: token, body: Self.document())
            #expect(forbidden.status == .forbidden)
            #expect(try await api.send(.get, "/v1/tokens", token: token).status == .forbidden)
            #expect(try await api.send(.post, "/v1/tokens", body: #"{"name": "ims-reader", "role": "admin"}"#).status == .conflict)
            #expect(try await api.send(.post, "/v1/tokens", body: #"{"name": "x y", "role": "admin"}"#).status == .badRequest)
            #expect(try await api.send(.delete, "/v1/tokens/ims-reader").status == .noContent)
            try await Task.sleep(for: .milliseconds(10))
            #expect(try await api.sql("SELECT action FROM audit_log WHERE action LIKE 'token.%' ORDER BY id") == ["token.bootstrap", "token.created", "token.revoked"])
            #expect(try await api.send(.get, "/openapi.yaml", token: nil).status == .ok)
            let schema = try await api.send(.get, "/hes-configuration-v1.schema.json", token: nil)
            #expect(schema.status == .ok && schema.body.contains("hes-configuration/v1") && schema.body.contains("$defs"), "\(schema.body.prefix(200))")
        }
    }

    @Test("start-up repair rebuilds read models that do not hold the active version")
    func repair() async throws {
        try await withAPI { api in
            _ = try await api.send(.post, "/v1/config/versions", body: Self.document())
            #expect(try await api.store.repair() == nil, "consistent read models are left alone")
            try await api.service.withConnection { try await $0.query("DELETE FROM meters WHERE id = 'M1'", logger: Logger(label: "sql")) }
            let rebuilt = try await api.store.repair()
            #expect(rebuilt != nil)
            #expect(try await api.sql("SELECT count(*)::text FROM meters") == ["4"])
        }
    }

    @Test("commands: accepted once per idempotency key, checked against the active configuration, listed, cancelled, expired at start-up")
    func commands() async throws {
        try await withAPI { api in
            _ = try await api.send(.post, "/v1/config/versions", body: Self.document())
            let read = #"{"kind": "read-profile", "meterID": "M1", "from": "2026-12-01T00:00:00Z", "to": "2026-12-02T00:00:00Z"}"#
            let first = try await api.send(.post, "/v1/commands", body: read, idempotencyKey: "ims-42")
            #expect(first.status == .created, "\(first.body)")
            let command = try Self.decode(CommandView.self, first.body)
            #expect(command.state == "accepted" && !command.requiresApproval && command.requestedBy == "bootstrap")
            let retry = try await api.send(.post, "/v1/commands", body: read, idempotencyKey: "ims-42")
            #expect(retry.status == .ok)
            #expect(try Self.decode(CommandView.self, retry.body).id == command.id)
            let reused = try await api.send(.post, "/v1/commands", body: read.replacingOccurrences(of: "M1", with: "M2"), idempotencyKey: "ims-42")
            #expect(reused.status == .conflict)
            #expect(try await api.sql("SELECT count(*)::text FROM commands") == ["1"])

            let unknown = try await api.send(.post, "/v1/commands", body: #"{"kind": "disconnect", "meterID": "NOPE"}"#)
            #expect(unknown.status == .unprocessableContent)
            #expect(try Self.decode(HTTPProblem.self, unknown.body).errors?.map(\.pointer) == ["/meterID"])
            let backwards = try await api.send(.post, "/v1/commands", body: #"{"kind": "read-profile", "meterID": "M1", "from": "2026-12-02T00:00:00Z", "to": "2026-12-01T00:00:00Z"}"#)
            #expect(try Self.decode(HTTPProblem.self, backwards.body).errors?.map(\.pointer) == ["/to"])
            #expect(try await api.send(.post, "/v1/commands", body: #"{"kind": "explode", "meterID": "M1"}"#).status == .unprocessableContent)

            let listed = try Self.decode([CommandView].self, try await api.send(.get, "/v1/commands?meter=M1&state=accepted").body)
            #expect(listed.map(\.id) == [command.id])
            #expect(try Self.decode(CommandView.self, try await api.send(.get, "/v1/commands/\(command.id)").body).request.kind == .readProfile)
            #expect(try await api.send(.get, "/v1/commands/not-a-uuid").status == .badRequest)

            let cancelled = try await api.send(.post, "/v1/commands/\(command.id)/cancel")
            #expect(try Self.decode(CommandView.self, cancelled.body).state == "cancelled")
            #expect(try await api.send(.post, "/v1/commands/\(command.id)/cancel").status == .conflict)

            let soon = ContractDate.format(Date().addingTimeInterval(1))
            let short = try Self.decode(CommandView.self, try await api.send(.post, "/v1/commands", body: #"{"kind": "time-sync", "meterID": "M2", "deadline": "\#(soon)"}"#).body)
            try await Task.sleep(for: .milliseconds(1500))
            #expect(try await api.commands.expireStale() == 1)
            #expect(try Self.decode(CommandView.self, try await api.send(.get, "/v1/commands/\(short.id)").body).state == "expired")
            #expect(try await api.sql("SELECT action FROM audit_log WHERE action LIKE 'command.%' ORDER BY id") == ["command.accepted", "command.cancelled", "command.accepted", "command.expired"])
        }
    }

    @Test("disconnect guard: above the threshold a second operator approves; above the hourly limit 429; viewers cannot command")
    func disconnectGuard() async throws {
        try await withAPI(commandGuard: CommandStore.Guard(switchingLimitPerHour: 3, approvalThreshold: 1)) { api in
            _ = try await api.send(.post, "/v1/config/versions", body: Self.document())
            let operatorToken = try Self.decode(ConfigRoutes.CreatedToken.self, try await api.send(.post, "/v1/tokens", body: #"{"name": "op-2", "role": "operator"}"#).body).token
            let viewerToken = try Self.decode(ConfigRoutes.CreatedToken.self, try await api.send(.post, "/v1/tokens", body: #"{"name": "watcher", "role": "viewer"}"#).body).token
            #expect(try await api.send(.post, "/v1/commands", token: viewerToken, body: #"{"kind": "disconnect", "meterID": "M0"}"#).status == .forbidden)

            let free = try Self.decode(CommandView.self, try await api.send(.post, "/v1/commands", body: #"{"kind": "disconnect", "meterID": "M0"}"#).body)
            #expect(!free.requiresApproval)
            let guarded = try Self.decode(CommandView.self, try await api.send(.post, "/v1/commands", body: #"{"kind": "reconnect", "meterID": "M1"}"#).body)
            #expect(guarded.requiresApproval)
            #expect(try await api.send(.post, "/v1/commands/\(guarded.id)/approve").status == .conflict, "the requester cannot approve")
            let approved = try await api.send(.post, "/v1/commands/\(guarded.id)/approve", token: operatorToken)
            #expect(approved.status == .ok)
            #expect(try Self.decode(CommandView.self, approved.body).approvedBy == "op-2")
            #expect(try await api.send(.post, "/v1/commands/\(free.id)/approve", token: operatorToken).status == .conflict)
            _ = try await api.send(.post, "/v1/commands", body: #"{"kind": "disconnect", "meterID": "M2"}"#)
            let limited = try await api.send(.post, "/v1/commands", body: #"{"kind": "disconnect", "meterID": "SEC"}"#)
            #expect(limited.status == .tooManyRequests, "\(limited.body)")
            // Reads are not guarded.
            #expect(try await api.send(.post, "/v1/commands", body: #"{"kind": "time-sync", "meterID": "SEC"}"#).status == .created)
        }
    }
}
