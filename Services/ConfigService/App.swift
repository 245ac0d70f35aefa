import ArgumentParser
import DLMSSecurity
import Persistence
import ServiceLifecycle
import ServiceDependencies
import ServiceRuntime

/// `config-service`: versioned configurations and the control-plane HTTP API for the IMS.
@main
struct App: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config-service",
        abstract: "Keeps versioned configurations in PostgreSQL and serves the IMS control-plane API.",
        discussion: """
            The API (default 127.0.0.1:8080) asks for `Authorization: Bearer <token>`. On a new \
            installation set HES_API_TOKEN: it becomes the admin token named `bootstrap`, with which \
            further tokens are made (POST /v1/tokens). The OpenAPI document is at /openapi.yaml.
            """)

    @OptionGroup var common: CommonOptions
    @OptionGroup var masterKeyOptions: MasterKeyOptions
    @OptionGroup var database: DatabaseOptions

    @Option(help: ArgumentHelp("Port of the control-plane API (HES_API_PORT). Default: 8080", valueName: "port"))
    var apiPort: Int?

    @Option(help: ArgumentHelp("Address the API binds (HES_API_HOST). Default: 127.0.0.1", valueName: "host"))
    var apiHost: String?

    @Option(help: ArgumentHelp("PEM certificate (chain) to serve the API over HTTPS with (HES_API_TLS_CERT_FILE); needs --api-tls-key-file. Default: plain HTTP", valueName: "path"))
    var apiTlsCertFile: String?

    @Option(help: ArgumentHelp("PEM private key of --api-tls-cert-file (HES_API_TLS_KEY_FILE)", valueName: "path"))
    var apiTlsKeyFile: String?

    @Option(help: ArgumentHelp("Largest configuration document accepted, in MiB (HES_MAX_DOCUMENT_MB). Default: 256", valueName: "MiB"))
    var maxDocumentMB: Int?

    @Option(help: ArgumentHelp("Disconnects and reconnects accepted per hour at most (HES_DISCONNECT_LIMIT_PER_HOUR). Default: 1000", valueName: "count"))
    var disconnectLimitPerHour: Int?

    @Option(help: ArgumentHelp("Above this many disconnects and reconnects in an hour, each needs a second operator's approval (HES_DISCONNECT_APPROVAL_THRESHOLD). Default: 100", valueName: "count"))
    var disconnectApprovalThreshold: Int?

    func run() async throws {
        let settings = try common.settings()
        let masterKeys = try masterKeyOptions.masterKeyRing(settings)
        var configuration = ConfigServiceConfiguration(
            runtime: try common.runtimeConfiguration(executable: "config-service", defaultAdminPort: 9101, settings: settings),
            database: try DatabaseConfiguration(url: database.databaseURL(settings)),
            apiHost: settings.string(apiHost, flagName: "api-host", env: "HES_API_HOST", default: "127.0.0.1"),
            apiPort: try settings.int(apiPort, flagName: "api-port", env: "HES_API_PORT", default: 8080, range: 0...65535),
            masterKeys: masterKeys,
            bootstrapToken: settings.optionalString(nil, flagName: "api-token", env: "HES_API_TOKEN"),
            maxDocumentBytes: try settings.int(maxDocumentMB, flagName: "max-document-mb", env: "HES_MAX_DOCUMENT_MB", default: 256, range: 1...4096) << 20)
        let certificate = settings.optionalString(apiTlsCertFile, flagName: "api-tls-cert-file", env: "HES_API_TLS_CERT_FILE")
        let key = settings.optionalString(apiTlsKeyFile, flagName: "api-tls-key-file", env: "HES_API_TLS_KEY_FILE")
        switch (certificate, key) {
        case (let certificate?, let key?): configuration.apiTLS = APIServer.TLSFiles(certificateChain: certificate, privateKey: key)
        case (nil, nil): break
        default: throw ValidationError("--api-tls-cert-file and --api-tls-key-file go together (HES_API_TLS_CERT_FILE, HES_API_TLS_KEY_FILE)")
        }
        configuration.commandGuard.switchingLimitPerHour = try settings.int(
            disconnectLimitPerHour, flagName: "disconnect-limit-per-hour", env: "HES_DISCONNECT_LIMIT_PER_HOUR", default: 1000, range: 0...1_000_000)
        configuration.commandGuard.approvalThreshold = try settings.int(
            disconnectApprovalThreshold, flagName: "disconnect-approval-threshold", env: "HES_DISCONNECT_APPROVAL_THRESHOLD", default: 100, range: 0...1_000_000)
        try await App.serviceGroup(for: configuration).run()
    }
}
