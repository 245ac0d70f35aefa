// The store of record (DESIGN.md §4): configuration of the database connection, the migration
// runner and its SQL files, and the service that owns the connection pool.
//
// PostgresNIO is re-exported so services can write queries against `PostgresConnection` with
// only `import Persistence`.
@_exported import PostgresNIO
