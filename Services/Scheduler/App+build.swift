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
}

extension App {
    /// Builds the scheduler's services: the database and the task producer, both watched.
    /// Schedules, commands and gap recovery arrive with the scheduler issue.
    static func serviceGroup(for configuration: SchedulerConfiguration) throws -> ServiceGroup {
        let runtime = ServiceRuntime(configuration.runtime)
        runtime.logger.info("scheduler starting")
        let database = runtime.database(configuration.database)
        let producer = try runtime.kafkaProducer(clientID: "hes-scheduler", brokers: configuration.kafkaBrokers)
        return runtime.serviceGroup(running: [database, producer])
    }
}
