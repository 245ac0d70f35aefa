import Logging
import ServiceLifecycle
import ServiceRuntime

/// Everything ims-sim needs to run.
struct IMSSimConfiguration: Sendable {
    var runtime: RuntimeConfiguration
    /// Default: 8090.
    var port: Int
}

extension App {
    static func serviceGroup(for configuration: IMSSimConfiguration) -> ServiceGroup {
        let runtime = ServiceRuntime(configuration.runtime)
        runtime.logger.info("ims-sim starting", metadata: ["ims.port": "\(configuration.port)"])
        return runtime.serviceGroup(running: [IdleService()])
    }
}
