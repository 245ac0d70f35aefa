import Logging
import Metrics
import Observability
import ServiceLifecycle

/// One dependency a process watches: its name, how to check it and how often.
public struct DependencyCheck: Sendable {
    /// The name `/readyz`, the logs and the metrics use (`database`, `kafka`, `ims`).
    public var name: String
    /// Time between checks while the dependency answers. Default: 2 s, so a lost
    /// dependency shows on `/readyz` within a few seconds.
    public var interval: Duration
    /// First wait after a failed check; it doubles after each further failure, up to
    /// `maximumRetryDelay`. Default: 500 ms.
    public var initialRetryDelay: Duration
    /// Default: 5 s.
    public var maximumRetryDelay: Duration
    /// Deadline of one check; a check still running then counts as failed. Default: 3 s.
    public var checkTimeout: Duration
    /// Why the dependency is not ready before its first check passed. Default: `not checked yet`.
    public var initialReason: String

    /// Returns when the dependency answered, throws (an error that says why) when it did not.
    public var check: @Sendable () async throws -> Void

    public init(
        name: String, interval: Duration = .seconds(2), initialRetryDelay: Duration = .milliseconds(500),
        maximumRetryDelay: Duration = .seconds(5), checkTimeout: Duration = .seconds(3),
        initialReason: String = "not checked yet", check: @escaping @Sendable () async throws -> Void
    ) {
        self.check = check
        self.name = name
        self.interval = interval
        self.initialRetryDelay = initialRetryDelay
        self.maximumRetryDelay = maximumRetryDelay
        self.checkTimeout = checkTimeout
        self.initialReason = initialReason
    }
}

/// Watches one dependency (PostgreSQL, a Kafka broker, the IMS) for the whole life of the
/// process and reports it to `/readyz`. Create it through ``ServiceRuntime/watch(_:)``, the one
/// way every service follows its dependencies.
///
/// Each check runs with a deadline. A dependency that stops answering makes the process not
/// ready (naming the dependency and the error) within one interval plus one deadline; the
/// process keeps running and keeps checking, and is ready again at the first check that passes.
/// Losing and recovering are logged once each (the errors in between at debug level), so a long
/// outage does not flood the log. Metrics: `hes_dependency_up{dependency}` (1 or 0) and
/// `hes_dependency_check_failures_total{dependency}`.
public struct DependencyProbe<ProbeClock: Clock<Duration>>: Service {
    private let configuration: DependencyCheck
    private let readiness: Readiness
    private let logger: Logger
    private let clock: ProbeClock
    private let failures: Counter
    private let up: Gauge

    /// The dependency's name.
    public var name: String { configuration.name }

    /// - Parameter clock: decides when checks run and when they time out (tests pass their own).
    public init(_ configuration: DependencyCheck, readiness: Readiness, logger: Logger, clock: ProbeClock) {
        self.configuration = configuration
        self.readiness = readiness
        self.logger = logger
        self.clock = clock
        self.failures = Counter(label: "hes_dependency_check_failures_total", dimensions: [("dependency", configuration.name)])
        self.up = Gauge(label: "hes_dependency_up", dimensions: [("dependency", configuration.name)])
        self.up.record(0)
        readiness.register(configuration.name, reason: configuration.initialReason)
    }

