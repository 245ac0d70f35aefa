import Foundation

/// Where the database is and how to talk to it.
///
/// Usually parsed from `HES_DATABASE_URL`:
/// ```
/// postgres://user:password@host:5432/database?sslmode=disable&application_name=scheduler
/// ```
/// The URL follows libpq's connection URI format (`postgres://` or `postgresql://`; user, password
/// and database are percent-decoded; an IPv6 host is written in brackets). Supported query
/// parameters: `sslmode` (`disable`, `allow`, `prefer`, `require`, `verify-ca`, `verify-full`),
/// `connect_timeout` (seconds), `application_name`, `pool_size`. Anything else is rejected, so a
/// typo does not silently change behaviour.
public struct DatabaseConfiguration: Sendable, Hashable {
    /// How the connection is encrypted, named after libpq's `sslmode`.
    public struct TLSMode: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Base: String, Hashable, Sendable {
            case disable, prefer, require, verifyCA = "verify-ca", verifyFull = "verify-full"
        }

        fileprivate let base: Base

        /// Plain TCP.
        public static let disable = TLSMode(base: .disable)
        /// TLS when the server offers it, without certificate verification (libpq `prefer`, `allow`).
        public static let prefer = TLSMode(base: .prefer)
        /// TLS required, certificate not verified (libpq `require`).
        public static let require = TLSMode(base: .require)
        /// TLS required, certificate chain verified, host name not (libpq `verify-ca`).
        public static let verifyCA = TLSMode(base: .verifyCA)
        /// TLS required, certificate and host name verified (libpq `verify-full`).
        public static let verifyFull = TLSMode(base: .verifyFull)

        /// Parses a libpq `sslmode` value; `allow` is treated as `prefer`.
        public init?(sslmode: String) {
            if sslmode == "allow" {
                self = .prefer
                return
            }
            guard let base = Base(rawValue: sslmode) else { return nil }
            self.base = base
        }

        fileprivate init(base: Base) { self.base = base }

        public var description: String { self.base.rawValue }

