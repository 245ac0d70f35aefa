import Foundation
import Logging
import Metrics
import Observability
import Persistence
import PostgresNIO
import ServiceLifecycle

/// Active/standby (DESIGN.md §1): every scheduler process tries `pg_try_advisory_lock` on a
/// dedicated connection once a second; the one that holds it is the leader and runs the
/// ``SchedulingEngine``. The lock lives as long as that connection: a leader that is killed,
/// hangs up or loses the database loses it, and a standby takes over within about a second
/// after PostgreSQL notices. While leading, the connection is checked every second (`SELECT 1`);
/// when that fails the engine is cancelled at once, so two leaders overlap for at most a check
/// interval — and the ledger and deterministic task ids make even that harmless. Each check has
/// a deadline (the database's connect timeout) after which the connection is closed: a check
/// that never answers (the server went away mid-query) ends the lead or the standby like a
/// failed one, and shutdown is never held up by it.
///
/// The same connection listens for `hes_config_activated`, so a new version is planned with
/// right away.
final class SchedulerLeader: Service, Sendable {
    /// `pg_try_advisory_lock` key of the scheduler leader ("HESSCH").
    static let lockKey: Int64 = 0x4845_5353_4348

    let database: DatabaseConfiguration
    let makeEngine: @Sendable () -> SchedulingEngine
    let logger: Logger
    let checkInterval: Duration

    init(database: DatabaseConfiguration, checkInterval: Duration = .seconds(1), logger: Logger,
         makeEngine: @escaping @Sendable () -> SchedulingEngine) {
        self.database = database
        self.checkInterval = checkInterval
        self.logger = logger
        self.makeEngine = makeEngine
    }

    func run() async throws {
        let metrics = SchedulerMetrics()
        metrics.leader.record(0)
        await cancelWhenGracefulShutdown {
            var announcedStandby = false
            while !Task.isCancelled {
                do {
                    let connection = try await self.database.connect(logger: self.logger)
                    do {
                        try await self.standBy(until: connection, announced: &announcedStandby)
                        guard !Task.isCancelled else {
                            try? await connection.close()
                            return
                        }
                        announcedStandby = false
                        metrics.leader.record(1)
                        metrics.takeovers.increment()
                        self.logger.info("leading: this scheduler holds the leader lock and emits tasks")
                        defer { metrics.leader.record(0) }
                        try await self.lead(on: connection)
                        try? await connection.close()
                    } catch {
                        try? await connection.close()
                        throw error
                    }
                } catch is CancellationError {
                    return
                } catch {
                    guard !Task.isCancelled else { return }
                    self.logger.error("leader lock connection lost: \(error); standing by and trying again", metadata: [
                        LogMetadataKey.error: "\(error)",
                    ])
                    try? await Task.sleep(for: .seconds(1))
                }
            }
        }
        logger.info("scheduler stopped")
    }

    /// Returns once `connection` holds the leader lock (or the task is cancelled).
    private func standBy(until connection: PostgresConnection, announced: inout Bool) async throws {
        while !Task.isCancelled {
            let acquired = try await connection.closing(after: database.connectTimeout, endpoint: database.endpoint, "trying the leader lock") {
                var acquired = false
                let rows = try await connection.query("SELECT pg_try_advisory_lock(\(Self.lockKey))", logger: self.logger)
                for try await held in rows.decode(Bool.self) { acquired = held }
                return acquired
            }
            if acquired { return }
            if !announced {
                logger.info("standing by: another scheduler holds the leader lock")
                announced = true
            }
            try await Task.sleep(for: checkInterval)
        }
    }

    /// Runs the engine until the lock connection fails or the task is cancelled.
    private func lead(on connection: PostgresConnection) async throws {
        let engine = makeEngine()
        let activations = engine.activations
        let engineBox = UncheckedEngine(engine)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await engineBox.engine.run() }
            group.addTask {
                let notifications = try await connection.listen("hes_config_activated")
                for try await notification in notifications {
                    self.logger.info("configuration \(notification.payload) activated: planning with it from the next slot")
                    activations.raise()
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    try await Task.sleep(for: self.checkInterval)
                    try await connection.closing(after: self.database.connectTimeout, endpoint: self.database.endpoint, "checking the leader lock connection") {
                        _ = try await connection.query("SELECT 1", logger: self.logger)
                    }
                }
            }
            defer { group.cancelAll() }
            // The first child to end (a failed check or listener; the engine only on cancellation) ends the lead.
            try await group.next()
        }
    }
}

/// The engine handed to the one child task that runs it.
private struct UncheckedEngine: @unchecked Sendable {
    let engine: SchedulingEngine
    init(_ engine: SchedulingEngine) { self.engine = engine }
}
