import Logging
import Observability
import Persistence
import ServiceRuntime

extension ServiceRuntime {
    /// The process's PostgreSQL pool, watched as the dependency `database`: `/readyz` is 503
    /// until the migrations are applied, and again whenever the server stops answering (checked
    /// every 2 s on a dedicated connection), until it answers again. The process never exits
    /// because the database is away; a permanent start-up failure (a changed migration, bad
    /// credentials) still stops it.
    ///
    /// Put the returned service first among the group's services: it shuts down after the
    /// ones that use it.
    public func database(_ database: DatabaseConfiguration, migrations: [Migration]? = nil) -> DatabaseService {
        logger.info("database configured", metadata: [LogMetadataKey.databaseEndpoint: "\(database.endpoint)"])
        let service = DatabaseService(configuration: .init(database: database, migrations: migrations), logger: logger)
        watch(DependencyCheck(name: "database", initialReason: "connecting to \(database.endpoint), applying migrations") {
            try await service.checkConnectivity()
        })
        return service
    }
}
