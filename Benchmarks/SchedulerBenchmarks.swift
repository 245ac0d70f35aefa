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
        let postgres = PrivatePostgres(directory: directory + "/pg", port: 19_432)
        let url = try await postgres.start()
        defer { postgres.stop() }

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
        _ = try runTool("/usr/bin/psql", ["-q", "-v", "ON_ERROR_STOP=1", url, "-f", documentPath])
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
        let seconds = FleetBenchmarks.seconds(elapsed)
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

    static func psql(_ url: String, _ query: String) throws -> String {
        try runTool("/usr/bin/psql", ["-At", "-v", "ON_ERROR_STOP=1", url, "-c", query])
    }
}
