import Foundation

/// One schema migration: a numbered SQL file `NNNN_name.sql`.
///
/// Files are immutable once applied: the runner stores each file's SHA-256 in
/// `schema_migrations` and refuses to start when an applied file has changed. Fix a mistake
/// with a new migration, never by editing an old one.
///
/// A file runs in its own transaction, statement by statement, so it must not contain
/// transaction control (`BEGIN`, `COMMIT`) or statements that cannot run in a transaction
/// (`CREATE INDEX CONCURRENTLY`, `VACUUM`).
public struct Migration: Sendable, Hashable, CustomStringConvertible {
    /// The number in the file name; migrations are applied in ascending order.
    public let version: Int
    /// The file name without number and extension (`initial` for `0001_initial.sql`).
    public let name: String
    /// The file's text.
    public let sql: String
    /// SHA-256 of the file's UTF-8 bytes, as 64 lowercase hex digits.
    public let checksum: String

    /// Creates a migration from its parts; the checksum is computed from `sql`.
    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
        self.checksum = SHA256.hexDigest(sql.utf8)
    }

    /// `0001_initial`.
    public var description: String {
        let number = String(self.version)
        return String(repeating: "0", count: max(0, 4 - number.count)) + number + "_" + self.name
    }

    /// The statements of the file, split at top-level semicolons.
    public func statements() throws(PersistenceError) -> [String] {
        do {
            return try SQLStatementSplitter.split(self.sql)
        } catch {
            throw .invalidMigration("migration \(self): \(error.reason)")
        }
    }
}

// MARK: - Loading

extension Migration {
    /// The migrations shipped with this module (`Shared/Persistence/Migrations`).
    ///
    /// - Throws: ``PersistenceError/Code/invalidMigration`` if the resource folder is missing or
    ///   a file is malformed.
    public static func bundled() throws(PersistenceError) -> [Migration] {
        guard let directory = Bundle.module.url(forResource: "Migrations", withExtension: nil) else {
            throw .invalidMigration("the Migrations resource folder is missing from the Persistence bundle")
        }
        return try self.load(from: directory)
    }

    /// Loads every `NNNN_name.sql` file of `directory`, sorted by version. Other files
    /// (`README.md`, `.keep`) are ignored.
    ///
    /// - Throws: ``PersistenceError/Code/invalidMigration`` for an unreadable directory or file,
    ///   a `.sql` file whose name does not match `NNNN_name.sql`, or two files with one version.
    public static func load(from directory: URL) throws(PersistenceError) -> [Migration] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        } catch {
            throw .invalidMigration("cannot list migrations in \(directory.path): \(error)")
        }
        var migrations: [Migration] = []
        for fileName in names where fileName.hasSuffix(".sql") {
            guard let (version, name) = self.parse(fileName: fileName) else {
                throw .invalidMigration(
                    "migration file '\(fileName)' must be named NNNN_name.sql (digits, underscore, [a-z0-9_] name)"
                )
            }
            let data: Data
            do {
                data = try Data(contentsOf: directory.appendingPathComponent(fileName))
            } catch {
                throw .invalidMigration("cannot read migration \(fileName): \(error)")
            }
            guard let sql = String(data: data, encoding: .utf8) else {
                throw .invalidMigration("migration \(fileName) is not valid UTF-8")
            }
            migrations.append(Migration(version: version, name: name, sql: sql))
        }
        return try self.validated(migrations)
    }

    /// Sorts `migrations` by version and rejects duplicate or non-positive versions.
    public static func validated(_ migrations: [Migration]) throws(PersistenceError) -> [Migration] {
        let sorted = migrations.sorted { $0.version < $1.version }
        for (previous, next) in zip(sorted, sorted.dropFirst()) where previous.version == next.version {
            throw .invalidMigration("migrations \(previous) and \(next) share version \(next.version)")
        }
        if let first = sorted.first, first.version <= 0 {
            throw .invalidMigration("migration \(first) must have a positive version")
        }
        return sorted
    }

    /// `0001_initial.sql` → (1, "initial").
    static func parse(fileName: String) -> (Int, String)? {
        guard fileName.hasSuffix(".sql") else { return nil }
        let stem = fileName.dropLast(4)
        guard let underscore = stem.firstIndex(of: "_") else { return nil }
        let digits = stem[..<underscore]
        let name = stem[stem.index(after: underscore)...]
        guard !digits.isEmpty, digits.count <= 9, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
            let version = Int(digits)
        else { return nil }
        guard !name.isEmpty,
            name.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_") })
        else { return nil }
        return (version, String(name))
    }
}
