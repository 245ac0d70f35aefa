import Logging
import Observability
import Persistence
import ServiceDependencies
import ServiceLifecycle
import ServiceRuntime

/// Everything ims-sim needs to run.
struct IMSSimConfiguration: Sendable {
    var runtime: RuntimeConfiguration
    /// Its own database (not the head-end's): the IMS's store.
    var database: DatabaseConfiguration
    /// The IMS API's address. Default: 127.0.0.1:8090.
    var host: String = "127.0.0.1"
    var port: Int
    /// Asked of every client as `Authorization: Bearer <token>`; `nil`: no authentication.
    var token: String?
    /// The fault plan it starts with.
    var faults = IMSFaults()
    /// The largest request body accepted. Default: 64 MiB.
    var maxRequestBytes = 64 << 20
}

extension App {
    /// Builds ims-sim: its database (own migrations, watched) and its API server.
    static func serviceGroup(for configuration: IMSSimConfiguration) throws -> ServiceGroup {
        let runtime = ServiceRuntime(configuration.runtime)
        runtime.logger.info("ims-sim starting", metadata: [
            LogMetadataKey.imsPort: "\(configuration.port)", "faults": "\(configuration.faults)",
            "auth": "\(configuration.token == nil ? "none" : "bearer token")",
        ])
        let database = runtime.database(configuration.database, migrations: try IMSStore.migrations())
        let routes = IMSRoutes(
            store: IMSStore(database: database, logger: runtime.logger), faults: IMSFaultSwitch(try configuration.faults.validated()),
            token: configuration.token, maxRequestBytes: configuration.maxRequestBytes, logger: runtime.logger)
        let api = APIServer(configuration: .init(host: configuration.host, port: configuration.port, name: "ims api"), logger: runtime.logger,
                            routes: { routes.register($0) })
        return runtime.serviceGroup(running: [database, api])
    }
}
