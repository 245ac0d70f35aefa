import Foundation
import MeterSimulation

/// The simulator at the size the issue asks for: ONE meter-sim process with 10,000 meters,
/// its start-up time, and its resident memory while every meter is read. Each response is
/// 200 ms late (GPRS-like), so the sessions really are open at the same time.
enum FleetBenchmarks {
    static let all: [Benchmark] = [
        Benchmark(name: "sim.fleet_10k") { try await fleet(meters: 10_000) },
    ]

    /// Sessions open at once: meter-sim holds 10,000 listening sockets, and the container's
    /// hard limit is 20,000 descriptors a process, so the accepted connections must stay below
    /// the rest.
    static let concurrency = 8_000

    static func fleet(meters: Int) async throws -> [BenchmarkResult] {
        ConcurrentSessionBenchmark.raiseFileLimit()
        let firstPort = 20_000  // below the ephemeral range (32768…), where client sockets would collide
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("hes-bench-fleet-\(UUID().uuidString.prefix(8)).log").path
        defer { try? FileManager.default.removeItem(atPath: log); try? FileManager.default.removeItem(atPath: log + ".out") }

        let clock = ContinuousClock()
        let launched = clock.now
        // Started: the ready line is logged once every listener is bound.
        let simulator = try await ChildProcessHandle.start(
            "meter-sim", ["--meters", String(meters), "--framing", "wrapper", "--port", String(firstPort), "--admin-port", "0",
                          "--fault-latency", "200ms"], log: log, ready: "meter-sim ready", timeout: .seconds(120))
        defer { simulator.stop() }
        let started = clock.now - launched
        guard ConcurrentSessionBenchmark.portAccepts(firstPort + meters - 1) else { throw BenchmarkError("the last meter does not accept connections") }
        let idleRSS = residentKilobytes(of: simulator.pid, field: "VmRSS:")

        // Read every meter (clock, two registers, a 96-row profile day), `concurrency` at a time,
        // sampling the simulator's resident set meanwhile.
        let day = Date(timeIntervalSince1970: ((Date().timeIntervalSince1970 - 3 * 86_400) / 86_400).rounded(.down) * 86_400)
        let meter = SimulatedMeter(configuration: .fleetMember(index: 0))
        let sampler = Task {
            var peak = 0
            while !Task.isCancelled {
                peak = max(peak, residentKilobytes(of: simulator.pid, field: "VmRSS:"))
                try? await Task.sleep(for: .milliseconds(50))
            }
            return peak
        }
        let readStart = clock.now
        let completed = try await withThrowingTaskGroup(of: Bool.self) { group in
            var next = 0
            var succeeded = 0
            func add() {
                let port = firstPort + next
                next += 1
                group.addTask {
                    do {
                        _ = try await SessionBenchmarks.readOnce(port: port, meter: meter, day: day)
                        return true
                    } catch {
                        return false
                    }
                }
            }
            while next < min(concurrency, meters) { add() }
            while let result = try await group.next() {
                if result { succeeded += 1 }
                if next < meters { add() }
            }
            return succeeded
        }
        let readDuration = clock.now - readStart
        sampler.cancel()
        let sampledPeak = await sampler.value
        let highWater = residentKilobytes(of: simulator.pid, field: "VmHWM:")
        return [
            BenchmarkResult(name: "sim.fleet_10k.start_seconds", value: seconds(started), unit: "s"),
            BenchmarkResult(name: "sim.fleet_10k.idle_rss_mib", value: Double(idleRSS) / 1024, unit: "MiB"),
            BenchmarkResult(name: "sim.fleet_10k.peak_rss_mib", value: Double(max(highWater, sampledPeak)) / 1024, unit: "MiB"),
            BenchmarkResult(name: "sim.fleet_10k.read_completed", value: Double(completed), unit: "sessions"),
            BenchmarkResult(name: "sim.fleet_10k.read_seconds", value: seconds(readDuration), unit: "s"),
        ]
    }

    /// meter-sim next to this build, else the debug build.
    static func simulatorPath() throws -> String {
        let binDirectory = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        for candidate in [binDirectory.appendingPathComponent("meter-sim"),
                          binDirectory.deletingLastPathComponent().appendingPathComponent("debug/meter-sim")]
        where FileManager.default.isExecutableFile(atPath: candidate.path) {
            return candidate.path
        }
        throw BenchmarkError("no meter-sim next to \(binDirectory.path): build it first")
    }

    /// A `kB` field (`VmRSS:`, `VmHWM:`) of /proc/<pid>/status.
    static func residentKilobytes(of pid: Int32, field: String) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix(field) {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "0") ?? 0
        }
        return 0
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
