import DLMSSecurity
import Logging
import Messaging
import Persistence
import ServiceDependencies
import ServiceLifecycle
import ServiceRuntime

/// Everything the scheduler needs to run.
struct SchedulerConfiguration: Sendable {
    var runtime: RuntimeConfiguration
    var database: DatabaseConfiguration
    var kafkaBrokers: String
    /// Opens the meters' sealed secrets (earlier keys too, during a rotation) to wrap them into
    /// tasks under the current key; without it meters with secrets are not scheduled.
    var masterKeys: MasterKeyRing?
    var scheduling = SchedulingSettings()
}

extension App {
    /// Builds the scheduler's services: the database, the task producer, the lag probe of the
    /// collector groups and the leader election that runs the scheduling engine.
    static func serviceGroup(for configuration: SchedulerConfiguration) throws -> ServiceGroup {
        let runtime = ServiceRuntime(configuration.runtime)
        runtime.logger.info("scheduler starting")
        let database = runtime.database(configuration.database)
        let producer = try runtime.kafkaProducer(clientID: "hes-scheduler", brokers: configuration.kafkaBrokers) { producer in
            producer.compression = .lz4
        }
        let store = SchedulerStore(database: database, logger: runtime.logger)
        let rewrapper = KeyRewrapper(masterKeys: configuration.masterKeys)
        let lag = try TaskLagProbe(brokers: configuration.kafkaBrokers, logger: runtime.logger)
        let logger = runtime.logger
        let scheduling = configuration.scheduling
        let leader = SchedulerLeader(database: configuration.database, logger: runtime.logger) {
            SchedulingEngine(store: store, sink: producer, load: lag, rewrapper: rewrapper, settings: scheduling, logger: logger)
        }
        return runtime.serviceGroup(running: [database, producer, leader])
    }
}
