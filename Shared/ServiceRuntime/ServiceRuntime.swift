import Logging
import Observability
import Prometheus
import ServiceLifecycle
import Synchronization
import UnixSignals

/// What every executable shares at run time: its logger, readiness, metrics registry, the
/// admin server and the watched dependencies, and the `ServiceGroup` that runs its services
/// with graceful shutdown.
///
/// The way a service is wired, in `App+build.swift`:
/// ```swift
/// let runtime = ServiceRuntime(configuration.runtime)
/// let database = runtime.database(configuration.database)      // ServiceDependencies: watched
/// let producer = try runtime.kafkaProducer(clientID: "hes-x", brokers: configuration.kafkaBrokers)
/// runtime.adminServer.addRoutes { router in router.get("v1/things") { … } }
/// return runtime.serviceGroup(running: [database, producer, worker])
/// ```
public struct ServiceRuntime: Sendable {
    public let configuration: RuntimeConfiguration
    public let logger: Logger
    public let readiness: Readiness
    public let metrics: PrometheusCollectorRegistry
    public let adminServer: AdminServer
    private let probes: ProbeList

    /// Bootstraps logging and metrics for this process (once) and creates the admin server.
    public init(_ configuration: RuntimeConfiguration) {
        self.configuration = configuration
        self.metrics = ObservabilityBootstrap.bootstrap(
            service: configuration.executable, format: configuration.logFormat, level: configuration.logLevel)
        var logger = Logger(label: configuration.executable)
        logger.logLevel = configuration.logLevel
        for (key, value) in configuration.logMetadata {
            logger[metadataKey: key] = .string(value)
        }
        self.logger = logger
        self.readiness = Readiness()
        self.adminServer = AdminServer(
            configuration: configuration.admin, readiness: readiness, registry: metrics, logger: logger)
        self.probes = ProbeList()
    }

    /// Follows a dependency for the life of the process: `/readyz` is 503 naming it from now
    /// until its check first passes, and again whenever a check fails, until one passes (see
    /// ``DependencyProbe``). The probe runs in ``serviceGroup(running:)``.
    public func watch(_ dependency: DependencyCheck) {
        probes.append(DependencyProbe(dependency, readiness: readiness, logger: logger))
    }

    /// The names of the dependencies watched so far, in the order they were added.
    public var watchedDependencies: [String] { probes.names }

    /// A group running the admin server, `services` and the probes of the watched
    /// dependencies (these once the admin server listens, so the probes answer first), shut down gracefully on SIGTERM or SIGINT: services stop intake and finish
    /// in-flight work (in reverse order, so the admin server stops last), and are cancelled if
    /// they exceed `gracefulShutdownTimeout`.
    public func serviceGroup(running services: [any Service]) -> ServiceGroup {
        let adminServer = self.adminServer
        let gated: [any Service] = (services + probes.services).map { StartsAfterAdminServer(service: $0, adminServer: adminServer) }
        var groupConfiguration = ServiceGroupConfiguration(
            services: ([adminServer] + gated).map {
                .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup,
                      failureTerminationBehavior: .gracefullyShutdownGroup)
            },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = configuration.gracefulShutdownTimeout
        groupConfiguration.maximumCancellationDuration = configuration.cancellationTimeout
        return ServiceGroup(configuration: groupConfiguration)
    }
}

/// A service that starts once the admin server listens.
private struct StartsAfterAdminServer: Service, CustomStringConvertible {
    let service: any Service
    let adminServer: AdminServer

    func run() async throws {
        await adminServer.waitUntilListening()
        try await service.run()
    }

    var description: String { "\(service)" }
}

/// The probes a runtime has created; shared by the copies of the runtime value.
private final class ProbeList: Sendable {
    private let probes = Mutex<[(name: String, service: any Service)]>([])

    func append(_ probe: DependencyProbe<ContinuousClock>) {
        probes.withLock { $0.append((probe.name, probe)) }
    }

    var services: [any Service] { probes.withLock { $0.map(\.service) } }
    var names: [String] { probes.withLock { $0.map(\.name) } }
}

/// A service that does nothing but wait for shutdown: it keeps a group alive for executables
/// whose only job so far is to serve their admin endpoints and report readiness.
public struct IdleService: Service {
    public init() {}
    public func run() async throws {
        try? await gracefulShutdown()
    }
}
