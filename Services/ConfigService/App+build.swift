import Contracts
import HTTPTypes
import Hummingbird
import NIOCore
import Foundation
import DLMSClient
import DLMSSecurity
import Logging
import Persistence
import ServiceDependencies
import ServiceLifecycle
import ServiceRuntime

/// Everything config-service needs to run.
struct ConfigServiceConfiguration: Sendable {
    var runtime: RuntimeConfiguration
    var database: DatabaseConfiguration
    var apiHost: String = "127.0.0.1"
    var apiPort: Int
    /// Seals meter secrets (the current key; earlier ones open and re-seal what they sealed);
    /// without it documents with secrets are refused.
    var masterKeys: MasterKeyRing?
    /// `HES_API_TOKEN`: made the admin token `bootstrap` at start-up.
    var bootstrapToken: String?
    var maxDocumentBytes: Int = 256 << 20
    /// Serve the API over HTTPS with these files; `nil`: plain HTTP.
    var apiTLS: APIServer.TLSFiles?
    /// The disconnect/reconnect guard.
    var commandGuard = CommandStore.Guard()
}

extension App {
    /// Builds config-service: the database (watched) and the control plane, which repairs what
    /// an unclean stop left and installs the bootstrap token before its API serves.
    static func serviceGroup(for configuration: ConfigServiceConfiguration) -> ServiceGroup {
        let runtime = ServiceRuntime(configuration.runtime)
        runtime.logger.info("config-service starting", metadata: [
            "api.address": "\(configuration.apiHost):\(configuration.apiPort)",
            "master_key": "\(configuration.masterKeys.map { "\($0.current.id)" } ?? "none")",
            "master_key.previous": "\(configuration.masterKeys?.previous.map(\.id).joined(separator: ",") ?? "")",
        ])
        let database = runtime.database(configuration.database)
        let store = ConfigurationStore(database: database, logger: runtime.logger)
        let tokens = APITokens(database: database, logger: runtime.logger)
        let manager = ConfigurationManager(store: store, vault: SecretVault(masterKeys: configuration.masterKeys), validator: Self.validator, logger: runtime.logger)
        let commands = CommandStore(database: database, guardrails: configuration.commandGuard, logger: runtime.logger)
        let routes = ConfigRoutes(manager: manager, commands: commands, tokens: tokens, maxDocumentBytes: configuration.maxDocumentBytes, logger: runtime.logger,
                                  operations: OperationsStore(database: database, logger: runtime.logger))
        let api = APIServer(configuration: .init(host: configuration.apiHost, port: configuration.apiPort, name: "config api", tls: configuration.apiTLS), logger: runtime.logger,
                            routes: { routes.register($0) })
        let status = StatusPage(database: database, logger: runtime.logger)
        runtime.adminServer.addRoutes { router in
            router.get("status") { _, _ in
                var headers = HTTPFields()
                headers[.contentType] = "text/html; charset=utf-8"
                return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: StatusPage.render(try await status.snapshot()))))
            }
        }
        let controlPlane = ControlPlane(database: database, store: store, commands: commands, tokens: tokens, bootstrapToken: configuration.bootstrapToken, api: api, logger: runtime.logger)
        return runtime.serviceGroup(running: [database, controlPlane])
    }

    /// The rules, with the profiles every collector knows and their JSON checker.
    static let validator = ConfigurationValidator(builtInProfiles: Set(ManufacturerProfile.builtIn.keys)) { json in
        do {
            _ = try JSONDecoder().decode(ManufacturerProfile.self, from: Data(json.utf8))
            return nil
        } catch {
            return "not a manufacturer profile: \(error)"
        }
    }
}

/// Start-up repair, then the API: the database prepared, the read models checked against the
/// active version (rebuilt if they differ), the bootstrap token installed; then it serves.
struct ControlPlane: Service {
    let database: DatabaseService
    let store: ConfigurationStore
    let commands: CommandStore
    let tokens: APITokens
    let bootstrapToken: String?
    let api: APIServer
    let logger: Logger

    func run() async throws {
        let prepared: Bool? = try? await cancelWhenGracefulShutdown {
            try await database.waitUntilPrepared()
            var failures = 0
            while true {
                do {
                    if let version = try await store.repair() { logger.notice("read models rebuilt at start-up", metadata: ["config.version": "\(version)"]) }
                    let expired = try await commands.expireStale()
                    if expired > 0 { logger.notice("stale commands expired at start-up", metadata: ["commands": "\(expired)"]) }
                    if let bootstrapToken { try await tokens.ensureBootstrap(bootstrapToken) }
                    return true
                } catch {
                    failures += 1
                    logger.error("start-up repair failed; retrying", metadata: ["error": "\(error)", "attempt": "\(failures)"])
                    try await Task.sleep(for: .seconds(min(30, failures)))
                }
            }
        }
        guard prepared == true else { return }
        try await api.run()
    }
}
