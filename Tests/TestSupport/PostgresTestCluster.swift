import Foundation
import Logging
import Persistence
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A private PostgreSQL server for the tests of one process.
///
/// Started lazily by the first test that asks for a database (``createDatabase(prefix:)``) and
/// shared by every test after it: `initdb` into a fresh temporary directory, `pg_ctl start` on a
/// free loopback port, trust authentication on 127.0.0.1, durability switched off for speed.
/// Each test gets its own empty database, so tests are isolated from one another.
///
/// PostgreSQL refuses to run as root, so when the tests run as root the server runs as the
/// `postgres` OS user (`runuser -u postgres -- …`) in a directory owned by that user.
/// At process exit the server is stopped (`SIGQUIT`, what `pg_ctl stop -m immediate` sends) and
/// the directory removed; leftovers of crashed runs are cleaned up by the next run.
///
/// The binaries come from `HES_TEST_PG_BINDIR`, else the newest `/usr/lib/postgresql/*/bin`,
/// else `pg_config --bindir`. Set `HES_TEST_POSTGRES_URL` (a superuser URL) to use an existing
/// server instead of starting one.
public actor PostgresTestCluster {
    /// The cluster of this test process.
    public static let shared = PostgresTestCluster()

    /// Where a running cluster listens.
    public struct Server: Sendable {
        /// Superuser connection to the `postgres` maintenance database.
        public var configuration: DatabaseConfiguration
        /// The cluster directory (data, socket, `server.log`); `nil` for an external server.
        public var directory: String?
        /// The directory holding `psql`, `pg_dump` …; `nil` for an external server.
        public var binDirectory: String?
    }

    private var startup: Task<Server, any Error>?
    private var databaseCount = 0
    private let logger = Logger(label: "swifthes.test.postgres")

    public init() {}

    /// Starts the cluster if it is not running yet; concurrent callers share one start-up.
    @discardableResult
    public func start() async throws -> Server {
        if let startup { return try await startup.value }
        let task = Task<Server, any Error> {
            if let url = ProcessInfo.processInfo.environment["HES_TEST_POSTGRES_URL"], !url.isEmpty {
                return Server(configuration: try DatabaseConfiguration(url: url), directory: nil, binDirectory: nil)
            }
            return try await Self.runBlocking { try PostgresClusterProcess.boot() }
        }
        self.startup = task
        return try await task.value
    }

    /// Stops the server (`pg_ctl stop -m fast`: sessions are ended, as when a database server
    /// goes down). Only for a cluster of the test's own (`PostgresTestCluster()`), never `shared`.
    public func stopServer() async throws {
        let server = try await self.start()
        guard let directory = server.directory, let binDirectory = server.binDirectory else {
            throw PostgresTestClusterError(description: "an external server (HES_TEST_POSTGRES_URL) cannot be stopped by the tests")
        }
        try await Self.runBlocking {
            try PostgresClusterProcess.pgCtl("stop", binDirectory: binDirectory, directory: directory, port: server.configuration.port)
        }
    }

    /// Starts the server stopped by ``stopServer()`` again, on the same port.
    public func restartServer() async throws {
        let server = try await self.start()
        guard let directory = server.directory, let binDirectory = server.binDirectory else {
            throw PostgresTestClusterError(description: "an external server (HES_TEST_POSTGRES_URL) cannot be restarted by the tests")
        }
        try await Self.runBlocking {
            try PostgresClusterProcess.pgCtl("start", binDirectory: binDirectory, directory: directory, port: server.configuration.port)
        }
    }

    /// Stops a private cluster and deletes its directory (the shared one goes at exit).
    public func remove() async {
        guard let server = try? await self.start(), let directory = server.directory else { return }
        PostgresClusterProcess.running.withLock { $0.removeAll { $0 == directory } }
        PostgresClusterProcess.remove(directory)
    }

    /// Whether this cluster was booted by the tests (and can be stopped and restarted).
    public var isPrivate: Bool {
        get async throws { try await self.start().directory != nil }
    }

    /// Creates a fresh, empty database with a unique name and returns how to reach it.
    ///
    /// - Parameter prefix: Part of the name, to recognise the test in logs (`[a-z0-9_]`).
    public func createDatabase(prefix: String = "test") async throws -> PostgresTestDatabase {
        let server = try await self.start()
        self.databaseCount += 1
        let sanitized = String(prefix.lowercased().map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "_" }.prefix(30))
        let name = "hes_\(sanitized)_\(getpid())_\(self.databaseCount)"
        try await self.maintenance(server, "CREATE DATABASE \"\(name)\"")
        var configuration = server.configuration
        configuration.database = name
        return PostgresTestDatabase(name: name, configuration: configuration, server: server)
    }

    /// Drops a database created by ``createDatabase(prefix:)``, disconnecting its sessions.
    public func dropDatabase(_ database: PostgresTestDatabase) async throws {
        let server = try await self.start()
        try await self.maintenance(server, "DROP DATABASE IF EXISTS \"\(database.name)\" WITH (FORCE)")
    }

    private func maintenance(_ server: Server, _ sql: String) async throws {
        let connection = try await server.configuration.connect(logger: self.logger)
        do {
            try await connection.query(PostgresQuery(unsafeSQL: sql), logger: self.logger)
        } catch {
            try? await connection.close()
            throw PersistenceError.classify(error, context: sql)
        }
        try await connection.close()
    }

    /// Runs blocking work (process spawning) off the cooperative thread pool.
    private static func runBlocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try work() })
            }
        }
    }

    /// A loopback TCP port that nothing listens on right now (bound and released).
    public nonisolated static func unusedLoopbackPort() throws -> Int {
        try PostgresClusterProcess.freeLoopbackPort()
    }
}