    public func run() async throws {
        var state = DependencyProbeState(configuration: configuration)
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let outcome: Result<Void, any Error>
            do {
                let timeout = configuration.checkTimeout
                try await withDeadline(timeout, clock: clock, timeoutError: { DependencyCheckTimeout(timeout: timeout) }, configuration.check)
                outcome = .success(())
            } catch {
                if Task.isCancelled || Task.isShuttingDownGracefully { return }
                outcome = .failure(error)
            }
            let step = state.checked(outcome)
            report(step, outcome: outcome)
            do {
                try await cancelWhenGracefulShutdown { try await clock.sleep(for: step.nextCheckIn) }
            } catch {
                return
            }
        }
    }

    private func report(_ step: DependencyProbeState.Step, outcome: Result<Void, any Error>) {
        let name = configuration.name
        switch outcome {
        case .success:
            readiness.markReady(name)
            up.record(1)
            if step.changed {
                logger.info("\(name) reachable", metadata: [LogMetadataKey.dependency: "\(name)"])
            }
        case .failure(let error):
            failures.increment()
            up.record(0)
            readiness.markNotReady(name, reason: "\(error)")
            if step.first {
                // Starting while a dependency is still coming up is normal: not an error yet.
                logger.notice("waiting for \(name)", metadata: [
                    LogMetadataKey.dependency: "\(name)", LogMetadataKey.error: "\(error)",
                ])
            } else if step.changed {
                logger.error("\(name) unreachable, retrying", metadata: [
                    LogMetadataKey.dependency: "\(name)", LogMetadataKey.error: "\(error)",
                    LogMetadataKey.retryIn: "\(step.nextCheckIn)",
                ])
            } else {
                logger.debug("\(name) still unreachable", metadata: [LogMetadataKey.dependency: "\(name)", LogMetadataKey.error: "\(error)"])
            }
        }
    }
}

extension DependencyProbe where ProbeClock == ContinuousClock {
    /// A probe on the wall clock.
    public init(_ configuration: DependencyCheck, readiness: Readiness, logger: Logger) {
        self.init(configuration, readiness: readiness, logger: logger, clock: ContinuousClock())
    }
}

/// The probe's decisions, without I/O: after each check, whether the dependency changed state
/// (a line to log) and when to check next (the interval while healthy, a doubling backoff while not).
struct DependencyProbeState: Sendable {
    struct Step: Equatable, Sendable {
        /// The check's outcome differs from the one before (the first check always does).
        var changed: Bool
        /// This was the first check.
        var first: Bool = false
        var nextCheckIn: Duration
    }

    private let configuration: DependencyCheck
    private var healthy: Bool?
    private var everSucceeded = false
    private var retryDelay: Duration

    init(configuration: DependencyCheck) {
        self.configuration = configuration
        self.retryDelay = configuration.initialRetryDelay
    }

    mutating func checked(_ outcome: Result<Void, any Error>) -> Step {
        switch outcome {
        case .success:
            let changed = healthy != true, first = healthy == nil
            healthy = true
            everSucceeded = true
            retryDelay = configuration.initialRetryDelay
            return Step(changed: changed, first: first, nextCheckIn: configuration.interval)
        case .failure:
            let changed = healthy != false, first = healthy == nil
            if healthy == nil || !everSucceeded {
                // Still starting (the database applying migrations, the broker coming up):
                // check again soon, so the process is ready within a moment of its dependency.
                healthy = false
                return Step(changed: changed, first: first, nextCheckIn: configuration.initialRetryDelay)
            }
            healthy = false
            let delay = retryDelay
            retryDelay = min(retryDelay * 2, configuration.maximumRetryDelay)
            return Step(changed: changed, first: first, nextCheckIn: delay)
        }
    }
}

/// Why a dependency check failed when it did not throw by itself.
public struct DependencyCheckTimeout: Error, CustomStringConvertible {
    public let timeout: Duration
    public var description: String { "no answer within \(timeout)" }
}

/// Runs `body`, or cancels it and throws `timeoutError()` when it has not returned `timeout`
/// after the start on `clock`: the one deadline race the services share (dependency checks, a
/// collector's sessions).
public func withDeadline<C: Clock<Duration>>(
    _ timeout: Duration, clock: C, timeoutError: @escaping @Sendable () -> any Error,
    _ body: @escaping @Sendable () async throws -> Void
) async throws {
    try await withThrowingTaskGroup(of: Bool.self) { group in
        group.addTask { try await body(); return true }
        group.addTask { try await clock.sleep(for: timeout); return false }
        defer { group.cancelAll() }
        guard let finished = try await group.next(), finished else {
            throw timeoutError()
        }
    }
}
