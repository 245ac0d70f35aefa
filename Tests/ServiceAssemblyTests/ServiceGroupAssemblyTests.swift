import Contracts
import Foundation
import Messaging
import Persistence
import ServiceLifecycle
import ServiceRuntime
import Testing
import TestSupport
@testable import Collector
@testable import ConfigService
@testable import Scheduler
@testable import Uploader

/// Each service's `serviceGroup(for:)`, the code its `main` runs, built and run in this process
/// against the test PostgreSQL and a Kafka mock cluster: it becomes ready through the shared
/// wiring (database and producer watched), then shuts down gracefully.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct ServiceGroupAssemblyTests {
    static let region = "asm"

    private static func runtime(_ executable: String, port: Int) -> RuntimeConfiguration {
        var configuration = RuntimeConfiguration(executable: executable, logLevel: .warning, admin: .init(host: "127.0.0.1", port: port))
        // In a loaded test run a slow shutdown must fail its test, not end the whole test process.
        configuration.cancellationTimeout = .seconds(30)
        return configuration
    }

    /// Runs `group` until `/readyz` on `port` is 200 (or `timeout`), then shuts it down; returns
    /// the last `/readyz` answer seen while it ran.
    private static func runUntilReady(_ group: ServiceGroup, port: Int, timeout: Duration = .seconds(30)) async throws -> (status: Int, body: String) {
        let running = Task { try await group.run() }
        var last: (status: Int, body: String) = (0, "")
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let answer = try? httpGet(port: port, path: "/readyz") {
                last = answer
                if answer.status == 200 { break }
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        await group.triggerGracefulShutdown()
        try await running.value
        return last
    }

    @Test
    func collector() async throws {
        let kafka = try KafkaTestSupport.mockCluster(topics: Dictionary(uniqueKeysWithValues: KafkaTopics.all(regions: [Self.region]).map { ($0, 2) }))
        let port = try freeLoopbackPort()
        let group = try Collector.App.serviceGroup(for: CollectorConfiguration(
            runtime: Self.runtime("collector", port: port), region: Self.region,
            kafkaBrokers: kafka.bootstrapServers, maxConcurrentLines: 4))
        let readiness = try await Self.runUntilReady(group, port: port)
        #expect(readiness.status == 200, "\(readiness.body)")
    }

    @Test
    func uploader() async throws {
        let database = try await PostgresTestCluster.shared.createDatabase(prefix: "asm_up")
        let kafka = try KafkaTestSupport.mockCluster(topics: [:])
        let port = try freeLoopbackPort()
        let group = try Uploader.App.serviceGroup(for: UploaderConfiguration(
            runtime: Self.runtime("uploader", port: port), database: database.configuration,
            kafkaBrokers: kafka.bootstrapServers, ims: .init(baseURL: "http://127.0.0.1:1")))
        let readiness = try await Self.runUntilReady(group, port: port)
        #expect(readiness.status == 200, "\(readiness.body)")
    }

    @Test
    func scheduler() async throws {
        let database = try await PostgresTestCluster.shared.createDatabase(prefix: "asm_sch")
        let kafka = try KafkaTestSupport.mockCluster(topics: [:])
        let port = try freeLoopbackPort()
        let group = try Scheduler.App.serviceGroup(for: SchedulerConfiguration(
            runtime: Self.runtime("scheduler", port: port), database: database.configuration, kafkaBrokers: kafka.bootstrapServers))
        let readiness = try await Self.runUntilReady(group, port: port)
        #expect(readiness.status == 200, "\(readiness.body)")
    }

    @Test
    func configService() async throws {
        let database = try await PostgresTestCluster.shared.createDatabase(prefix: "asm_cfg")
        let port = try freeLoopbackPort()
        let group = ConfigService.App.serviceGroup(for: ConfigServiceConfiguration(
            runtime: Self.runtime("config-service", port: port), database: database.configuration, apiPort: 0))
        let readiness = try await Self.runUntilReady(group, port: port)
        #expect(readiness.status == 200, "\(readiness.body)")
    }

    /// A database that does not answer keeps the service alive and not ready, naming it.
    @Test
    func unreachableDatabaseIsNamedNotFatal() async throws {
        let deadPort = try freeLoopbackPort()
        let port = try freeLoopbackPort()
        let group = ConfigService.App.serviceGroup(for: ConfigServiceConfiguration(
            runtime: Self.runtime("config-service", port: port),
            database: try DatabaseConfiguration(url: "postgres://hes@127.0.0.1:\(deadPort)/hes"), apiPort: 0))
        let readiness = try await Self.runUntilReady(group, port: port, timeout: .seconds(3))
        #expect(readiness.status == 503)
        #expect(readiness.body.contains("database"), "\(readiness.body)")
    }
}
