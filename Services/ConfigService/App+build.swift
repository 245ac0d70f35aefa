import Logging
import ServiceLifecycle
import ServiceRuntime

/// Everything config-service needs to run.
struct ConfigServiceConfiguration: Sendable {
    var runtime: RuntimeConfiguration
    var databaseURL: String
}

extension App {
    static func serviceGroup(for configuration: ConfigServiceConfiguration) -> ServiceGroup {
        let runtime = ServiceRuntime(configuration.runtime)
        runtime.logger.info("config-service starting")
        return runtime.serviceGroup(running: [IdleService()])
    }
}
