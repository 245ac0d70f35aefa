import Foundation
import Testing
import TestSupport

/// compose/ as users run it, checked with Debian's docker-compose (no engine needed).
@Suite struct ComposeTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    @Test("docker-compose accepts the stack: every service, two schedulers, the sample configuration, the master key, the region's topics")
    func stackIsValid() async throws {
        let run = try await ChildProcess.run(executable: "/usr/bin/docker-compose", name: "docker-compose",
                                             arguments: ["-f", Self.root + "/compose/docker-compose.yml", "config"], timeout: .seconds(60))
        #expect(run.status == 0, "\(run.stderr)")
        let services = run.stdout.split(separator: "\n").filter { $0.hasPrefix("  ") && !$0.hasPrefix("   ") && $0.hasSuffix(":") }
            .map { $0.trimmingCharacters(in: .whitespaces).dropLast() }.map(String.init)
        for service in ["postgres", "kafka", "kafka-topics", "config-service", "scheduler", "scheduler-standby", "collector-west", "uploader",
                        "ims-sim", "meter-sim", "apply-config"] {
            #expect(services.contains(service), "service \(service) in \(services)")
        }
        #expect(run.stdout.contains("hes.tasks.west hes.tasks.west.priority"))
        #expect(run.stdout.contains("master_key"))
        #expect(run.stdout.contains("hesctl config apply"))
    }
}
