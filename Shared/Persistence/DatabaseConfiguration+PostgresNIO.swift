import Logging
import NIOCore
import NIOSSL
import PostgresNIO
import Synchronization

extension DatabaseConfiguration {
    /// The PostgresNIO pool configuration: pool size, connect timeout, TLS, application name.
    public func makeClientConfiguration() -> PostgresClient.Configuration {
        var configuration = PostgresClient.Configuration(
            host: self.host,
            port: self.port,
            username: self.username,
            password: self.password,
            database: self.database,
            tls: self.clientTLS
        )
        configuration.options.maximumConnections = max(1, self.poolSize)
        configuration.options.minimumConnections = min(max(0, self.minimumConnections), max(1, self.poolSize))
        configuration.options.connectTimeout = self.connectTimeout
        if let applicationName {
            configuration.options.additionalStartupParameters.append(("application_name", applicationName))
        }
        return configuration
    }

    /// Creates a pooled client. Nothing connects until the client's `run()` is running
    /// (``DatabaseService`` does that) and a connection is leased.
    ///
    /// - Parameter backgroundLogger: receives the pool's own messages (connects, failures).
    public func makeClient(backgroundLogger: Logger) -> PostgresClient {
        PostgresClient(configuration: self.makeClientConfiguration(), backgroundLogger: backgroundLogger)
    }

    /// The configuration of a single, unpooled connection (migrations, advisory locks).
    public func makeConnectionConfiguration() throws -> PostgresConnection.Configuration {
        var configuration = PostgresConnection.Configuration(
            host: self.host,
            port: self.port,
            username: self.username,
            password: self.password,
            database: self.database,
            tls: try self.connectionTLS()
        )
        configuration.options.connectTimeout = .nanoseconds(Int64(self.connectTimeout.nanoseconds))
        if let applicationName {
            configuration.options.additionalStartupParameters.append(("application_name", applicationName))
        }
        return configuration
    }

    /// Opens one dedicated connection, outside any pool.
    ///
    /// - Throws: ``PersistenceError`` (``PersistenceError/Code/unreachable`` when the server cannot
    ///   be reached, which is retriable).
    public func connect(logger: Logger) async throws -> PostgresConnection {
        do {
            return try await PostgresConnection.connect(
                configuration: try self.makeConnectionConfiguration(),
                id: Self.nextConnectionID(),
                logger: logger
            )
        } catch {
            let classified = PersistenceError.classify(error, context: "connecting to the database", endpoint: self.endpoint)
            guard classified.code == .connectionLost else { throw classified }
            // PostgresNIO reports a connect timeout as a closed connection.
            throw PersistenceError.unreachable(
                "connecting to the database: cannot connect at \(self.endpoint): no answer within the connect timeout "
                    + "(\(self.connectTimeout)) or the connection was closed during start-up",
                underlying: error
            )
        }
    }

    // MARK: - TLS

    private var tlsConfiguration: TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        if !self.tls.verifiesCertificate {
            tls.certificateVerification = .none
        } else if !self.tls.verifiesHostname {
            tls.certificateVerification = .noHostnameVerification
        }
        return tls
    }

    private var clientTLS: PostgresClient.Configuration.TLS {
        if self.tls.isDisabled { return .disable }
        return self.tls.isRequired ? .require(self.tlsConfiguration) : .prefer(self.tlsConfiguration)
    }

    private func connectionTLS() throws -> PostgresConnection.Configuration.TLS {
        if self.tls.isDisabled { return .disable }
        do {
            let context = try NIOSSLContext(configuration: self.tlsConfiguration)
            return self.tls.isRequired ? .require(context) : .prefer(context)
        } catch {
            throw PersistenceError.invalidConfiguration("cannot set up TLS (\(error))")
        }
    }

    /// Ids for dedicated connections, in a range that does not collide with the pool's small ids.
    private static let connectionIDs = Atomic<Int>(1_000_000)

    private static func nextConnectionID() -> Int {
        connectionIDs.wrappingAdd(1, ordering: .relaxed).newValue
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = self.components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
