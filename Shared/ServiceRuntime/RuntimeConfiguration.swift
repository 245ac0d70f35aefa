import Logging
import Observability

/// Process-wide settings every executable has.
public struct RuntimeConfiguration: Sendable {
    /// The product name (`collector`, `uploader`, …): log label and `service` field.
    public var executable: String
    /// Default: text.
    public var logFormat: LogFormat
    /// Default: info.
    public var logLevel: Logger.Level
    public var admin: AdminServerConfiguration
    /// How long services may take to finish in-flight work after SIGTERM before they are
    /// cancelled. Default: 4 s, inside the 5 s that orchestrators commonly allow by default
    /// with room to exit.
    public var gracefulShutdownTimeout: Duration
    /// How long cancelled services may take to return once `gracefulShutdownTimeout` has passed;
    /// beyond it ServiceLifecycle ends the process (a service that ignores cancellation).
    /// Default: 3 s.
    public var cancellationTimeout: Duration = .seconds(3)
    /// Metadata on every log line of the process (a collector's `region`). Default: none.
    public var logMetadata: [String: String] = [:]

    public init(
        executable: String, logFormat: LogFormat = .text, logLevel: Logger.Level = .info,
        admin: AdminServerConfiguration = .init(), gracefulShutdownTimeout: Duration = .seconds(4)
    ) {
        self.executable = executable
        self.logFormat = logFormat
        self.logLevel = logLevel
        self.admin = admin
        self.gracefulShutdownTimeout = gracefulShutdownTimeout
    }
}

/// Where the admin HTTP server (`/healthz`, `/readyz`, `/metrics`) listens.
public struct AdminServerConfiguration: Sendable {
    /// Default: 127.0.0.1 (set 0.0.0.0 in containers).
    public var host: String
    /// 0 picks a free port, which is then logged. Default: 0.
    public var port: Int

    public init(host: String = "127.0.0.1", port: Int = 0) {
        self.host = host
        self.port = port
    }
}
