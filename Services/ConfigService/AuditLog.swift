import Foundation
import Logging
import PostgresNIO

/// Rows of `audit_log` (append-only): who did what to which subject, written in the
/// transaction of the change itself so a change and its audit row commit together.
enum AuditLog {
    static func append(actor: String, action: String, subject: String, details: [String: String] = [:],
                       on connection: PostgresConnection, logger: Logger) async throws {
        let json = String(decoding: try JSONEncoder().encode(details), as: UTF8.self)
        try await connection.query("""
            INSERT INTO audit_log (actor, action, subject, details) VALUES (\(actor), \(action), \(subject), \(json)::jsonb)
            """, logger: logger)
    }
}
