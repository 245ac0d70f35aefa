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
            "HES_DATABASE_URL": "postgres://hes@127.0.0.1:\(deadPort)/hes",
            "HES_KAFKA_BROKERS": "127.0.0.1:\(deadPort)",
        ])
        try await child.waitForOutput(containing: "database unreachable at 127.0.0.1:\(deadPort)", timeout: .seconds(20))
        try await child.waitForOutput(containing: "retrying in", timeout: .seconds(5))
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
        try await child.waitForOutput(containing: "kafka unreachable, retrying", timeout: .seconds(20))
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
