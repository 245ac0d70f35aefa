import Foundation

/// Why a benchmark could not produce its figure.
struct BenchmarkFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The repository checkout the benchmarks run from (its scripts).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().path

/// A private PostgreSQL cluster in a benchmark's directory (`scripts/local-postgres.sh`).
struct PrivatePostgres {
    let directory: String
    let port: Int
    private var script: String { repositoryRoot + "/scripts/local-postgres.sh" }

    /// Starts the cluster (creating `database` in it) and returns the database's URL once the
    /// script printed it. The script's exit is not waited for: the server it starts inherits
    /// the process's descriptors, and Foundation's `Process` on Linux then never sees it end.
    func start(database: String = "hes") async throws -> String {
        let output = directory + "-url-" + database
        let process = Process()
        process.executableURL = URL(fileURLWithPath: script)
        process.environment = ProcessInfo.processInfo.environment.merging(["HES_LOCAL_DB_NAME": database]) { _, new in new }
        process.arguments = ["start", directory, String(port)]
        FileManager.default.createFile(atPath: output, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        process.standardError = FileHandle.nullDevice
        try process.run()
        for _ in 0..<600 {
            let text = String(decoding: FileManager.default.contents(atPath: output) ?? Data(), as: UTF8.self)
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("postgres://") }) { return String(line) }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw BenchmarkFailure("the private PostgreSQL did not start within 60 s (\(script) start \(directory))")
    }

    /// Stops the cluster and deletes it.
    func stop() {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: script)
        process.arguments = ["purge", directory, String(port)]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try? process.run()
        // Give pg_ctl its time to stop the server; its exit is not reliably seen either.
        Thread.sleep(forTimeInterval: 3)
    }
}

/// Runs a command line tool to its end and returns its standard output.
/// - Throws: ``BenchmarkFailure`` when it exits with another status than 0.
func runTool(_ executable: String, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    // A file, not a pipe: a server the command starts (pg_ctl) inherits the descriptor and
    // would keep a pipe open for its whole life.
    let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("hes-bench-\(UUID().uuidString)").path
    FileManager.default.createFile(atPath: outputPath, contents: nil)
    defer { try? FileManager.default.removeItem(atPath: outputPath) }
    process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
    process.standardError = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    let data = FileManager.default.contents(atPath: outputPath) ?? Data()
    guard process.terminationStatus == 0 else {
        throw BenchmarkFailure("\(executable) \(arguments.prefix(2).joined(separator: " ")) exited with \(process.terminationStatus)")
    }
    return String(decoding: data, as: UTF8.self)
}
