import Hummingbird
import HummingbirdTLS
import Logging
import NIOSSL
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
        /// Serve HTTPS with this certificate and key; `nil`: plain HTTP.
        public var tls: TLSFiles?

        public init(host: String = "127.0.0.1", port: Int, name: String, tls: TLSFiles? = nil) {
            self.host = host
            self.port = port
            self.name = name
            self.tls = tls
        }
    }

    /// PEM files of the server's certificate (chain, leaf first) and its private key.
    public struct TLSFiles: Sendable, Hashable {
        public var certificateChain: String
        public var privateKey: String

        public init(certificateChain: String, privateKey: String) {
            self.certificateChain = certificateChain
            self.privateKey = privateKey
        }

        /// The server's TLS configuration (TLS 1.2 and later).
        /// - Throws: ``ServiceRuntimeError`` naming the file that is not a PEM certificate or key.
        public func serverConfiguration() throws -> TLSConfiguration {
            let chain: [NIOSSLCertificate]
            do {
                chain = try NIOSSLCertificate.fromPEMFile(certificateChain)
            } catch {
                throw ServiceRuntimeError.invalidSetting("\(certificateChain) holds no PEM certificate: \(error)")
            }
            guard !chain.isEmpty else {
                throw ServiceRuntimeError.invalidSetting("\(certificateChain) holds no PEM certificate")
            }
            let key: NIOSSLPrivateKey
            do {
                key = try NIOSSLPrivateKey(file: privateKey, format: .pem)
            } catch {
                throw ServiceRuntimeError.invalidSetting("\(privateKey) holds no PEM private key: \(error)")
            }
            var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
            configuration.minimumTLSVersion = .tlsv12
            return configuration
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
        let tls = try configuration.tls?.serverConfiguration()
        try await serveHTTP(router: makeRouter(), host: configuration.host, port: configuration.port, serverName: configuration.name, logger: logger,
                            tls: tls) { port in
            self.boundPort.withLock { $0 = port }
            logger.info("\(configuration.name) listening", metadata: [
                LogMetadataKey.apiAddress: "\(configuration.host):\(port)", "api.scheme": "\(tls == nil ? "http" : "https")",
            ])
        }
    }
}

/// Serves `router` with Hummingbird until shutdown; `onListening` gets the bound port. The
/// framework logs one level quieter than the process (our own line says where it listens).
/// - Throws: ``ServiceRuntimeError/Code/adminBindFailed`` naming `serverName` when it cannot bind.
func serveHTTP(router: AdminRouter, host: String, port: Int, serverName: String, logger: Logger, tls: TLSConfiguration? = nil,
               onListening: @escaping @Sendable (Int) -> Void) async throws {
    var serverLogger = logger
    if serverLogger.logLevel < .notice { serverLogger.logLevel = .notice }
    let bound = Mutex(false)
    let application = Application(
        router: router,
        server: try tls.map { try .tls(.http1(), tlsConfiguration: $0) } ?? .http1(),
        configuration: .init(address: .hostname(host, port: port), serverName: nil, reuseAddress: true),
        onServerRunning: { channel in
            bound.withLock { $0 = true }
            onListening(channel.localAddress?.port ?? port)
        },
        logger: serverLogger)
    do {
        try await application.run()
    } catch where !bound.withLock({ $0 }) {
        throw ServiceRuntimeError.adminBindFailed(host: host, port: port, underlying: error, server: serverName)
    }
}
