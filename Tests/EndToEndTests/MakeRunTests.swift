import Foundation
import Testing
import TestSupport

/// `make run`'s script with a small fleet: the whole pipeline as processes (PostgreSQL,
/// kafka-dev, meter-sim, ims-sim, config-service, scheduler, collector, uploader), one
/// collection cycle from the scheduler's slot to the IMS, checked by `meter-sim verify`.
@Suite(.serialized, .timeLimit(.minutes(6)))
struct MakeRunTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    @Test("one cycle: every healthy meter's profile values at the IMS, broken meters failed by reason, commands succeeded, SUMMARY ok")
    func oneCycle() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hes-make-run-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try """
            {"seed": 0, "password": "12345678", "groups": [
              {"count": 16, "transport": "tcp", "framing": "wrapper", "port": 26000, "access": "lls"},
              {"count": 4, "transport": "tcp", "framing": "wrapper", "port": 26500, "access": "hls-gmac"},
              {"count": 10, "transport": "tcp", "framing": "hdlc", "port": 26100, "access": "lls"},
              {"count": 8, "transport": "gateway-udp", "framing": "hdlc", "metersPerLine": 4, "port": 26200, "access": "lls"},
              {"count": 2, "transport": "tcp", "framing": "wrapper", "port": 26300, "faults": {"silent": 1.0}, "access": "lls"},
              {"count": 2, "transport": "tcp", "framing": "wrapper", "port": 26400, "faults": {"garbage": 1.0}, "access": "lls"}
            ]}
            """.write(toFile: directory + "/fleet.json", atomically: true, encoding: .utf8)
        let run = try await ChildProcess.run(executable: "/bin/bash", name: "run-local", arguments: [Self.root + "/scripts/run-local.sh"], environment: [
            "HES_RUN_FLEET": directory + "/fleet.json", "HES_RUN_DIR": directory + "/run",
            "HES_STEP_TIMEOUT": "3s", "HES_SESSION_ATTEMPTS": "2", "HES_RUN_CYCLE_TIMEOUT": "180",
        ], timeout: .seconds(330))
        let output = run.stdout + run.stderr
        #expect(run.status == 0, "\(output.suffix(3000))")
        let line = try #require(output.split(separator: "\n").last { $0.hasPrefix("SUMMARY ") }, "\(output.suffix(2000))")
        #expect(run.stdout.split(separator: "\n").last?.hasPrefix("SUMMARY ") == true, "SUMMARY is the last line")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(line.dropFirst(8).utf8)) as? [String: Any])
        #expect(summary["ok"] as? Bool == true)
        #expect(summary["meters_expected"] as? Int == 42)
        #expect(summary["meters_read"] as? Int == 38)
        #expect(summary["meters_failed"] as? Int == 4)
        #expect((summary["meters_failed_by_reason"] as? [String: Int]) == ["meter.timeout": 2, "meter.link-failed": 2])
        let expected = summary["readings_expected"] as? Int ?? 0
        #expect(expected >= 38 * 96 * 3)
        #expect(summary["readings_confirmed"] as? Int == expected)
        #expect(summary["duplicates"] as? Int == 0)
        #expect(summary["gaps"] as? Int == 0)

        // The operators' view from hesctl, taken while the stack ran.
        let operators = try String(contentsOfFile: directory + "/run/operators.txt", encoding: .utf8)
        let region = try #require(operators.split(separator: "\n").first { $0.hasPrefix("local ") }, "\(operators)")
        #expect(region.split(separator: " ").prefix(3).map(String.init) == ["local", "36", "42"], "\(region)")
        #expect(operators.contains("kafka lag") && Int(region.split(separator: " ").last ?? "") != nil, "the collectors' lag from Kafka: \(operators)")
        #expect(operators.contains("meter SIM00000001: region local"), "\(operators)")
        #expect(operators.contains("IMS holds 1.0.99.1.0.255 up to"), "\(operators)")

        // The status page, rendered by headless Chromium during the run, shows the run's numbers.
        let dom = try String(contentsOfFile: directory + "/run/status-dom.html", encoding: .utf8)
        func shown(_ id: String) -> String? {
            guard let range = dom.range(of: "id=\"\(id)\"") else { return nil }
            let rest = dom[range.upperBound...]
            guard let open = rest.firstIndex(of: ">"), let close = rest[open...].firstIndex(of: "<") else { return nil }
            return String(rest[rest.index(after: open)..<close])
        }
        #expect(shown("tasks-succeeded") == "38", "\(dom.prefix(3000))")
        #expect(shown("tasks-failed") == "4")
        #expect(shown("config-version") == "1")
        #expect(Int(shown("readings-confirmed") ?? "") ?? 0 >= expected)
        #expect(dom.contains("meter.timeout") && dom.contains("meter.link-failed"), "failures by reason")
        let screenshot = try FileManager.default.attributesOfItem(atPath: directory + "/run/status.png")
        #expect((screenshot[.size] as? Int ?? 0) > 10_000, "a real screenshot")
    }
}
