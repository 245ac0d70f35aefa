import Contracts
import Foundation
import Messaging
import Persistence
import Testing
import TestSupport

/// The services against their real dependencies: a private PostgreSQL cluster and a Kafka mock
/// cluster. Ready when both answer; alive, not ready and retrying when they do not.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct ServiceDependencyTests {
    static let region = "it"

    @Test(arguments: ["config-service", "scheduler", "uploader", "collector"])
    func readyWhenDatabaseAndBrokerAnswer(product: String) async throws {
        let database = try await PostgresTestCluster.shared.createDatabase(prefix: "svc")
        let kafka = try KafkaTestSupport.mockCluster(
            topics: Dictionary(uniqueKeysWithValues: KafkaTopics.all(regions: [Self.region]).map { ($0, 3) }))
        let port = try freeLoopbackPort()
        let child = try ChildProcess(product: product, arguments: ["--admin-port", String(port)], environment: [
            "HES_API_PORT": "0",  // config-service's API: any free port
            "HES_DATABASE_URL": database.url,
            "HES_KAFKA_BROKERS": kafka.bootstrapServers,
            "HES_REGION": Self.region,
        ])
        try await child.waitForOutput(containing: "admin server listening", timeout: .seconds(20))
        let ready = try await eventually(timeout: .seconds(30)) { try httpGet(port: port, path: "/readyz").status == 200 }
        #expect(ready, "readyz: \(String(describing: try? httpGet(port: port, path: "/readyz"))); stderr:\n\(child.standardError)")

        child.signal(SIGTERM)
        #expect(await child.waitForExit(timeout: .seconds(5)) == 0, "stderr:\n\(child.standardError)")
    }

    @Test(arguments: ["config-service", "scheduler", "uploader"])
    func unreachableDatabaseIsRetriedNotFatal(product: String) async throws {
        let deadPort = try freeLoopbackPort()
        let port = try freeLoopbackPort()
        let child = try ChildProcess(product: product, arguments: ["--admin-port", String(port)], environment: [
            "HES_API_PORT": "0",  // config-service's API: any free port
            "HES_DATABASE_URL": "postgres://hes@127.0.0.1:\(deadPort)/hes",
            "HES_KAFKA_BROKERS": "127.0.0.1:\(deadPort)",
        ])
        try await child.waitForOutput(containing: "database unreachable at 127.0.0.1:\(deadPort)", timeout: .seconds(20))
        try await child.waitForOutput(containing: "retrying in", timeout: .seconds(5))
        // The admin server starts beside the database service; on a loaded machine it may bind later.
        try await child.waitForOutput(containing: "admin server listening", timeout: .seconds(20))
        #expect(child.isRunning)
        let readiness = try httpGet(port: port, path: "/readyz")
        #expect(readiness.status == 503)
        #expect(readiness.body.contains("database"), "\(readiness.body)")
        #expect(try httpGet(port: port, path: "/healthz").status == 200)

        child.signal(SIGTERM)
        #expect(await child.waitForExit(timeout: .seconds(5)) == 0, "stderr:\n\(child.standardError)")
    }

    @Test
    func unreachableBrokerIsRetriedNotFatal() async throws {
        let deadPort = try freeLoopbackPort()
        let port = try freeLoopbackPort()
        let child = try ChildProcess(product: "collector", arguments: ["--admin-port", String(port)], environment: [
            "HES_KAFKA_BROKERS": "127.0.0.1:\(deadPort)", "HES_REGION": Self.region,
        ])
        try await child.waitForOutput(containing: "waiting for kafka", timeout: .seconds(20))
        try await child.waitForOutput(containing: "admin server listening", timeout: .seconds(20))
        #expect(child.isRunning)
        let readiness = try httpGet(port: port, path: "/readyz")
        #expect(readiness.status == 503)
        #expect(readiness.body.contains("kafka"), "\(readiness.body)")
        let metrics = try httpGet(port: port, path: "/metrics")
        #expect(metrics.body.contains(#"hes_dependency_check_failures_total{dependency="kafka"}"#), "\(metrics.body)")

        child.signal(SIGTERM)
        #expect(await child.waitForExit(timeout: .seconds(5)) == 0, "stderr:\n\(child.standardError)")
    }

    @Test
    func malformedDatabaseURLIsAClearError() async throws {
        let result = try await ChildProcess.run(product: "config-service", arguments: ["--database-url", "mysql://x"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("mysql://x") || result.stderr.contains("postgres"), "stderr: \(result.stderr)")
    }
}