        var isDisabled: Bool { self.base == .disable }
        var isRequired: Bool { self.base != .disable && self.base != .prefer }
        var verifiesCertificate: Bool { self.base == .verifyCA || self.base == .verifyFull }
        var verifiesHostname: Bool { self.base == .verifyFull }
    }

    /// Host name or IP address of the server.
    public var host: String
    /// TCP port. Default: 5432.
    public var port: Int
    /// Role to log in as. Default: `postgres`.
    public var username: String
    /// Password, if the server asks for one. Never logged (see ``description``).
    public var password: String?
    /// Database name. Default: the user name (as libpq does).
    public var database: String
    /// Transport security. Default: ``TLSMode/prefer`` (libpq's default).
    public var tls: TLSMode
    /// Maximum number of pooled connections per process. Default: 10.
    public var poolSize: Int
    /// Connections the pool keeps open even when idle. Default: 0.
    public var minimumConnections: Int
    /// How long to wait for a TCP connection and the start-up handshake. Default: 10 s.
    public var connectTimeout: Duration
    /// Reported to the server (`pg_stat_activity.application_name`). Default: none.
    public var applicationName: String?

    /// Default TCP port of PostgreSQL.
    public static let defaultPort = 5432
    /// Default maximum pool size.
    public static let defaultPoolSize = 10
    /// Default connect timeout.
    public static let defaultConnectTimeout: Duration = .seconds(10)

    /// Creates a configuration from its parts; see the properties for the defaults.
    public init(
        host: String,
        port: Int = Self.defaultPort,
        username: String = "postgres",
        password: String? = nil,
        database: String? = nil,
        tls: TLSMode = .prefer,
        poolSize: Int = Self.defaultPoolSize,
        minimumConnections: Int = 0,
        connectTimeout: Duration = Self.defaultConnectTimeout,
        applicationName: String? = nil
    ) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database ?? username
        self.tls = tls
        self.poolSize = poolSize
        self.minimumConnections = minimumConnections
        self.connectTimeout = connectTimeout
        self.applicationName = applicationName
    }

    /// Parses a `postgres://` URL such as the value of `HES_DATABASE_URL`.
    ///
    /// - Parameter url: `postgres://user:pass@host:port/db?sslmode=disable`.
    /// - Throws: ``PersistenceError/Code/invalidURL`` naming what is wrong (never echoing the
    ///   password).
    public init(url: String) throws(PersistenceError) {
        let trimmed = url.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw .invalidURL("the database URL is empty") }
        guard let components = URLComponents(string: trimmed) else {
            throw .invalidURL("'\(Self.redact(trimmed))' is not a valid URL")
        }
        guard let scheme = components.scheme?.lowercased(), scheme == "postgres" || scheme == "postgresql" else {
            throw .invalidURL(
                "'\(Self.redact(trimmed))' must start with postgres:// or postgresql://"
            )
        }
        guard var host = components.host, !host.isEmpty else {
            throw .invalidURL("'\(Self.redact(trimmed))' has no host (expected postgres://user:pass@host:port/db)")
        }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        host = host.removingPercentEncoding ?? host

        // URLComponents.port accepts only valid integers; check the range ourselves.
        let port: Int
        if let value = components.port {
            guard (1...65535).contains(value) else {
                throw .invalidURL("port \(value) in '\(Self.redact(trimmed))' is out of range 1…65535")
            }
            port = value
        } else {
            port = Self.defaultPort
        }

        let username = components.user.flatMap { $0.isEmpty ? nil : $0 } ?? "postgres"
        let password = components.password

        var path = components.path
        if path.hasPrefix("/") { path.removeFirst() }
        guard !path.contains("/") else {
            throw .invalidURL("database name '\(path)' in '\(Self.redact(trimmed))' must not contain '/'")
        }
        let database = path.isEmpty ? username : path

        var configuration = DatabaseConfiguration(
            host: host, port: port, username: username, password: password, database: database
        )

        for item in components.queryItems ?? [] {
            let value = item.value ?? ""
            switch item.name {
            case "sslmode":
                guard let mode = TLSMode(sslmode: value) else {
                    throw .invalidURL(
                        "sslmode '\(value)' is not one of disable, allow, prefer, require, verify-ca, verify-full"
                    )
                }
                configuration.tls = mode
            case "connect_timeout":
                guard let seconds = Int(value), seconds > 0 else {
                    throw .invalidURL("connect_timeout '\(value)' must be a positive number of seconds")
                }
                configuration.connectTimeout = .seconds(seconds)
            case "application_name":
                configuration.applicationName = value
            case "pool_size":
                guard let size = Int(value), size > 0 else {
                    throw .invalidURL("pool_size '\(value)' must be a positive integer")
                }
                configuration.poolSize = size
            default:
                throw .invalidURL(
                    "unsupported parameter '\(item.name)' in the database URL "
                        + "(supported: sslmode, connect_timeout, application_name, pool_size)"
                )
            }
        }
        self = configuration
    }

    /// Checks the ranges of the numeric settings.
    /// - Throws: ``PersistenceError/Code/invalidConfiguration``.
    public func validate() throws(PersistenceError) {
        guard self.poolSize > 0 else { throw .invalidConfiguration("pool size must be at least 1, not \(self.poolSize)") }
        guard (0...self.poolSize).contains(self.minimumConnections) else {
            throw .invalidConfiguration(
                "minimum connections \(self.minimumConnections) must be between 0 and the pool size \(self.poolSize)"
            )
        }
        guard self.connectTimeout > .zero else { throw .invalidConfiguration("connect timeout must be positive") }
        guard (1...65535).contains(self.port) else { throw .invalidConfiguration("port \(self.port) is out of range") }
    }

    /// `host:port`, for log messages (IPv6 hosts in brackets).
    public var endpoint: String {
        self.host.contains(":") ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)"
    }

    /// The configuration as a URL, password included. Do not log it; use ``description``.
    public var url: String {
        var components = URLComponents()
        components.scheme = "postgres"
        components.user = self.username
        components.password = self.password
        components.host = self.host.contains(":") ? "[\(self.host)]" : self.host
        components.port = self.port
        components.path = "/" + self.database
        var items = [URLQueryItem(name: "sslmode", value: self.tls.description)]
        if let applicationName { items.append(URLQueryItem(name: "application_name", value: applicationName)) }
        components.queryItems = items
        return components.string ?? "postgres://\(self.endpoint)/\(self.database)"
    }

    /// Replaces the password of a URL-ish string with `***` for error messages.
    static func redact(_ url: String) -> String {
        guard let schemeEnd = url.range(of: "://") else { return url }
        let rest = url[schemeEnd.upperBound...]
        guard let at = rest.lastIndex(of: "@") else { return url }
        let userInfo = rest[..<at]
        guard let colon = userInfo.firstIndex(of: ":") else { return url }
        return String(url[..<rest.startIndex]) + userInfo[..<colon] + ":***" + rest[at...]
    }
}

extension DatabaseConfiguration: CustomStringConvertible {
    /// The URL with the password replaced by `***`: safe to log.
    public var description: String {
        Self.redact(self.url)
    }
}
