import Foundation
import NIOCore
import NIOPosix
import PostgresNIO

/// The one error type of the `Persistence` module.
///
/// `==` compares ``code`` only, so tests and callers can match on the kind of failure:
/// `#expect(throws: PersistenceError.unreachable(...))` or `error.code == .checksumMismatch`.
/// ``reason`` is meant for humans and logs; it never contains passwords.
public struct PersistenceError: Error, Hashable, CustomStringConvertible {
    /// The kind of failure. Extensible: new codes can be added without breaking callers.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Base: String, Hashable, Sendable {
            case invalidURL
            case invalidConfiguration
            case unreachable
            case connectionLost
            case authenticationFailed
            case queryFailed
            case invalidMigration
            case checksumMismatch
            case migrationFailed
            case shutdown
        }

        fileprivate let base: Base

        fileprivate init(_ base: Base) { self.base = base }

        /// `HES_DATABASE_URL` is not a valid `postgres://` URL.
        public static let invalidURL = Code(.invalidURL)
        /// A configuration value is out of range (pool size, timeout).
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// The server could not be reached (refused, timed out, DNS). Retriable.
        public static let unreachable = Code(.unreachable)
        /// An established connection broke, or the server is shutting down / starting up. Retriable.
        public static let connectionLost = Code(.connectionLost)
        /// The server rejected the credentials or the database does not exist.
        public static let authenticationFailed = Code(.authenticationFailed)
        /// A statement failed on the server; see ``PersistenceError/sqlState``.
        public static let queryFailed = Code(.queryFailed)
        /// A migration file is malformed: bad file name, duplicate version, unreadable.
        public static let invalidMigration = Code(.invalidMigration)
        /// An already applied migration's file was changed after it was applied.
        public static let checksumMismatch = Code(.checksumMismatch)
        /// A migration's SQL failed; its transaction was rolled back.
        public static let migrationFailed = Code(.migrationFailed)
        /// The operation was abandoned because the service is shutting down.
        public static let shutdown = Code(.shutdown)

        public var description: String { self.base.rawValue }
    }

    /// What went wrong.
    public let code: Code
    /// A human-readable explanation, safe to log.
    public let reason: String
    /// Whether repeating the operation later may succeed (the database was unreachable,
    /// a connection broke, a serialization failure), as opposed to a permanent problem.
    public let isRetriable: Bool
    /// The PostgreSQL SQLSTATE, when the server reported the error (`23505`, `57P03` …).
    public let sqlState: String?
    /// The error this one wraps, if any (usually a `PSQLError` or a NIO error).
    public let underlying: (any Error)?
    /// Where the error was created.
    public let file: String
    public let line: Int

    public init(
        code: Code,
        reason: String,
        isRetriable: Bool? = nil,
        sqlState: String? = nil,
        underlying: (any Error)? = nil,
        file: String = #fileID,
        line: Int = #line
    ) {
        self.code = code
        self.reason = reason
        self.isRetriable = isRetriable ?? [.unreachable, .connectionLost].contains(code)
        self.sqlState = sqlState
        self.underlying = underlying
        self.file = file
        self.line = line
    }

    public var description: String {
        var text = "PersistenceError.\(self.code): \(self.reason)"
        if let sqlState = self.sqlState { text += " [SQLSTATE \(sqlState)]" }
        return text
    }

    public static func == (lhs: PersistenceError, rhs: PersistenceError) -> Bool {
        lhs.code == rhs.code
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(self.code)
    }
}

// MARK: - Factories

extension PersistenceError {
    public static func invalidURL(_ reason: String, file: String = #fileID, line: Int = #line) -> Self {
        Self(code: .invalidURL, reason: reason, file: file, line: line)
    }

    public static func invalidConfiguration(_ reason: String, file: String = #fileID, line: Int = #line) -> Self {
        Self(code: .invalidConfiguration, reason: reason, file: file, line: line)
    }

    public static func unreachable(_ reason: String, underlying: (any Error)? = nil, file: String = #fileID, line: Int = #line) -> Self {
        Self(code: .unreachable, reason: reason, underlying: underlying, file: file, line: line)
    }

    public static func connectionLost(_ reason: String, underlying: (any Error)? = nil, file: String = #fileID, line: Int = #line) -> Self {
        Self(code: .connectionLost, reason: reason, underlying: underlying, file: file, line: line)
    }

    public static func invalidMigration(_ reason: String, file: String = #fileID, line: Int = #line) -> Self {
        Self(code: .invalidMigration, reason: reason, file: file, line: line)
    }

    public static func checksumMismatch(_ reason: String, file: String = #fileID, line: Int = #line) -> Self {
        Self(code: .checksumMismatch, reason: reason, file: file, line: line)
    }

    public static func authenticationFailed(_ reason: String, file: String = #fileID, line: Int = #line) -> Self {
        Self(code: .authenticationFailed, reason: reason, file: file, line: line)
    }

    public static func queryFailed(_ reason: String, file: String = #fileID, line: Int = #line) -> Self {
        Self(code: .queryFailed, reason: reason, file: file, line: line)
    }

    public static func migrationFailed(_ reason: String, file: String = #fileID, line: Int = #line) -> Self {
        Self(code: .migrationFailed, reason: reason, file: file, line: line)
    }

    public static func shutdown(_ reason: String, file: String = #fileID, line: Int = #line) -> Self {
        Self(code: .shutdown, reason: reason, file: file, line: line)
    }
}

// MARK: - Classifying PostgresNIO and NIO errors

