import Hummingbird
import Logging
import Observability
import ServiceLifecycle
import Synchronization

/// An executable's public HTTP API on its own port (ims-sim's IMS API, later the
/// config-service's control plane), beside the ``AdminServer``: the same problem documents for
/// errors, its own routes only.
public final class APIServer: Service, Sendable {
    /// Where the API listens.
    public struct Configuration: Sendable, Hashable {
        public var host: String
        /// 0 binds an ephemeral port (see ``APIServer/port``).
        public var port: Int
        /// A name for logs (`"ims api"`).
        public var name: String

        public init(host: String = "127.0.0.1", port: Int, name: String) {
            self.host = host
            self.port = port
            self.name = name
        }
    }

    private let configuration: Configuration
    private let register: @Sendable (AdminRouter) -> Void
    private let logger: Logger
    private let boundPort = Mutex<Int?>(nil)

    /// - Parameter register: adds the API's routes to the router, once, when the server is built.
    public init(configuration: Configuration, logger: Logger, routes register: @escaping @Sendable (AdminRouter) -> Void) {
        self.configuration = configuration
        self.logger = logger
        self.register = register
    }

    /// The port actually bound, once `run()` has bound it.
    public var port: Int? { boundPort.withLock { $0 } }

    /// The router `run()` serves; tests drive it through `Application(router:).test(.router)`.
    public func makeRouter() -> AdminRouter {
        let router = AdminRouter()
        router.add(middleware: ProblemMiddleware(logger: logger))
        register(router)
        return router
    }

    public func run() async throws {
        let logger = self.logger
        let configuration = self.configuration
        var serverLogger = logger
        if serverLogger.logLevel < .notice { serverLogger.logLevel = .notice }
        let application = Application(
            router: makeRouter(),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil, reuseAddress: true),
            onServerRunning: { [self] channel in
                let port = channel.localAddress?.port ?? configuration.port
                self.boundPort.withLock { $0 = port }
                logger.info("\(configuration.name) listening", metadata: [LogMetadataKey.apiAddress: "\(configuration.host):\(port)"])
            },
            logger: serverLogger)
        do {
            try await application.run()
        } catch where port == nil {
            throw ServiceRuntimeError.adminBindFailed(host: configuration.host, port: configuration.port, underlying: error, server: configuration.name)
        }
    }
}
