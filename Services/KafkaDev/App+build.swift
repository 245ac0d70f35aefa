import Contracts
import Logging
import ServiceLifecycle
import ServiceRuntime

/// Everything kafka-dev needs to run, resolved from flags, environment and file.
struct KafkaDevConfiguration: Sendable {
    var runtime: RuntimeConfiguration
    /// Default: 1.
    var brokers: Int
    /// Regions whose `hes.tasks.<region>` and `hes.tasks.<region>.priority` topics are created.
    /// Default: `local`.
    var regions: [String]
    /// Partitions of every topic (task topics need the same count, see DESIGN.md §2). Default: 12.
    var partitions: Int
    /// A fixed port on 127.0.0.1 that forwards to the first mock broker and is published as the
    /// bootstrap address, so clients survive a restart. Default: none (the brokers' own ports).
    var bootstrapPort: Int?
    /// Where the bootstrap address is written for other processes.
    /// Default: `./.hes-run/kafka-bootstrap`.
    var bootstrapFile: String

    /// The topics of DESIGN.md §2 for the configured regions.
    var topics: [String] { KafkaTopics.all(regions: regions) }
}

extension App {
    /// Builds kafka-dev's services: the admin server and the mock cluster.
    static func serviceGroup(for configuration: KafkaDevConfiguration) -> ServiceGroup {
        let runtime = ServiceRuntime(configuration.runtime)
        let outageSwitch = BrokerOutageSwitch(logger: runtime.logger)
        runtime.adminServer.addRoutes { router in outageSwitch.addRoutes(to: router) }
        let broker = KafkaDevBroker(configuration: configuration, readiness: runtime.readiness, logger: runtime.logger, outageSwitch: outageSwitch)
        return runtime.serviceGroup(running: [broker])
    }
}