/// A database of the test cluster.
public struct PostgresTestDatabase: Sendable {
    /// The database name (`hes_<prefix>_<pid>_<n>`).
    public let name: String
    /// How to connect to it (superuser, trust authentication, `sslmode=disable`).
    public let configuration: DatabaseConfiguration
    /// The cluster it lives in.
    public let server: PostgresTestCluster.Server

    /// `postgres://postgres@127.0.0.1:<port>/<name>?sslmode=disable`.
    public var url: String { self.configuration.url }
}

/// Error of the test cluster's start-up, with the tool's output.
public struct PostgresTestClusterError: Error, CustomStringConvertible {
    public let description: String
}

// MARK: - Processes

/// The blocking, process-spawning part of the cluster.
enum PostgresClusterProcess {
    static let directoryPrefix = "swifthes-pgtest-"

    /// Directories of clusters to stop at exit.
    static let running = Mutex<[String]>([])

    static func boot() throws -> PostgresTestCluster.Server {
        self.removeStaleClusters()
        let binDirectory = try self.findBinDirectory()
        let runAsPostgres = geteuid() == 0

        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(self.directoryPrefix)\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if runAsPostgres { try self.chownToPostgres(directory) }
        let data = directory + "/data"

        try self.run(
            binDirectory + "/initdb",
            ["-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"],
            asPostgres: runAsPostgres, in: directory
        )

        var lastError: (any Error)?
        for _ in 0..<5 {
            let port = try self.freeLoopbackPort()
            do {
                try self.pgCtl("start", binDirectory: binDirectory, directory: directory, port: port)
            } catch {
                // Most likely someone took the port between our probe and the bind: try another.
                lastError = error
                continue
            }
            self.running.withLock { $0.append(directory) }
            self.registerExitHandler()
            let configuration = DatabaseConfiguration(
                host: "127.0.0.1", port: port, username: "postgres", password: nil, database: "postgres",
                tls: .disable, poolSize: 4, connectTimeout: .seconds(5), applicationName: "swifthes-tests"
            )
            return PostgresTestCluster.Server(configuration: configuration, directory: directory, binDirectory: binDirectory)
        }
        let log = (try? String(contentsOfFile: directory + "/server.log", encoding: .utf8)) ?? ""
        self.remove(directory)
        throw PostgresTestClusterError(
            description: "could not start the test PostgreSQL: \(lastError.map { "\($0)" } ?? "unknown"); server.log:\n\(log.suffix(2000))"
        )
    }

    /// Runs `pg_ctl start` (waiting until the server accepts connections) or `pg_ctl stop`
    /// (fast: open sessions are ended) on the cluster in `directory`.
    static func pgCtl(_ action: String, binDirectory: String, directory: String, port: Int) throws {
        let options = [
            "-p \(port)", "-k \(directory)", "-c listen_addresses=127.0.0.1", "-c fsync=off",
            "-c synchronous_commit=off", "-c full_page_writes=off", "-c max_connections=300",
        ].joined(separator: " ")
        let arguments = action == "start"
            ? ["-D", directory + "/data", "-l", directory + "/server.log", "-w", "-t", "60", "-o", options, "start"]
            : ["-D", directory + "/data", "-w", "-t", "60", "-m", "fast", action]
        try self.run(binDirectory + "/pg_ctl", arguments, asPostgres: geteuid() == 0, in: directory)
    }

    static func findBinDirectory() throws -> String {
        let fileManager = FileManager.default
        if let configured = ProcessInfo.processInfo.environment["HES_TEST_PG_BINDIR"], !configured.isEmpty {
            return configured
        }
        let root = "/usr/lib/postgresql"
        let versions = ((try? fileManager.contentsOfDirectory(atPath: root)) ?? [])
            .compactMap { name in Int(name).map { ($0, "\(root)/\(name)/bin") } }
            .filter { fileManager.isExecutableFile(atPath: $0.1 + "/initdb") }
            .sorted { $0.0 > $1.0 }
        if let newest = versions.first { return newest.1 }
        if let output = try? self.run("/usr/bin/env", ["pg_config", "--bindir"], asPostgres: false, in: "/") {
            let path = output.trimmingCharacters(in: .whitespacesAndNewlines)
            if fileManager.isExecutableFile(atPath: path + "/initdb") { return path }
        }
        throw PostgresTestClusterError(
            description: "PostgreSQL server binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin or "
                + "pg_config --bindir; install postgresql (apt-get install postgresql) or set HES_TEST_PG_BINDIR"
        )
    }