extension PersistenceError {
    /// Wraps any error thrown by PostgresNIO or NIO into a ``PersistenceError`` with the right
    /// code and ``isRetriable``. A ``PersistenceError`` is returned unchanged.
    ///
    /// - Parameters:
    ///   - error: The error to classify.
    ///   - context: What was being done, prefixed to the reason (`"migration 0001_initial"`).
    ///   - endpoint: `host:port`, used in the reason of connection failures.
    public static func classify(
        _ error: any Error,
        context: String,
        endpoint: String? = nil,
        file: String = #fileID,
        line: Int = #line
    ) -> PersistenceError {
        if let error = error as? PersistenceError { return error }
        if let error = error as? PostgresTransactionError {
            // The interesting part of a failed transaction is whatever failed first.
            if let inner = error.closureError ?? error.beginError ?? error.commitError ?? error.rollbackError {
                return classify(inner, context: context, endpoint: endpoint, file: file, line: line)
            }
        }
        let at = endpoint.map { " at \($0)" } ?? ""
        if let error = error as? PSQLError {
            switch error.code {
            case .server:
                let sqlState = error.serverInfo?[.sqlState]
                let message = Self.serverMessage(error)
                let (code, retriable) = Self.classify(sqlState: sqlState)
                return PersistenceError(
                    code: code, reason: "\(context): \(message)", isRetriable: retriable,
                    sqlState: sqlState, underlying: error, file: file, line: line
                )
            case .connectionError:
                return .unreachable(
                    "\(context): cannot connect\(at): \(Self.describe(error.underlying))",
                    underlying: error, file: file, line: line
                )
            case .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .messageDecodingFailure,
                .unexpectedBackendMessage:
                return .connectionLost(
                    "\(context): connection\(at) closed (\(error.code)\(error.underlying.map { ": \(Self.describe($0))" } ?? ""))",
                    underlying: error, file: file, line: line
                )
            case .poolClosed:
                return .shutdown("\(context): the connection pool is closed", file: file, line: line)
            case .queryCancelled:
                return PersistenceError(
                    code: .queryFailed, reason: "\(context): query cancelled", isRetriable: true,
                    underlying: error, file: file, line: line
                )
            case .sslUnsupported, .failedToAddSSLHandler, .receivedUnencryptedDataAfterSSLRequest:
                return PersistenceError(
                    code: .unreachable,
                    reason: "\(context): TLS negotiation with the server\(at) failed (\(error.code)); check sslmode",
                    isRetriable: false, underlying: error, file: file, line: line
                )
            case .unsupportedAuthMechanism, .authMechanismRequiresPassword, .saslError:
                return PersistenceError(
                    code: .authenticationFailed, reason: "\(context): authentication failed (\(error.code))",
                    underlying: error, file: file, line: line
                )
            default:
                return PersistenceError(
                    code: .queryFailed, reason: "\(context): \(error.code)", isRetriable: false,
                    underlying: error, file: file, line: line
                )
            }
        }
        if error is CancellationError {
            return .shutdown("\(context): cancelled", file: file, line: line)
        }
        if error is ChannelError || error is IOError || error is SocketAddressError {
            return .unreachable("\(context): cannot connect\(at): \(Self.describe(error))", underlying: error, file: file, line: line)
        }
        return PersistenceError(
            code: .queryFailed, reason: "\(context): \(Self.describe(error))", isRetriable: false,
            underlying: error, file: file, line: line
        )
    }

    /// Maps a SQLSTATE to a code and retriability (PostgreSQL manual, Appendix A).
    static func classify(sqlState: String?) -> (Code, Bool) {
        guard let sqlState else { return (.queryFailed, false) }
        switch sqlState {
        case "40001", "40P01":  // serialization_failure, deadlock_detected
            return (.queryFailed, true)
        case "57P01", "57P02", "57P03":  // admin_shutdown, crash_shutdown, cannot_connect_now
            return (.connectionLost, true)
        case "53300":  // too_many_connections
            return (.unreachable, true)
        case "3D000":  // invalid_catalog_name: the database does not exist
            return (.authenticationFailed, false)
        default:
            if sqlState.hasPrefix("08") { return (.connectionLost, true) }  // connection exception
            if sqlState.hasPrefix("28") { return (.authenticationFailed, false) }  // invalid authorization
            return (.queryFailed, false)
        }
    }

    /// The server's message and detail, without the query text (which may hold secrets).
    static func serverMessage(_ error: PSQLError) -> String {
        guard let info = error.serverInfo else { return "server error" }
        var text = info[.message] ?? "server error"
        if let detail = info[.detail] { text += " (\(detail))" }
        if let constraint = info[.constraintName] { text += " [constraint \(constraint)]" }
        return text
    }

    /// A short, operator-friendly cause: `connection refused`, `connect timed out after 10 s`.
    static func describe(_ error: (any Error)?) -> String {
        guard let error else { return "unknown error" }
        if let error = error as? NIOConnectionError {
            if error.connectionErrors.isEmpty, let dns = error.dnsAError ?? error.dnsAAAAError {
                return "cannot resolve \(error.host) (\(describe(dns)))"
            }
            let causes = Set(error.connectionErrors.map { describe($0.error) })
            return causes.isEmpty ? "no address to connect to for \(error.host)" : causes.sorted().joined(separator: "; ")
        }
        if let error = error as? IOError {
            return String(cString: strerror(error.errnoCode)).lowercased()
        }
        if let error = error as? ChannelError, case .connectTimeout(let timeout) = error {
            return "connect timed out after \(Duration.nanoseconds(timeout.nanoseconds))"
        }
        if let error = error as? PSQLError {
            return error.code == .server ? serverMessage(error) : "\(error.code)"
        }
        return String(describing: error)
    }
}
