import Logging
import Observability
import Prometheus
import ServiceLifecycle

/// What every executable shares at run time: its logger, readiness, metrics registry and the
/// admin server, and the `ServiceGroup` that runs its services with graceful shutdown.
public struct ServiceRuntime: Sendable {
    public let configuration: RuntimeConfiguration
    public let logger: Logger
    public let readiness: Readiness
    public let metrics: PrometheusCollectorRegistry
    public let adminServer: AdminServer

    /// Bootstraps logging and metrics for this process (once) and creates the admin server.
    public init(_ configuration: RuntimeConfiguration) {
        self.configuration = configuration
        self.metrics = ObservabilityBootstrap.bootstrap(
            service: configuration.executable, format: configuration.logFormat, level: configuration.logLevel)
        var logger = Logger(label: configuration.executable)
        logger.logLevel = configuration.logLevel
        self.logger = logger
        self.readiness = Readiness()
        self.adminServer = AdminServer(
            configuration: configuration.admin, readiness: readiness, registry: metrics, logger: logger)
    }

    /// A group running the admin server and `services`, shut down gracefully on SIGTERM or
    /// SIGINT: services stop intake and finish in-flight work (in reverse order, so the admin
    /// server stops last), and are cancelled if they exceed `gracefulShutdownTimeout`.
    public func serviceGroup(running services: [any Service]) -> ServiceGroup {
        var groupConfiguration = ServiceGroupConfiguration(
            services: ([adminServer] + services).map {
                .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup,
                      failureTerminationBehavior: .gracefullyShutdownGroup)
            },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = configuration.gracefulShutdownTimeout
        groupConfiguration.maximumCancellationDuration = .seconds(1)
        return ServiceGroup(configuration: groupConfiguration)
    }
}

/// A service that does nothing but wait for shutdown: it keeps a group alive for executables
/// whose only job so far is to serve their admin endpoints and report readiness.
public struct IdleService: Service {
    public init() {}
    public func run() async throws {
        try? await gracefulShutdown()
    }
}
