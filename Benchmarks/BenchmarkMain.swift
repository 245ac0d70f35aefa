import Foundation

/// A named benchmark: runs its workload and reports one or more figures.
struct Benchmark: Sendable {
    let name: String
    let run: @Sendable () async throws -> [BenchmarkResult]
}

/// One figure, printed as `BENCH <name> <value> <unit>`.
struct BenchmarkResult: Sendable {
    let name: String
    let value: Double
    let unit: String
}

/// `hes-bench [NAME…]`: runs every benchmark whose name starts with one of the given names (all
/// when none is given) and prints `BENCH <name> <value> <unit>` lines that `make bench` collects.
@main
enum BenchmarkMain {
    static let all: [Benchmark] = CodecBenchmarks.all + LinkBenchmarks.all + SessionBenchmarks.all + SecurityBenchmarks.all + FleetBenchmarks.all + CollectorBenchmarks.all + SchedulerBenchmarks.all + UploaderBenchmarks.all + ConfigBenchmarks.all + EndToEndBenchmarks.all

    static func main() async throws {
        let filters = Array(CommandLine.arguments.dropFirst()).filter { !$0.isEmpty }
        if filters.contains("--list") {
            for benchmark in all { print(benchmark.name) }
            return
        }
        let selected = all.filter { benchmark in filters.isEmpty || filters.contains { benchmark.name.hasPrefix($0) } }
        if selected.isEmpty {
            FileHandle.standardError.write(Data("no benchmark matches \(filters); known: \(all.map(\.name).joined(separator: ", "))\n".utf8))
            exit(2)
        }
        for benchmark in selected {
            for result in try await benchmark.run() {
                print("BENCH \(result.name) \(format(result.value)) \(result.unit)")
            }
        }
    }

    private static func format(_ value: Double) -> String {
        value >= 100 ? String(Int(value.rounded())) : String(format: "%.3f", value)
    }
}

/// Runs `body` repeatedly for about `duration` after a warm-up and returns operations per second.
/// `body` returns a value that is folded into a checksum so the optimizer cannot drop the work.
func operationsPerSecond(duration: Duration = .seconds(2), batch: Int = 1000, _ body: () throws -> Int) rethrows -> Double {
    var checksum = 0
    for _ in 0..<batch { checksum &+= try body() }
    let clock = ContinuousClock()
    let start = clock.now
    var operations = 0
    while clock.now - start < duration {
        for _ in 0..<batch { checksum &+= try body() }
        operations += batch
    }
    let elapsed = clock.now - start
    blackHole(checksum)
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    return Double(operations) / seconds
}

@inline(never)
func blackHole<T>(_ value: T) { withExtendedLifetime(value) {} }
