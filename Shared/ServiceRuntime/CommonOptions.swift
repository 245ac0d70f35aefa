import ArgumentParser
import Logging
import Observability

/// The options every SwiftHES service executable accepts, with the same names everywhere.
public struct CommonOptions: ParsableArguments, Sendable {
    @Option(help: ArgumentHelp("Settings file of HES_NAME=value lines (flags > environment > file).", valueName: "path"))
    public var configFile: String?

    @Option(help: ArgumentHelp("trace|debug|info|notice|warning|error|critical (HES_LOG_LEVEL). Default: info", valueName: "level"))
    public var logLevel: String?

    @Option(help: ArgumentHelp("text|json (HES_LOG_FORMAT). Default: text", valueName: "format"))
    public var logFormat: String?

    @Option(help: ArgumentHelp("Port of the admin HTTP server: /healthz /readyz /metrics (HES_ADMIN_PORT); 0 picks a free port.", valueName: "port"))
    public var adminPort: Int?

    @Option(help: ArgumentHelp("Address the admin HTTP server binds (HES_ADMIN_HOST). Default: 127.0.0.1", valueName: "address"))
    public var adminHost: String?

    public init() {}

    /// The resolver for this invocation's settings: these flags, the environment, the settings file.
    public func settings() throws -> SettingsResolver {
        let environment = ProcessInfo.processInfo.environment
        let path = configFile ?? environment["HES_CONFIG_FILE"]
        return try SettingsResolver(environment: environment, filePath: path)
    }

    /// The runtime settings shared by all executables.
    /// - Parameters:
    ///   - executable: the product name, used as the log label and in metrics.
    ///   - defaultAdminPort: each executable has its own so a local run needs no flags.
    public func runtimeConfiguration(executable: String, defaultAdminPort: Int, settings: SettingsResolver) throws -> RuntimeConfiguration {
        let levelValue = settings.value(flag: logLevel, flagName: "log-level", env: "HES_LOG_LEVEL")
        var level = Logger.Level.info
        if let levelValue {
            guard let parsed = Logger.Level(rawValue: levelValue.text.lowercased()) else {
                throw ValidationError("\(levelValue.source): '\(levelValue.text)' is not a log level (trace, debug, info, notice, warning, error, critical)")
            }
            level = parsed
        }
        let formatValue = settings.value(flag: logFormat, flagName: "log-format", env: "HES_LOG_FORMAT")
        var format = LogFormat.text
        if let formatValue {
            guard let parsed = LogFormat(formatValue.text) else {
                throw ValidationError("\(formatValue.source): '\(formatValue.text)' is not a log format (text, json)")
            }
            format = parsed
        }
        let port = try settings.int(adminPort, flagName: "admin-port", env: "HES_ADMIN_PORT", default: defaultAdminPort, range: 0...65535)
        let host = settings.string(adminHost, flagName: "admin-host", env: "HES_ADMIN_HOST", default: "127.0.0.1")
        return RuntimeConfiguration(
            executable: executable, logFormat: format, logLevel: level,
            admin: AdminServerConfiguration(host: host, port: port))
    }
}

import Foundation
