import Logging
import Persistence
import ServiceLifecycle
import ServiceRuntime

/// Everything config-service needs to run.
struct ConfigServiceConfiguration: Sendable {
    var runtime: RuntimeConfiguration
    var database: DatabaseConfiguration
}

extension App {
    /// Builds config-service: the database (migrations, readiness). The configuration API
    /// arrives with the config-service issue.
    static func serviceGroup(for configuration: ConfigServiceConfiguration) -> ServiceGroup {
        let runtime = ServiceRuntime(configuration.runtime)
        runtime.logger.info("config-service starting", metadata: ["db.endpoint": "\(configuration.database.endpoint)"])
        runtime.readiness.register("database")
        let database = DatabaseService(configuration: .init(database: configuration.database), logger: runtime.logger) {
            runtime.readiness.markReady("database")
        }
        return runtime.serviceGroup(running: [database])
    }
}
