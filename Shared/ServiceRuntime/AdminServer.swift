import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import ServiceLifecycle
import Synchronization

/// The admin HTTP server of every executable: `/healthz` (the process lives), `/readyz` (its
/// dependencies answer) and `/metrics` (Prometheus text format).
///
/// It is the first service of each group so that it shuts down last: probes keep answering
/// while the other services drain.
public final class AdminServer: Service, Sendable {
    /// An executable's own admin endpoint: given the request, an answer, or `nil` to pass.
    public typealias Route = @Sendable (AdminRequest) -> AdminResponse?

    private let configuration: AdminServerConfiguration
    private let routes = Mutex<[Route]>([])
    private let readiness: Readiness
    private let registry: PrometheusCollectorRegistry
    private let logger: Logger
    private let boundPort = Mutex<Int?>(nil)

    public init(configuration: AdminServerConfiguration, readiness: Readiness, registry: PrometheusCollectorRegistry, logger: Logger) {
        self.configuration = configuration
        self.readiness = readiness
        self.registry = registry
        self.logger = logger
    }

    /// Adds endpoints (e.g. meter-sim's `/meters`), consulted before the built-in paths. Add them
    /// before `run()`.
    public func addRoute(_ route: @escaping Route) {
        routes.withLock { $0.append(route) }
    }

    /// The port actually bound (useful with port 0), once `run()` has bound it.
    public var port: Int? { boundPort.withLock { $0 } }

    public func run() async throws {
        let readiness = self.readiness
        let registry = self.registry
        let routes = self.routes.withLock { $0 }
        let channel: any Channel
        do {
            channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.pipeline.configureHTTPServerPipeline().flatMap {
                        channel.pipeline.addHandler(AdminHTTPHandler(readiness: readiness, registry: registry, routes: routes))
                    }
                }
                .bind(host: configuration.host, port: configuration.port)
                .get()
        } catch {
            throw ServiceRuntimeError.adminBindFailed(host: configuration.host, port: configuration.port, underlying: error)
        }
        let port = channel.localAddress?.port ?? configuration.port
        boundPort.withLock { $0 = port }
        logger.info("admin server listening", metadata: ["admin.address": "\(configuration.host):\(port)"])

        await withGracefulShutdownHandler {
            try? await channel.closeFuture.get()
        } onGracefulShutdown: {
            channel.close(promise: nil)
        }
    }
}

/// Answers the three admin paths; anything else is 404, any method but GET/HEAD is 405.
private final class AdminHTTPHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let readiness: Readiness
    private let registry: PrometheusCollectorRegistry
    private let routes: [AdminServer.Route]

    init(readiness: Readiness, registry: PrometheusCollectorRegistry, routes: [AdminServer.Route]) {
        self.readiness = readiness
        self.registry = registry
        self.routes = routes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else { return }
        let (status, contentType, body) = response(to: head)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(body.count))
        headers.add(name: "Connection", value: "close")
        let responseHead = HTTPResponseHead(version: head.version, status: status, headers: headers)
        context.write(wrapOutboundOut(.head(responseHead)), promise: nil)
        if head.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    private func response(to head: HTTPRequestHead) -> (HTTPResponseStatus, String, [UInt8]) {
        if !routes.isEmpty {
            let parts = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
            let request = AdminRequest(method: head.method.rawValue, path: parts.first.map(String.init) ?? head.uri,
                                       query: parts.count > 1 ? String(parts[1]) : "")
            for route in routes {
                if let answer = route(request) {
                    return (HTTPResponseStatus(statusCode: answer.status), answer.contentType, answer.body)
                }
            }
        }
        guard head.method == .GET || head.method == .HEAD else {
            return (.methodNotAllowed, "text/plain", Array("method not allowed\n".utf8))
        }
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        switch path {
        case "/healthz":
            return (.ok, "text/plain", Array("ok\n".utf8))
        case "/readyz":
            let status = readiness.status
            if status.isReady { return (.ok, "text/plain", Array("ready\n".utf8)) }
            let reasons = status.pending.keys.sorted().map { "\($0): \(status.pending[$0]!)" }.joined(separator: "\n")
            return (.serviceUnavailable, "text/plain", Array("not ready\n\(reasons)\n".utf8))
        case "/metrics":
            return (.ok, "text/plain; version=0.0.4", registry.emitToBuffer())
        default:
            return (.notFound, "text/plain", Array("not found\n".utf8))
        }
    }
}

/// A request to an executable's own admin endpoint (see `AdminServer.addRoute`).
public struct AdminRequest: Sendable {
    /// `GET`, `POST`, …
    public let method: String
    public let path: String
    /// The raw query string, without `?`.
    public let query: String

    /// The query parameters (`a=1&b=2`), last one wins.
    public var queryItems: [String: String] {
        var items: [String: String] = [:]
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            items[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        return items
    }
}

/// The answer of an executable's admin endpoint.
public struct AdminResponse: Sendable {
    public var status: Int
    public var contentType: String
    public var body: [UInt8]

    public init(status: Int = 200, contentType: String = "application/json", body: String) {
        self.status = status
        self.contentType = contentType
        self.body = Array(body.utf8)
    }
}
