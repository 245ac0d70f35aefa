import Foundation
import Logging
import Persistence
import PostgresNIO
import Testing
import TestSupport

/// config-service as a process: a SIGKILL in the middle of activating a large configuration
/// leaves one whole version active (the old or the new one, never a mix), and the restarted
/// service serves it.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct ConfigServiceProcessTests {
    static let token = "process-test-token"
    static let logger = Logger(label: "config-process-test")

    static func document(lines: Int, metersPerLine: Int) -> String {
        var meters: [String] = []
        var lineEntries: [String] = []
        for line in 0..<lines {
            lineEntries.append(#"{"id": "bus-\#(line)", "region": "north", "endpoint": {"kind": "gateway-udp", "host": "10.1.\#(line / 250).\#(line % 250)", "port": 4001}}"#)
            for drop in 0..<metersPerLine {
                meters.append(#"{"id": "M\#(line)-\#(drop)", "line": "bus-\#(line)", "template": "home", "hdlcPhysicalAddress": \#(16 + drop)}"#)
            }
        }
        return """
            {"schema": "hes-configuration/v1", "regions": [{"id": "north"}],
             "schedules": [{"id": "daily", "cron": "0 2 * * *"}],
             "templates": [{"id": "home", "schedules": ["daily"], "defaults": {"protocol": "dlms-hdlc"}, "objects": [{"classID": 3, "obis": "1.0.1.8.0.255", "attribute": 2}]}],
             "lines": [\(lineEntries.joined(separator: ","))], "meters": [\(meters.joined(separator: ","))]}
            """
    }

    func start(_ database: PostgresTestDatabase, apiPort: Int, adminPort: Int, extra: [String] = []) async throws -> ChildProcess {
        let child = try ChildProcess(product: "config-service", arguments: ["--admin-port", "\(adminPort)", "--api-port", "\(apiPort)"] + extra, environment: [
            "HES_DATABASE_URL": database.url, "HES_API_TOKEN": Self.token,
        ])
        try await child.waitForOutput(containing: "config api listening", timeout: .seconds(30))
        return child
    }

    static func sql(_ database: PostgresTestDatabase, _ text: String) async throws -> [String] {
        let connection = try await database.configuration.connect(logger: logger)
        defer { Task { try? await connection.close() } }
        var values: [String] = []
        for try await value in try await connection.query(PostgresQuery(unsafeSQL: text), logger: logger).decode(String.self) { values.append(value) }
        return values
    }

    @Test("SIGKILL mid-activation of 20,000 meters: one whole version stays active, the restarted service serves it")
    func killedMidActivation() async throws {
        let database = try await PostgresTestCluster.shared.createDatabase(prefix: "cfg_kill")
        let apiPort = try freeLoopbackPort()
        var service = try await start(database, apiPort: apiPort, adminPort: try freeLoopbackPort())
        let auth = ["Authorization": "Bearer \(Self.token)"]
        let first = try httpSend(method: "POST", port: apiPort, path: "/v1/config/versions", json: Self.document(lines: 2, metersPerLine: 3), headers: auth)
        #expect(first.status == 201, "\(first.body)")

        let large = Self.document(lines: 200, metersPerLine: 100)
        let sending = Task.detached { try? httpSend(method: "POST", port: apiPort, path: "/v1/config/versions", json: large, headers: auth) }
        // Kill while the activating transaction writes (or as soon after as it is seen).
        var seen = false
        let deadline = ContinuousClock.now + .seconds(60)
        while !seen && ContinuousClock.now < deadline {
            let active = try await Self.sql(database, """
                SELECT count(*)::text FROM pg_stat_activity WHERE datname = current_database() AND state = 'active'
                  AND (query LIKE '%INSERT INTO meters%' OR query LIKE '%TRUNCATE template_schedules%' OR query LIKE '%INSERT INTO lines%')
                """)
            seen = active != ["0"]
            if !seen { try await Task.sleep(for: .milliseconds(5)) }
        }
        service.signal(SIGKILL)
        _ = await service.waitForExit(timeout: .seconds(5))
        _ = await sending.value
        #expect(seen, "the activation was never seen writing the read models")

        service = try await start(database, apiPort: apiPort, adminPort: try freeLoopbackPort())
        defer { service.signal(SIGKILL) }
        let active = try await Self.sql(database, "SELECT id::text || ':' || jsonb_array_length(document->'meters')::text FROM config_versions WHERE status = 'active'")
        #expect(active.count == 1)
        print("BENCH-NOTE config-service killed mid-activation; active after restart (version:meters): \(active)")
        let expectedMeters = active.first?.split(separator: ":").last.map(String.init)
        #expect(try await Self.sql(database, "SELECT count(*)::text FROM meters") == [expectedMeters ?? "?"], "read models hold the active version whole")
        #expect(try await Self.sql(database, "SELECT count(*)::text FROM meters WHERE config_version_id <> (SELECT id FROM config_versions WHERE status = 'active')") == ["0"])
        #expect(!service.standardError.contains("read models rebuilt"), "nothing was half-done, so nothing to repair")
        let served = try httpGet(port: apiPort, path: "/v1/config/versions")
        #expect(served.status == 401, "the API serves again (and asks for a token)")

        // hesctl speaks to it: versions as JSON, a refused document listed with its paths, exit 2.
        let environment = ["HES_API_TOKEN": Self.token, "HES_CONFIG_URL": "http://127.0.0.1:\(apiPort)"]
        let versions = try await ChildProcess.run(product: "hesctl", arguments: ["config", "versions", "--json"], environment: environment)
        #expect(versions.status == 0, "\(versions.stderr)")
        #expect(versions.stdout.contains("\"status\":\"active\""), "\(versions.stdout)")
        let badFile = FileManager.default.temporaryDirectory.appendingPathComponent("bad-\(UUID().uuidString).json").path
        try #"{"schema": "hes-configuration/v1", "regions": [{"id": "north"}], "meters": [{"id": "x", "line": "nope", "template": "t"}]}"#
            .write(toFile: badFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: badFile) }
        let invalid = try await ChildProcess.run(product: "hesctl", arguments: ["config", "validate", badFile], environment: environment)
        #expect(invalid.status == 2)
        #expect(invalid.stdout.contains("/meters/0/line: unknown line 'nope'"), "\(invalid.stdout)")
        let unauthorized = try await ChildProcess.run(product: "hesctl", arguments: ["config", "versions"], environment: ["HES_API_TOKEN": "wrong", "HES_CONFIG_URL": environment["HES_CONFIG_URL"]!])
        #expect(unauthorized.status == 1 && unauthorized.stderr.contains("401"), "\(unauthorized.stderr)")

        service.signal(SIGTERM)
        #expect(await service.waitForExit(timeout: .seconds(10)) == 0)
    }

    @Test("the API over HTTPS: hesctl applies a YAML document trusting the API's CA; ims-sim pushes a configuration and a command twice (one command); plain HTTP gets no answer; a bad key file stops the start with its name")
    func httpsAndYAML() async throws {
        let database = try await PostgresTestCluster.shared.createDatabase(prefix: "config-tls")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hes-tls-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // A private CA and a server certificate for 127.0.0.1 signed by it.
        for command in [
            "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=hes-test-ca",
            "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1",
            "printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile san.ext",
        ] {
            let made = try await ChildProcess.run(executable: "/bin/sh", name: "openssl", arguments: ["-c", "cd \(directory) && \(command)"])
            #expect(made.status == 0, "\(command): \(made.stderr)")
        }
        let apiPort = try freeLoopbackPort()
        let service = try await start(database, apiPort: apiPort, adminPort: try freeLoopbackPort(), extra: [
            "--api-tls-cert-file", directory + "/server.pem", "--api-tls-key-file", directory + "/server.key",
        ])
        defer { service.signal(SIGKILL) }
        #expect(service.standardError.contains("api.scheme=https"), "\(service.standardError.suffix(2000))")

        let yaml = directory + "/fleet.yaml"
        try """
            schema: hes-configuration/v1
            regions: [{id: north}]
            schedules: [{id: daily, cron: "0 2 * * *"}]
            templates:
              - {id: home, schedules: [daily], defaults: {protocol: dlms-hdlc}, objects: [{classID: 3, obis: 1.0.1.8.0.255, attribute: 2}]}
            lines:
              - {id: bus-0, region: north, endpoint: {kind: gateway-udp, host: 10.1.0.0, port: 4001}}
            meters:
              - {id: M0, line: bus-0, template: home, hdlcPhysicalAddress: 16}
            """.write(toFile: yaml, atomically: true, encoding: .utf8)
        let environment = ["HES_API_TOKEN": Self.token, "HES_CONFIG_URL": "https://127.0.0.1:\(apiPort)"]
        let applied = try await ChildProcess.run(product: "hesctl", arguments: ["config", "apply", yaml, "--ca-file", directory + "/ca.pem"], environment: environment)
        #expect(applied.status == 0, "\(applied.stderr)")
        #expect(applied.stdout.contains("version 1 active (1 meters on 1 lines)"), "\(applied.stdout)")
        // The IMS's side: ims-sim pushes a configuration and a command, as the real IMS would.
        let pushed = try await ChildProcess.run(product: "ims-sim", arguments: ["push", "config", yaml, "--ca-file", directory + "/ca.pem"], environment: environment)
        #expect(pushed.status == 0 && pushed.stdout.contains(#""id":2"#), "\(pushed.stderr) \(pushed.stdout)")
        let command = directory + "/command.json"
        try #"{"kind": "disconnect", "meterID": "M0"}"#.write(toFile: command, atomically: true, encoding: .utf8)
        var commandIDs: [String] = []
        for _ in 0..<2 {
            let sent = try await ChildProcess.run(product: "ims-sim", arguments: [
                "push", "command", command, "--idempotency-key", "ims-order-4711", "--ca-file", directory + "/ca.pem",
            ], environment: environment)
            #expect(sent.status == 0, "\(sent.stderr)")
            let object = try JSONSerialization.jsonObject(with: Data(sent.stdout.utf8)) as? [String: Any]
            commandIDs.append(object?["id"] as? String ?? "?")
        }
        #expect(commandIDs.count == 2 && commandIDs[0] == commandIDs[1] && commandIDs[0] != "?", "a repeated push finds its command: \(commandIDs)")
        let bad = directory + "/bad.json"
        try #"{"schema": "hes-configuration/v1", "regions": [{"id": "north"}], "meters": [{"id": "x", "line": "nope", "template": "t"}]}"#
            .write(toFile: bad, atomically: true, encoding: .utf8)
        let refused = try await ChildProcess.run(product: "ims-sim", arguments: ["push", "config", bad, "--ca-file", directory + "/ca.pem"], environment: environment)
        #expect(refused.status == 1 && refused.stderr.contains("unknown line 'nope'"), "\(refused.stderr)")

        let untrusted = try await ChildProcess.run(product: "hesctl", arguments: ["config", "versions"], environment: environment)
        #expect(untrusted.status != 0, "a certificate from an unknown CA must not be trusted")
        let plain = try? httpGet(port: apiPort, path: "/v1/config/versions")
        #expect(plain?.status != 401 && plain?.status != 200, "plain HTTP is not served on the TLS port: \(String(describing: plain))")
        service.signal(SIGTERM)
        #expect(await service.waitForExit(timeout: .seconds(10)) == 0)

        let broken = try ChildProcess(product: "config-service", arguments: [
            "--admin-port", "\(try freeLoopbackPort())", "--api-port", "\(try freeLoopbackPort())",
            "--api-tls-cert-file", directory + "/server.pem", "--api-tls-key-file", directory + "/server.csr",
        ], environment: ["HES_DATABASE_URL": database.url])
        let status = await broken.waitForExit(timeout: .seconds(30))
        #expect(status != nil && status != 0, "a key file that holds no key stops the service")
        #expect(broken.standardError.contains("server.csr holds no PEM private key"), "\(broken.standardError.suffix(2000))")
    }
}
