import Crypto
import Foundation
import Logging
import Persistence
import PostgresNIO
import Synchronization

/// What a token may do: viewers read, operators also create and cancel commands, admins also
/// change the configuration and the tokens.
enum APIRole: String, Codable, Sendable, Comparable, CaseIterable {
    case viewer, `operator`, admin

    private var rank: Int {
        switch self {
        case .viewer: 0
        case .operator: 1
        case .admin: 2
        }
    }

    static func < (lhs: Self, rhs: Self) -> Bool { lhs.rank < rhs.rank }
}

/// Who called: a token's name and role.
struct Principal: Sendable, Hashable {
    var name: String
    var role: APIRole
}

/// A token as the API lists it (never the token itself).
struct TokenSummary: Codable, Sendable, Hashable {
    var name: String
    var role: APIRole
    var createdBy: String
    var createdAt: Date
    var revokedAt: Date?
}

/// API tokens in `api_tokens`, stored as their SHA-256 only; a token is shown once, when made.
/// Lookups are cached for a few seconds (a revoked token stops working within that time).
struct APITokens: Sendable {
    let database: DatabaseService
    let logger: Logger
    private let cache = TokenCache()
    static let cacheTime: Duration = .seconds(5)

    init(database: DatabaseService, logger: Logger) {
        self.database = database
        self.logger = logger
    }

    static func hash(_ token: String) -> String {
        SHA256.hash(data: Array(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// The caller of a bearer token, or nil for an unknown or revoked one.
    func principal(for token: String) async throws -> Principal? {
        let hash = Self.hash(token)
        let now = ContinuousClock.now
        if let cached = cache.withLock({ $0[hash] }), cached.until > now { return cached.principal }
        let principal = try await database.withConnection { connection in
            let rows = try await connection.query("""
                SELECT name, role FROM api_tokens WHERE token_sha256 = \(hash) AND revoked_at IS NULL
                """, logger: logger)
            for try await (name, role) in rows.decode((String, String).self) {
                return APIRole(rawValue: role).map { Principal(name: name, role: $0) }
            }
            return nil
        }
        cache.withLock { entries in
            if entries.count > 10_000 { entries.removeAll() }
            entries[hash] = (principal, now + Self.cacheTime)
        }
        return principal
    }

    /// Makes a token; returns it (the only time it is seen).
    func create(name: String, role: APIRole, by actor: String) async throws -> String {
        var bytes = [UInt8](repeating: 0, count: 32)
        var generator = SystemRandomNumberGenerator()
        for index in bytes.indices { bytes[index] = generator.next() }
        let token = "hes_" + Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        try await database.withTransaction { connection in
            let rows = try await connection.query("""
                INSERT INTO api_tokens (name, role, token_sha256, created_by) VALUES (\(name), \(role.rawValue), \(Self.hash(token)), \(actor))
                ON CONFLICT (name) DO NOTHING RETURNING 1
                """, logger: logger)
            var inserted = false
            for try await _ in rows { inserted = true }
            guard inserted else { throw ConfigServiceError.conflict("a token named '\(name)' exists already (revoke it first)") }
            try await AuditLog.append(actor: actor, action: "token.created", subject: "token/\(name)", details: ["role": role.rawValue], on: connection, logger: logger)
        }
        return token
    }

    func list() async throws -> [TokenSummary] {
        try await database.withConnection { connection in
            var tokens: [TokenSummary] = []
            let rows = try await connection.query("SELECT name, role, created_by, created_at, revoked_at FROM api_tokens ORDER BY name", logger: logger)
            for try await (name, role, by, at, revoked) in rows.decode((String, String, String, Date, Date?).self) {
                tokens.append(TokenSummary(name: name, role: APIRole(rawValue: role) ?? .viewer, createdBy: by, createdAt: at, revokedAt: revoked))
            }
            return tokens
        }
    }

    /// Revokes a token; the last active admin token cannot be revoked (`.conflict`).
    func revoke(name: String, by actor: String) async throws {
        try await database.withTransaction { connection in
            let rows = try await connection.query("""
                UPDATE api_tokens SET revoked_at = now() WHERE name = \(name) AND revoked_at IS NULL RETURNING 1
                """, logger: logger)
            var revoked = false
            for try await _ in rows { revoked = true }
            guard revoked else { throw ConfigServiceError.notFound("there is no active token named '\(name)'") }
            // Revoking the last admin token would leave nobody able to make tokens (until a restart
            // with a new HES_API_TOKEN): refused, and the transaction undoes the revocation.
            let admins = try await connection.query("SELECT count(*) FROM api_tokens WHERE role = 'admin' AND revoked_at IS NULL", logger: logger)
            var remaining = 0
            for try await count in admins.decode(Int.self) { remaining = count }
            guard remaining > 0 else {
                throw ConfigServiceError.conflict("'\(name)' is the last admin token; make another admin token before revoking it")
            }
            try await AuditLog.append(actor: actor, action: "token.revoked", subject: "token/\(name)", on: connection, logger: logger)
        }
        cache.withLock { $0.removeAll() }
    }

    /// Makes sure `token` (from `HES_API_TOKEN`) is an admin token named `bootstrap`: the first
    /// way in on a new installation. A different bootstrap token replaces the previous one.
    func ensureBootstrap(_ token: String) async throws {
        try await database.withTransaction { connection in
            let rows = try await connection.query("""
                INSERT INTO api_tokens (name, role, token_sha256, created_by) VALUES ('bootstrap', 'admin', \(Self.hash(token)), 'config-service')
                ON CONFLICT (name) DO UPDATE SET token_sha256 = EXCLUDED.token_sha256, role = 'admin', revoked_at = NULL
                    WHERE api_tokens.token_sha256 <> EXCLUDED.token_sha256 OR api_tokens.revoked_at IS NOT NULL
                RETURNING 1
                """, logger: logger)
            var changed = false
            for try await _ in rows { changed = true }
            if changed {
                try await AuditLog.append(actor: "config-service", action: "token.bootstrap", subject: "token/bootstrap", on: connection, logger: logger)
            }
        }
    }
}

/// Recent token lookups (hash → caller or unknown, until when).
final class TokenCache: Sendable {
    private let entries = Mutex<[String: (principal: Principal?, until: ContinuousClock.Instant)]>([:])

    func withLock<T>(_ body: (inout [String: (principal: Principal?, until: ContinuousClock.Instant)]) -> T) -> T {
        entries.withLock { body(&$0) }
    }
}
