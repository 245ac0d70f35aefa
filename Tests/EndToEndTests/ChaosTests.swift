import Foundation
import Testing
import TestSupport

/// The short chaos run (`scripts/chaos.py`, every kind of fault once): the whole pipeline as
/// processes in two regions — PostgreSQL, kafka-dev, meter-sim, ims-sim, config-service, two
/// schedulers, two collectors per region, two uploaders — collecting every minute while
/// services are SIGKILLed, the IMS and PostgreSQL go away, a region loses its
/// collectors, a meter falls silent, a configuration is activated and a disconnect's task is
/// redelivered; then DESIGN.md §3 is checked per task and against `meter-sim verify`.
/// The long run is `scripts/chaos.sh --rounds 30` (README). `make test` runs this suite on its
/// own after the others (`swift test --skip ChaosTests`, then `--filter ChaosTests`), so it does not
/// compete with them for the two cores.
@Suite(.serialized, .timeLimit(.minutes(12)))
struct ChaosTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    @Test("every fault once: no reading lost, none stored twice, commands at most once, collection resumed, clean stops")
    func shortChaosRun() async throws {
        let run = try await ChildProcess.run(executable: "/usr/bin/python3", name: "chaos", arguments: [
            Self.root + "/scripts/chaos.py", "--rounds", "10", "--round-seconds", "6", "--seed", "11",
            "--bin", ChildProcess.productsDirectory.path,
        ], timeout: .seconds(660))
        let output = run.stdout + run.stderr
        #expect(run.status == 0, "\(output.suffix(4000))")
        let line = try #require(run.stdout.split(separator: "\n").last { $0.hasPrefix("CHAOS ") }, "\(output.suffix(3000))")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(line.dropFirst(6).utf8)) as? [String: Any])
        #expect(summary["ok"] as? Bool == true, "\(summary["failures"] ?? "")")
        // Every kind ran (the plan takes each kind once when rounds = kinds).
        let kinds = Set((summary["events"] as? [[String: Any]] ?? []).compactMap { $0["kind"] as? String })
        #expect(kinds.count == 10, "\(kinds)")
        #expect(summary["tasks_without_result"] as? Int == 0)
        #expect(summary["tasks_with_readings_missing"] as? Int == 0)
        #expect((summary["succeeded_tasks_with_readings"] as? Int ?? 0) > 100, "collection ran through the chaos")
        let verify = try #require(summary["verify"] as? [String: Any])
        #expect(verify["ok"] as? Bool == true)
        #expect(verify["gaps"] as? Int == 0)
        #expect(verify["duplicates"] as? Int == 0)
        #expect(verify["meters_read"] as? Int == 40, "every healthy meter read in the last slot")
        let outage = summary["results_published_during_ims_outages"] as? [Double] ?? []
        #expect(!outage.isEmpty && outage.allSatisfy { $0 > 0 }, "collection went on while the IMS was down: \(outage)")
        let commands = summary["commands"] as? [[String: Any]] ?? []
        #expect(commands.count == 2)
        for command in commands {
            #expect(command["state"] as? String == "succeeded", "\(command)")
            #expect(command["executed_on_meter"] as? Int == 1, "at most once, and it happened: \(command)")
        }
        #expect((summary["kafka_messages_lost"] as? Double ?? -1) == 0)
    }
}
