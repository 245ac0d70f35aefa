import Logging
import Messaging
import Persistence
import ServiceLifecycle
import ServiceRuntime

/// Everything the scheduler needs to run.
struct SchedulerConfiguration: Sendable {
    var runtime: RuntimeConfiguration
    var database: DatabaseConfiguration
    var kafkaBrokers: String
}

extension App {
    /// Builds the scheduler's services: the database (migrations, readiness) and the task
    /// producer. Schedules, commands and gap recovery arrive with the scheduler issue.
    static func serviceGroup(for configuration: SchedulerConfiguration) throws -> ServiceGroup {
        let runtime = ServiceRuntime(configuration.runtime)
        let logger = runtime.logger
        logger.info("scheduler starting", metadata: [
            "db.endpoint": "\(configuration.database.endpoint)", "kafka.brokers": "\(configuration.kafkaBrokers)",
        ])
        runtime.readiness.register("database")
        let database = DatabaseService(configuration: .init(database: configuration.database), logger: logger) {
            runtime.readiness.markReady("database")
        }
        var producerConfiguration = KafkaProducerConfiguration(bootstrapServers: configuration.kafkaBrokers)
        producerConfiguration.clientID = "hes-scheduler"
        producerConfiguration.shutdownFlushTimeout = .seconds(3)
        let producer = try KafkaProducer(configuration: producerConfiguration, logger: logger)
        let kafkaProbe = DependencyProbe(.init(name: "kafka"), readiness: runtime.readiness, logger: logger) {
            try await producer.checkConnectivity(timeout: .seconds(3))
        }
        return runtime.serviceGroup(running: [database, producer, kafkaProbe])
    }
}
