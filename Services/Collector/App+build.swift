import Contracts
import Logging
import Messaging
import Observability
import ServiceDependencies
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
    /// Builds the collector's services: the producer that will publish readings and results,
    /// watched as the `kafka` dependency. Task consumption and DLMS sessions arrive with the
    /// collector issue.
    static func serviceGroup(for configuration: CollectorConfiguration) throws -> ServiceGroup {
        var runtimeConfiguration = configuration.runtime
        runtimeConfiguration.logMetadata[LogMetadataKey.region] = configuration.region
        let runtime = ServiceRuntime(runtimeConfiguration)
        runtime.logger.info("collector starting")
        let producer = try runtime.kafkaProducer(clientID: "hes-collector-\(configuration.region)", brokers: configuration.kafkaBrokers)
        return runtime.serviceGroup(running: [producer])
    }
}
