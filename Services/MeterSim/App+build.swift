import Logging
import ServiceLifecycle
import ServiceRuntime

/// Everything meter-sim needs to run.
struct MeterSimConfiguration: Sendable {
    var runtime: RuntimeConfiguration
    /// Default: 1.
    var meterCount: Int
    /// Default: 4061.
    var firstPort: Int
}

extension App {
    /// The DLMS server side arrives with the simulator issue; until then only admin endpoints.
    static func serviceGroup(for configuration: MeterSimConfiguration) -> ServiceGroup {
        let runtime = ServiceRuntime(configuration.runtime)
        runtime.logger.info("meter-sim starting", metadata: ["meters": "\(configuration.meterCount)"])
        return runtime.serviceGroup(running: [IdleService()])
    }
}
