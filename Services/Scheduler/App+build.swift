import Logging
import ServiceLifecycle
import ServiceRuntime

/// Everything the scheduler needs to run.
struct SchedulerConfiguration: Sendable {
    var runtime: RuntimeConfiguration
    var databaseURL: String
    var kafkaBrokers: String
}

extension App {
    static func serviceGroup(for configuration: SchedulerConfiguration) -> ServiceGroup {
        let runtime = ServiceRuntime(configuration.runtime)
        runtime.logger.info("scheduler starting", metadata: ["kafka.brokers": "\(configuration.kafkaBrokers)"])
        return runtime.serviceGroup(running: [IdleService()])
    }
}
