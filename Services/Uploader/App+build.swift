import Logging
import ServiceLifecycle
import ServiceRuntime

/// Everything the uploader needs to run.
struct UploaderConfiguration: Sendable {
    var runtime: RuntimeConfiguration
    var databaseURL: String
    var kafkaBrokers: String
    var imsURL: String
}

extension App {
    static func serviceGroup(for configuration: UploaderConfiguration) -> ServiceGroup {
        let runtime = ServiceRuntime(configuration.runtime)
        runtime.logger.info("uploader starting", metadata: ["ims.url": "\(configuration.imsURL)"])
        return runtime.serviceGroup(running: [IdleService()])
    }
}
