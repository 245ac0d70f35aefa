import Foundation

/// config-service validating, storing and activating a configuration of 100,000 meters (1,000
/// gateway lines of 100 HDLC meters, each with an LLS password to seal) through its API, with a
/// private PostgreSQL: the figure is the time of `POST /v1/config/versions` until it answered
/// 201 (validation, sealing, the version row and the read models rebuilt in one transaction).
enum ConfigBenchmarks {
    static let all: [Benchmark] = [
        Benchmark(name: "config.activate_100k") { try await activate(meters: 100_000) },
    ]

    static func activate(meters: Int) async throws -> [BenchmarkResult] {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hes-bench-config-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let postgres = PrivatePostgres(directory: directory + "/pg", port: 19_434)
        let url = try await postgres.start()
        defer { postgres.stop() }
        try "000102030405060708090A0B0C0D0E0F".write(toFile: directory + "/master.key", atomically: true, encoding: .utf8)
        try "HES_API_TOKEN=bench-token\n".write(toFile: directory + "/settings.env", atomically: true, encoding: .utf8)

        let apiPort = 19_096
        let token = "bench-token"
        var processes: [ChildProcessHandle] = []
        defer { for process in processes.reversed() { process.stop() } }
        processes.append(try await ChildProcessHandle.start(
            "config-service", ["--admin-port", "0", "--api-port", String(apiPort), "--database-url", url, "--master-key-file", directory + "/master.key",
                               "--log-level", "warning", "--max-document-mb", "256", "--config-file", directory + "/settings.env"],
            log: directory + "/config-service.log", ready: "", timeout: .seconds(5)))
        for _ in 0..<200 {
            if (try? runTool("/usr/bin/curl", ["-sf", "-o", "/dev/null", "http://127.0.0.1:\(apiPort)/openapi.yaml"])) != nil { break }
            try await Task.sleep(for: .milliseconds(100))
        }

        var lines: [String] = []
        var entries: [String] = []
        let perLine = 100
        for line in 0..<(meters / perLine) {
            lines.append(#"{"id":"gw\#(line)","region":"bench","endpoint":{"kind":"gateway-udp","host":"10.\#(line / 250).\#(line % 250).1","port":4001}}"#)
            for drop in 0..<perLine {
                entries.append(#"{"id":"M\#(line * perLine + drop)","line":"gw\#(line)","template":"home","hdlcPhysicalAddress":\#(16 + drop),"keys":{"password":"pw\#(line * perLine + drop)"}}"#)
            }
        }
        let document = """
            {"schema":"hes-configuration/v1","regions":[{"id":"bench"}],
             "schedules":[{"id":"daily","cron":"0 2 * * *","timeZone":"Europe/Berlin","windowMinutes":240,"jitterSeconds":3600}],
             "templates":[{"id":"home","schedules":["daily"],"defaults":{"protocol":"dlms-hdlc","clientSAP":17,"authentication":"lls"},
               "objects":[{"classID":3,"obis":"1.0.1.8.0.255","attribute":2}],"profiles":[{"obis":"1.0.99.1.0.255"}]}],
             "lines":[\(lines.joined(separator: ","))],
             "meters":[\(entries.joined(separator: ","))]}
            """
        try document.write(toFile: directory + "/config.json", atomically: true, encoding: .utf8)
        let clock = ContinuousClock()
        let start = clock.now
        let status = try runTool("/usr/bin/curl", [
            "-s", "-o", directory + "/reply.json", "-w", "%{http_code}", "--max-time", "600", "-X", "POST",
            "-H", "Authorization: Bearer \(token)", "-H", "Content-Type: application/json",
            "--data-binary", "@" + directory + "/config.json", "http://127.0.0.1:\(apiPort)/v1/config/versions",
        ])
        let elapsed = clock.now - start
        guard status.trimmingCharacters(in: .whitespacesAndNewlines) == "201" else {
            let reply = (try? String(contentsOfFile: directory + "/reply.json", encoding: .utf8)) ?? ""
            throw BenchmarkFailure("config.activate_100k: the API answered \(status): \(reply.prefix(500))")
        }
        let seconds = FleetBenchmarks.seconds(elapsed)
        return [
            BenchmarkResult(name: "config.activate_100k", value: seconds, unit: "s"),
            BenchmarkResult(name: "config.activate_100k.document_mb", value: Double(document.utf8.count) / 1_048_576, unit: "MiB"),
        ]
    }
}
