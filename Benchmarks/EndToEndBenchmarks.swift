import Foundation

/// The whole pipeline at fleet size (`e2e.meters_per_hour`): `make run`'s script on release
/// builds (the executables beside this one) with 10,000 simulated TCP wrapper meters answering
/// 200 ms late (ports 21000–30999, below the ephemeral range), each task reading the clock, the
/// registers and 8 hours of 15-minute load profile (32 rows of 3 values: about 100 readings a
/// meter, the size the target of 1,800,000 meters an hour assumes), one collector allowed
/// 1,000 sessions at once, one scheduler, one uploader, ims-sim storing in PostgreSQL. The
/// figure is meters read and confirmed at the IMS per hour over the cycle, from the
/// configuration's activation to the last result at the IMS; `meter-sim verify` must find every
/// reading right, or the benchmark fails.
enum EndToEndBenchmarks {
    static let all: [Benchmark] = [
        Benchmark(name: "e2e.meters_per_hour") { try await metersPerHour(meters: 10_000) },
    ]

    static func metersPerHour(meters: Int) async throws -> [BenchmarkResult] {
        ConcurrentSessionBenchmark.raiseFileLimit()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hes-bench-e2e-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try """
            {"seed": 0, "password": "12345678", "pace": false, "groups": [
              {"count": \(meters), "transport": "tcp", "framing": "wrapper", "port": 21000, "faults": {"latency": "200ms"}}]}
            """.write(toFile: directory + "/fleet.json", atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [repositoryRoot + "/scripts/run-local.sh"]
        process.currentDirectoryURL = URL(fileURLWithPath: repositoryRoot)
        process.environment = ProcessInfo.processInfo.environment.merging([
            "HES_RUN_FLEET": directory + "/fleet.json", "HES_RUN_DIR": directory + "/run", "HES_RUN_RELEASE": "1",
            "HES_RUN_BIN": Bundle.main.executableURL?.deletingLastPathComponent().path ?? "", "HES_RUN_LOOKBACK_HOURS": "8",
            "HES_MAX_CONCURRENT_LINES": "1000", "HES_STEP_TIMEOUT": "30s", "HES_LOG_LEVEL": "warning", "HES_RUN_CYCLE_TIMEOUT": "1200", "HES_RUN_READY_TIMEOUT": "240",
        ]) { _, new in new }
        let output = directory + "/run.log"
        FileManager.default.createFile(atPath: output, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        process.standardError = process.standardOutput
        try process.run()
        // The script ends by stopping everything (PostgreSQL too); wait for its last line.
        var summary: [String: Any]?
        let deadline = ContinuousClock.now + .seconds(1800)
        while ContinuousClock.now < deadline {
            try await Task.sleep(for: .seconds(2))
            let text = String(decoding: FileManager.default.contents(atPath: output) ?? Data(), as: UTF8.self)
            if let line = text.split(separator: "\n").last(where: { $0.hasPrefix("SUMMARY ") }), text.hasSuffix("\n"),
               text.split(separator: "\n").last?.hasPrefix("SUMMARY ") == true {
                summary = try JSONSerialization.jsonObject(with: Data(line.dropFirst(8).utf8)) as? [String: Any]
                break
            }
        }
        guard let summary, summary["ok"] as? Bool == true,
              let cycleData = FileManager.default.contents(atPath: directory + "/run/cycle.json"),
              let cycle = try JSONSerialization.jsonObject(with: cycleData) as? [String: Any], let seconds = cycle["seconds"] as? Double, seconds > 0 else {
            let text = String(decoding: FileManager.default.contents(atPath: output) ?? Data(), as: UTF8.self)
            throw BenchmarkFailure("e2e.meters_per_hour: the cycle did not end right:\n\(text.suffix(3000))")
        }
        let read = summary["meters_read"] as? Int ?? 0
        let readings = summary["readings_confirmed"] as? Int ?? 0
        let values = summary["readings_expected"] as? Int ?? 0
        return [
            BenchmarkResult(name: "e2e.meters_per_hour.profile_values_per_meter", value: Double(values) / Double(max(read, 1)), unit: "values"),
            BenchmarkResult(name: "e2e.meters_per_hour", value: Double(read) / seconds * 3600, unit: "meters/h"),
            BenchmarkResult(name: "e2e.meters_per_hour.cycle_seconds", value: seconds, unit: "s"),
            BenchmarkResult(name: "e2e.meters_per_hour.readings_per_second", value: Double(readings) / seconds, unit: "readings/s"),
        ]
    }
}
