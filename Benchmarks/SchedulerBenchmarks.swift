import Foundation

/// The scheduler emitting the daily tasks of 100,000 meters (1,000 gateway lines of 100 HDLC
/// meters, each reading the clock, four registers and a profile day) through kafka-dev, as
/// processes with a private PostgreSQL. The configuration is activated with its `NOTIFY` while
/// the scheduler leads; the figure is the time until all 100,000 tasks are acknowledged by Kafka
/// and recorded in the ledger (plan, ledger checks, encoding, sends and ledger writes).
enum SchedulerBenchmarks {
    static let all: [Benchmark] = [
        Benchmark(name: "scheduler.emit_100k") { try await emit(meters: 100_000) },
    ]

    static func emit(meters: Int) async throws -> [BenchmarkResult] {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hes-bench-scheduler-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().path
        let script = root + "/scripts/local-postgres.sh"
        let pgDirectory = directory + "/pg"
        let pgPort = 19_432
        let url = try await startPostgres(script: script, directory: pgDirectory, port: pgPort, output: directory + "/pg-url")
        defer { stopPostgres(script: script, directory: pgDirectory, port: pgPort) }

        let region = "bench"
        let kafkaPort = 19_093
        var processes: [ChildProcessHandle] = []
        defer { for process in processes.reversed() { process.stop() } }
        processes.append(try await ChildProcessHandle.start(
            "kafka-dev", ["--port", String(kafkaPort), "--regions", region, "--partitions", "24", "--admin-port", "0",
                          "--bootstrap-file", directory + "/bootstrap"], log: directory + "/kafka-dev.log", ready: "kafka-dev bootstrap"))
        processes.append(try await ChildProcessHandle.start(
            "scheduler", ["--admin-port", "0", "--database-url", url, "--kafka-brokers", "127.0.0.1:\(kafkaPort)", "--log-level", "notice"],
            log: directory + "/scheduler.log", ready: "", timeout: .seconds(5)))
        // Migrations applied by the scheduler: wait for its tables.
        for _ in 0..<100 {
            if (try? psql(url, "SELECT count(*) FROM dispatched_tasks")) != nil { break }
            try await Task.sleep(for: .milliseconds(200))
        }

        // The daily slot: this minute (UTC) yesterday's window still open — emitted now.
        let now = Date()
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.hour, .minute], from: now)
        let documentPath = directory + "/config.sql"
        try activation(meters: meters, cron: "\(parts.minute!) \(parts.hour!) * * *", region: region).write(toFile: documentPath, atomically: true, encoding: .utf8)
        let clock = ContinuousClock()
        let start = clock.now
        _ = try shell("/usr/bin/psql", ["-q", "-v", "ON_ERROR_STOP=1", url, "-f", documentPath])
        var emitted = 0
        let deadline = start + .seconds(300)
        while emitted < meters, clock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            emitted = Int(try psql(url, "SELECT count(*) FROM dispatched_tasks").trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        }
        let elapsed = clock.now - start
        guard emitted == meters else {
            throw BenchmarkFailure("scheduler.emit_100k: \(emitted) of \(meters) tasks emitted in 300 s; see \(directory)/scheduler.log")
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return [
            BenchmarkResult(name: "scheduler.emit_100k", value: seconds, unit: "s"),
            BenchmarkResult(name: "scheduler.emit_100k.rate", value: Double(meters) / seconds, unit: "tasks/s"),
        ]
    }

    /// SQL that stores and activates the configuration and notifies the scheduler.
    static func activation(meters: Int, cron: String, region: String) -> String {
        let perLine = 100
        var lines: [String] = []
        var entries: [String] = []
        for line in 0..<(meters / perLine) {
            lines.append(#"{"id":"gw\#(line)","region":"\#(region)","endpoint":{"kind":"gateway-udp","host":"10.\#(line / 250).\#(line % 250).1","port":4001},"networkSegment":"cell\#(line % 50)"}"#)
            for drop in 0..<perLine {
                entries.append(#"{"id":"M\#(line * perLine + drop)","line":"gw\#(line)","template":"home","hdlcPhysicalAddress":\#(16 + drop)}"#)
            }
        }
        let document = """
            {"schema":"hes-configuration/v1","regions":[{"id":"\(region)"}],
             "schedules":[{"id":"daily","cron":"\(cron)","timeZone":"UTC","windowMinutes":240,"jitterSeconds":0}],
             "templates":[{"id":"home","schedules":["daily"],"defaults":{"protocol":"dlms-hdlc"},
               "objects":[{"classID":8,"obis":"0.0.1.0.0.255","attribute":2},{"classID":3,"obis":"1.0.1.8.0.255","attribute":2},
                          {"classID":3,"obis":"1.0.2.8.0.255","attribute":2},{"classID":3,"obis":"1.0.1.8.1.255","attribute":2},
                          {"classID":3,"obis":"1.0.1.8.2.255","attribute":2}],
               "profiles":[{"obis":"1.0.99.1.0.255","lookbackHours":24}]}],
             "lines":[\(lines.joined(separator: ","))],
             "meters":[\(entries.joined(separator: ","))]}
            """
        return """
            INSERT INTO config_versions (status, document, sha256, created_by, activated_at)
            VALUES ('active', $doc$\(document)$doc$::jsonb, repeat('0', 64), 'bench', now());
            NOTIFY hes_config_activated, 'bench';
            """
    }

    /// Starts the private cluster and returns its URL once the script printed it. The script's
    /// exit is not waited for: the server it starts inherits the process's descriptors, and
    /// Foundation's `Process` on Linux then never sees the script end.
    static func startPostgres(script: String, directory: String, port: Int, output: String, environment: [String: String] = [:]) async throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: script)
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
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

    static func stopPostgres(script: String, directory: String, port: Int) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: script)
        process.arguments = ["purge", directory, String(port)]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try? process.run()
        // Give pg_ctl its time to stop the server; its exit is not reliably seen either.
        Thread.sleep(forTimeInterval: 3)
    }

    static func psql(_ url: String, _ query: String) throws -> String {
        try shell("/usr/bin/psql", ["-At", "-v", "ON_ERROR_STOP=1", url, "-c", query])
    }

    static func shell(_ executable: String, _ arguments: [String]) throws -> String {
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
}

struct BenchmarkFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
