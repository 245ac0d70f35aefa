import Foundation
import Hummingbird
import Logging
import Observability
import NIOCore
import Prometheus
import ServiceLifecycle
import Synchronization

/// The router type every executable adds its admin (and API) routes to.
public typealias AdminRouter = Router<BasicRequestContext>

/// The admin HTTP server of every executable, on Hummingbird: `/healthz` (the process lives),
/// `/readyz` (its dependencies answer, see ``Readiness``) and `/metrics` (Prometheus text
/// format), plus whatever routes the executable adds with ``addRoutes(_:)``.
///
/// Errors thrown by a route are answered as RFC 9457 problem documents
/// (`application/problem+json`, see ``HTTPProblem``), never as a dropped connection.
///
/// It is the first service of each group so that it shuts down last: probes keep answering
/// while the other services drain.
public final class AdminServer: Service, Sendable {
    private let configuration: AdminServerConfiguration
    private let registrations = Mutex<[@Sendable (AdminRouter) -> Void]>([])
    private let readiness: Readiness
    private let registry: PrometheusCollectorRegistry
    private let logger: Logger
    private let boundPort = Mutex<Int?>(nil)
    private let listening = OneTimeGate()

    public init(configuration: AdminServerConfiguration, readiness: Readiness, registry: PrometheusCollectorRegistry, logger: Logger) {
        self.configuration = configuration
        self.readiness = readiness
        self.registry = registry
        self.logger = logger
    }

    /// Adds an executable's own endpoints (meter-sim's `/meters`, an API). Call before `run()`.
    /// - Parameter register: called once with the router when the server is built.
    public func addRoutes(_ register: @escaping @Sendable (AdminRouter) -> Void) {
        registrations.withLock { $0.append(register) }
    }

    /// The port actually bound (useful with port 0), once `run()` has bound it.
    public var port: Int? { boundPort.withLock { $0 } }

    /// Returns once the server listens (or has stopped trying): ``ServiceRuntime`` starts the
    /// other services after it, so `/healthz` and `/readyz` answer before a process logs anything
    /// a client could act on.
    public func waitUntilListening() async {
        await listening.wait()
    }

    /// The router with the built-in paths, the problem middleware and the executable's routes:
    /// what `run()` serves, and what tests drive through `Application(router:).test(.router)`.
    public func makeRouter() -> AdminRouter {
        let router = AdminRouter()
        router.add(middleware: ProblemMiddleware(logger: logger))
        let readiness = self.readiness
        let registry = self.registry
        router.get("healthz") { _, _ in "ok\n" }
        router.get("readyz") { _, _ in
            try ReadinessReport(readiness.status).response()
        }
        router.get("metrics") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        for register in registrations.withLock({ $0 }) {
            register(router)
        }
        return router
    }

    public func run() async throws {
        let logger = self.logger
        let configuration = self.configuration
        // A server that fails to bind (or stops) must not keep the other services waiting.
        defer { listening.open() }
        try await serveHTTP(router: makeRouter(), host: configuration.host, port: configuration.port, serverName: "the admin server", logger: logger) { port in
            self.boundPort.withLock { $0 = port }
            self.listening.open()
            logger.info("admin server listening", metadata: [LogMetadataKey.adminAddress: "\(configuration.host):\(port)"])
        }
    }
}

/// The body of `/readyz`: `{"ready": false, "pending": {"database": "connection refused"}}`,
/// 200 when every component is ready, else 503 naming what is missing and why.
struct ReadinessReport: Codable, Sendable {
    var ready: Bool
    var pending: [String: String]

    init(_ status: (isReady: Bool, pending: [String: String])) {
        self.ready = status.isReady
        self.pending = status.pending
    }

    func response() throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var body = try encoder.encode(self)
        body.append(UInt8(ascii: "\n"))
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: ready ? .ok : .serviceUnavailable, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// Opens once; every `wait()` before that suspends until it does (or its task is cancelled).
final class OneTimeGate: Sendable {
    private struct State {
        var isOpen = false
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())

    func open() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.isOpen = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    func wait() async {
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.isOpen || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume()
        }
    }
}
