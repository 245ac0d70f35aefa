import Logging
import Observability
import ServiceLifecycle
import ServiceRuntime

/// Everything the collector needs to run, resolved from flags, environment and file.
struct CollectorConfiguration: Sendable {
    var runtime: RuntimeConfiguration
    /// The region whose `hes.tasks.<region>` topics this worker consumes.
    var region: String
    var kafkaBrokers: String
    /// Default: 256.
    var maxConcurrentLines: Int
}

extension App {
    /// Builds the collector's services. Task consumption and DLMS sessions arrive with the
    /// collector issue; until then the worker serves its admin endpoints only.
    static func serviceGroup(for configuration: CollectorConfiguration) -> ServiceGroup {
        let runtime = ServiceRuntime(configuration.runtime)
        runtime.logger.info("collector starting", metadata: [
            LogMetadataKey.region: "\(configuration.region)",
            "kafka.brokers": "\(configuration.kafkaBrokers)",
        ])
        return runtime.serviceGroup(running: [IdleService()])
    }
}
