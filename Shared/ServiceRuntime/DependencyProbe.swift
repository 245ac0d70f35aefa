import Logging
import Metrics
import Observability
import ServiceLifecycle

/// Checks a dependency (a Kafka broker, the IMS) at an interval and reports it to `/readyz`.
///
/// An unreachable dependency is logged once when it goes away and once when it comes back (with
/// the error in between at debug level), so a long outage does not flood the log; the process
/// keeps running and keeps retrying.
public struct DependencyProbe: Service {
    /// Default interval between checks while the dependency is healthy: 10 s; while it is not,
    /// checks back off from 1 s doubling up to this interval.
    public struct Configuration: Sendable {
        public var name: String
        public var interval: Duration
        public var initialRetryDelay: Duration

        public init(name: String, interval: Duration = .seconds(10), initialRetryDelay: Duration = .seconds(1)) {
            self.name = name
            self.interval = interval
            self.initialRetryDelay = initialRetryDelay
        }
    }

    private let configuration: Configuration
    private let readiness: Readiness
    private let logger: Logger
    private let check: @Sendable () async throws -> Void
    private let failures: Counter

    /// - Parameter check: returns when the dependency answered, throws when it did not.
    public init(_ configuration: Configuration, readiness: Readiness, logger: Logger, check: @escaping @Sendable () async throws -> Void) {
        self.configuration = configuration
        self.readiness = readiness
        self.logger = logger
        self.check = check
        self.failures = Counter(label: "hes_dependency_check_failures_total", dimensions: [("dependency", configuration.name)])
        readiness.register(configuration.name, reason: "not checked yet")
    }

    public func run() async throws {
        var healthy: Bool? = nil
        var retryDelay = configuration.initialRetryDelay
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await check()
                if healthy != true {
                    logger.info("\(configuration.name) reachable")
                }
                healthy = true
                retryDelay = configuration.initialRetryDelay
                readiness.markReady(configuration.name)
            } catch {
                failures.increment()
                readiness.markNotReady(configuration.name, reason: "\(error)")
                if healthy != false {
                    logger.error("\(configuration.name) unreachable, retrying", metadata: [
                        LogMetadataKey.error: "\(error)", "retry.in": "\(retryDelay)",
                    ])
                } else {
                    logger.debug("\(configuration.name) still unreachable", metadata: [LogMetadataKey.error: "\(error)"])
                }
                healthy = false
            }
            let delay = healthy == true ? configuration.interval : retryDelay
            if healthy == false { retryDelay = min(retryDelay * 2, configuration.interval) }
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
            } catch {
                return
            }
        }
    }
}