    /// Runs a tool to completion and returns its output; throws with the output on failure.
    ///
    /// Uses `posix_spawn` + `waitpid` rather than Foundation's `Process`: `pg_ctl start` leaves
    /// the server running as a daemon, and `Process` detects a child's exit through a socket the
    /// child inherits, which the daemon would hold open forever. For the same reason the child
    /// gets no descriptors but stdin/stdout/stderr (the daemon must not keep other processes'
    /// pipes open either).
    @discardableResult
    static func run(_ tool: String, _ arguments: [String], asPostgres: Bool, in directory: String) throws -> String {
        let argv = asPostgres ? ["/usr/sbin/runuser", "-u", "postgres", "--", tool] + arguments : [tool] + arguments
        let outputPath = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(directoryPrefix)out-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        defer { unlink(outputPath) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // glibc ≥ 2.29 / 2.34 extensions, not exported by the Glibc module: look them up.
        if let addChdir = Self.spawnChdir {
            _ = addChdir(&actions, directory)
        }
        if let addCloseFrom = Self.spawnCloseFrom {
            _ = addCloseFrom(&actions, 3)
        }

        var cArguments = argv.map { strdup($0) } + [nil]
        defer { for argument in cArguments { free(argument) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, argv[0], &actions, nil, &cArguments, environ)
        guard spawned == 0 else {
            throw PostgresTestClusterError(description: "cannot run \(argv[0]): errno \(spawned)")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            guard errno == EINTR else { throw PostgresTestClusterError(description: "waitpid failed: errno \(errno)") }
        }
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        // WIFEXITED / WEXITSTATUS are macros: exited normally when the low 7 bits are 0.
        let exitCode = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        guard exitCode == 0 else {
            throw PostgresTestClusterError(
                description: "\(argv.joined(separator: " ")) exited with \(exitCode):\n\(text)"
            )
        }
        return text
    }

    private typealias SpawnChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
    private typealias SpawnCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

    private static let spawnChdir: SpawnChdir? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addchdir_np")
        .map { unsafeBitCast($0, to: SpawnChdir.self) }
    private static let spawnCloseFrom: SpawnCloseFrom? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np")
        .map { unsafeBitCast($0, to: SpawnCloseFrom.self) }

    static func chownToPostgres(_ path: String) throws {
        guard let entry = getpwnam("postgres") else {
            throw PostgresTestClusterError(
                description: "tests run as root but there is no 'postgres' OS user to run the server as"
            )
        }
        guard chown(path, entry.pointee.pw_uid, entry.pointee.pw_gid) == 0 else {
            throw PostgresTestClusterError(description: "chown \(path) to postgres failed: errno \(errno)")
        }
    }

    /// A loopback port for the cluster (the one of ``freeLoopbackPort()`` in ChildProcess.swift).
    static func freeLoopbackPort() throws -> Int { try TestSupport.freeLoopbackPort() }

    // MARK: Clean-up

    private static let exitHandlerRegistered = Mutex(false)

    static func registerExitHandler() {
        let first = self.exitHandlerRegistered.withLock { registered in
            defer { registered = true }
            return !registered
        }
        guard first else { return }
        atexit {
            let directories = PostgresClusterProcess.running.withLock { $0 }
            for directory in directories { PostgresClusterProcess.remove(directory) }
        }
    }

    /// Stops the cluster in `directory` (if running) and deletes the directory.
    static func remove(_ directory: String) {
        if let pidText = try? String(contentsOfFile: directory + "/data/postmaster.pid", encoding: .utf8),
            let pid = pidText.split(separator: "\n").first.flatMap({ pid_t($0.trimmingCharacters(in: .whitespaces)) }),
            pid > 0
        {
            // SIGQUIT is pg_ctl's "immediate" shutdown.
            if kill(pid, SIGQUIT) == 0 {
                for _ in 0..<100 where kill(pid, 0) == 0 { usleep(50_000) }
            }
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Removes clusters left behind by test processes that no longer exist (crashed runs).
    static func removeStaleClusters() {
        let temporary = FileManager.default.temporaryDirectory.path
        for name in (try? FileManager.default.contentsOfDirectory(atPath: temporary)) ?? [] where name.hasPrefix(directoryPrefix) {
            // `<pid>-<n>` is a cluster directory, `out-<pid>-<n>` a tool's output file.
            var parts = name.dropFirst(directoryPrefix.count).split(separator: "-")
            if parts.first == "out" { parts.removeFirst() }
            guard parts.count == 2, let owner = pid_t(parts[0]), owner != getpid() else { continue }
            if kill(owner, 0) == -1 && errno == ESRCH {
                self.remove(temporary + "/" + name)
            }
        }
    }
}