/// Readiness that tells the truth: each service follows its dependencies for its whole life,
/// not only at start-up, and neither exits nor stays "ready" when one goes away.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct DependencyOutageTests {
    /// PostgreSQL stops under a running service and comes back on the same port.
    @Test(arguments: ["config-service", "uploader"])
    func readinessFollowsPostgres(product: String) async throws {
        let cluster = PostgresTestCluster()
        guard try await cluster.isPrivate else { return }  // an external server cannot be stopped
        let database = try await cluster.createDatabase(prefix: "outage")
        let kafka = try KafkaTestSupport.mockCluster(topics: [:])
        let port = try freeLoopbackPort()
        let child = try ChildProcess(product: product, arguments: ["--admin-port", String(port)], environment: [
            "HES_API_PORT": "0",  // config-service's API: any free port
            "HES_DATABASE_URL": database.url, "HES_KAFKA_BROKERS": kafka.bootstrapServers,
        ])
        defer { child.signal(SIGKILL) }
        try await child.waitForOutput(containing: "admin server listening", timeout: .seconds(20))
        #expect(try await eventually(timeout: .seconds(30)) { try httpGet(port: port, path: "/readyz").status == 200 },
                "stderr:\n\(child.standardError)")

        try await cluster.stopServer()
        let lost = try await eventually(timeout: .seconds(10)) {
            let readiness = try httpGet(port: port, path: "/readyz")
            return readiness.status == 503 && readiness.body.contains("database")
        }
        #expect(lost, "readyz: \(String(describing: try? httpGet(port: port, path: "/readyz")))")
        #expect(child.isRunning)
        #expect(try httpGet(port: port, path: "/healthz").status == 200)
        try await child.waitForOutput(containing: "database unreachable", timeout: .seconds(5))
        #expect(try httpGet(port: port, path: "/metrics").body.contains(#"hes_dependency_up{dependency="database"} 0"#))

        try await cluster.restartServer()
        #expect(try await eventually(timeout: .seconds(20)) { try httpGet(port: port, path: "/readyz").status == 200 },
                "readyz: \(String(describing: try? httpGet(port: port, path: "/readyz")))")
        #expect(child.standardError.components(separatedBy: "database reachable").count - 1 == 2, "stderr:\n\(child.standardError)")
        #expect(try httpGet(port: port, path: "/metrics").body.contains(#"hes_dependency_up{dependency="database"} 1"#))

        child.signal(SIGTERM)
        #expect(await child.waitForExit(timeout: .seconds(5)) == 0, "stderr:\n\(child.standardError)")
        await cluster.remove()
    }

    /// kafka-dev stops under a running collector and is started again on the same bootstrap port.
    @Test
    func readinessFollowsKafkaDevAcrossARestart() async throws {
        let kafkaPort = try freeLoopbackPort()
        let bootstrapFile = FileManager.default.temporaryDirectory.appendingPathComponent("kafka-bootstrap-\(UUID().uuidString)").path
        func startKafkaDev() async throws -> ChildProcess {
            let broker = try ChildProcess(product: "kafka-dev", arguments: [
                "--port", String(kafkaPort), "--admin-port", "0", "--regions", ServiceDependencyTests.region,
                "--partitions", "2", "--bootstrap-file", bootstrapFile,
            ])
            try await broker.waitForOutput(containing: "kafka-dev bootstrap: 127.0.0.1:\(kafkaPort)", timeout: .seconds(20))
            return broker
        }
        var broker = try await startKafkaDev()
        defer { broker.signal(SIGKILL) }
        let port = try freeLoopbackPort()
        let child = try ChildProcess(product: "collector", arguments: ["--admin-port", String(port)], environment: [
            "HES_KAFKA_BROKERS": "127.0.0.1:\(kafkaPort)", "HES_REGION": ServiceDependencyTests.region,
        ])
        defer { child.signal(SIGKILL) }
        #expect(try await eventually(timeout: .seconds(30)) { (try? httpGet(port: port, path: "/readyz").status) == 200 },
                "stderr:\n\(child.standardError)")

        broker.signal(SIGTERM)
        #expect(await broker.waitForExit(timeout: .seconds(5)) == 0)
        let lost = try await eventually(timeout: .seconds(15)) {
            let readiness = try httpGet(port: port, path: "/readyz")
            return readiness.status == 503 && readiness.body.contains("kafka")
        }
        #expect(lost, "readyz: \(String(describing: try? httpGet(port: port, path: "/readyz")))")
        #expect(child.isRunning)
        try await child.waitForOutput(containing: "kafka unreachable", timeout: .seconds(5))

        broker = try await startKafkaDev()
        #expect(try await eventually(timeout: .seconds(30)) { try httpGet(port: port, path: "/readyz").status == 200 },
                "readyz: \(String(describing: try? httpGet(port: port, path: "/readyz")))\nstderr:\n\(child.standardError)")
        #expect(child.standardError.components(separatedBy: "kafka reachable").count - 1 == 2, "stderr:\n\(child.standardError)")

        child.signal(SIGTERM)
        #expect(await child.waitForExit(timeout: .seconds(5)) == 0, "stderr:\n\(child.standardError)")
        broker.signal(SIGTERM)
        _ = await broker.waitForExit(timeout: .seconds(5))
    }
}
