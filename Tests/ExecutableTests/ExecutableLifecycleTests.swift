import Foundation
import Testing
import TestSupport

/// Every service executable: answers --help, starts, serves its admin endpoints, and exits 0
/// within 5 s of SIGTERM. Bad flags and settings are usage errors, not crashes.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct ExecutableLifecycleTests {
    /// Service executables and the settings each needs to start without other processes.
    static let services: [(product: String, environment: [String: String])] = [
        ("config-service", ["HES_API_PORT": "0"]),
        ("scheduler", [:]),
        ("collector", ["HES_REGION": "test"]),
        ("uploader", [:]),
        ("meter-sim", [:]),
        ("ims-sim", ["HES_IMS_DATABASE_URL": "postgres://hes@127.0.0.1:1/ims_sim", "HES_IMS_PORT": "0"]),
        ("kafka-dev", [:]),
    ]

    static let allProducts = services.map(\.product) + ["hesctl"]

    @Test(arguments: allProducts)
    func helpExitsZero(product: String) async throws {
        let result = try await ChildProcess.run(product: product, arguments: ["--help"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout.contains("USAGE:"), "stdout: \(result.stdout)")
    }

    @Test(arguments: allProducts)
    func unknownFlagIsAUsageError(product: String) async throws {
        let result = try await ChildProcess.run(product: product, arguments: ["--no-such-flag"])
        #expect(result.status == 64, "status \(result.status), stderr: \(result.stderr)")
        #expect(result.stderr.contains("Unknown option '--no-such-flag'"), "stderr: \(result.stderr)")
    }

    @Test(arguments: services.map(\.product))
    func invalidSettingFromEnvironmentIsAUsageError(product: String) async throws {
        let result = try await ChildProcess.run(
            product: product, arguments: [], environment: ["HES_LOG_LEVEL": "loud", "HES_REGION": "test"])
        #expect(result.status == 64, "status \(result.status), stderr: \(result.stderr)")
        #expect(result.stderr.contains("environment HES_LOG_LEVEL: 'loud' is not a log level"), "stderr: \(result.stderr)")
    }

    @Test(arguments: services)
    func startsServesHealthAndStopsOnSIGTERM(service: (product: String, environment: [String: String])) async throws {
        let port = try freeLoopbackPort()
        var environment = service.environment
        environment["HES_LOG_FORMAT"] = "json"
        // Dependencies that are absent must not stop the process from serving health.
        environment["HES_DATABASE_URL"] = "postgres://hes@127.0.0.1:1/hes"
        environment["HES_KAFKA_BROKERS"] = "127.0.0.1:1"
        let child = try ChildProcess(product: service.product, arguments: ["--admin-port", String(port)], environment: environment)
        try await child.waitForOutput(containing: "admin server listening", timeout: .seconds(20))

        let health = try httpGet(port: port, path: "/healthz")
        #expect(health.status == 200)
        #expect(health.body == "ok\n")
        let metrics = try httpGet(port: port, path: "/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.body.contains("hes_ready"), "metrics: \(metrics.body)")
        let readiness = try httpGet(port: port, path: "/readyz")
        #expect([200, 503].contains(readiness.status))
        let missing = try httpGet(port: port, path: "/nothing-here")
        #expect(missing.status == 404)
        // JSON logs: every line on stderr is one JSON object.
        for line in child.standardError.split(separator: "\n") {
            #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil, "not JSON: \(line)")
        }

        let stopStarted = ContinuousClock.now
        child.signal(SIGTERM)
        let status = await child.waitForExit(timeout: .seconds(5))
        #expect(status == 0, "exit status \(String(describing: status)) after \(ContinuousClock.now - stopStarted); stderr:\n\(child.standardError)")
    }

    @Test
    func settingsFileIsReadAndFlagsWin() async throws {
        let filePort = try freeLoopbackPort()
        let flagPort = try freeLoopbackPort()
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("hes-settings-\(UUID().uuidString).env")
        try "# settings\nHES_ADMIN_PORT=\(filePort)\nHES_LOG_LEVEL=\"debug\"\nHES_IMS_DATABASE_URL=postgres://hes@127.0.0.1:1/ims_sim\nHES_IMS_PORT=0\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }

        let fromFile = try ChildProcess(product: "ims-sim", arguments: ["--config-file", file.path])
        try await fromFile.waitForOutput(containing: "admin server listening", timeout: .seconds(20))
        #expect(try httpGet(port: filePort, path: "/healthz").status == 200)
        fromFile.signal(SIGTERM)
        #expect(await fromFile.waitForExit(timeout: .seconds(5)) == 0)

        let fromFlag = try ChildProcess(product: "ims-sim", arguments: ["--config-file", file.path, "--admin-port", String(flagPort)])
        try await fromFlag.waitForOutput(containing: "admin server listening", timeout: .seconds(20))
        #expect(try httpGet(port: flagPort, path: "/healthz").status == 200)
        fromFlag.signal(SIGTERM)
        #expect(await fromFlag.waitForExit(timeout: .seconds(5)) == 0)
    }

    @Test
    func missingRequiredSettingNamesFlagAndVariable() async throws {
        let result = try await ChildProcess.run(product: "collector", arguments: [])
        #expect(result.status == 64)
        #expect(result.stderr.contains("missing setting: pass --region or set HES_REGION"), "stderr: \(result.stderr)")
    }
}
