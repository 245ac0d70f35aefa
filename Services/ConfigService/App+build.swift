import Logging
import Persistence
import ServiceDependencies
import ServiceLifecycle
import ServiceRuntime

/// Everything config-service needs to run.
struct ConfigServiceConfiguration: Sendable {
    var runtime: RuntimeConfiguration
    var database: DatabaseConfiguration
}

extension App {
    /// Builds config-service: the database, watched. The configuration API arrives with the
    /// config-service issue.
    static func serviceGroup(for configuration: ConfigServiceConfiguration) -> ServiceGroup {
        let runtime = ServiceRuntime(configuration.runtime)
        runtime.logger.info("config-service starting")
        let database = runtime.database(configuration.database)
        return runtime.serviceGroup(running: [database])
    }
}
