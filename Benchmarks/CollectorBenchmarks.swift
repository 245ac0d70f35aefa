import COSEM
import Contracts
import DLMSSecurity
import Foundation
import Logging
import Messaging

/// The collector in the pipeline at fleet size: kafka-dev, one meter-sim with 10,000 meters
/// answering 200 ms late (GPRS-like) and one collector allowed 1,000 sessions at once, all as
/// processes. Each meter gets the daily job (clock and four registers in GET-with-list, a
/// 96-row profile day), published as tasks; the figure is the wall time until every result is
/// on `hes.results`, against the ideal `sessions × round trips per session × 0.2 s ÷ concurrency`
/// (round trips measured on one session of the same job first).
enum CollectorBenchmarks {
    static let all: [Benchmark] = [
        Benchmark(name: "collector.fleet10k_200ms") { try await fleet(meters: 10_000, concurrency: 1_000) },
    ]

    static func fleet(meters: Int, concurrency: Int) async throws -> [BenchmarkResult] {
        ConcurrentSessionBenchmark.raiseFileLimit()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hes-bench-collector-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let region = "bench"
        let kafkaPort = 19_092, firstMeterPort = 20_000
        let masterKeyHex = "000102030405060708090A0B0C0D0E0F"
        try masterKeyHex.write(toFile: directory + "/master.key", atomically: true, encoding: .utf8)
        let master = try MasterKey(id: "default", hex: masterKeyHex)
        let wrapped = try WrappedDLMSSecret(wrapping: DLMSSecret(text: "12345678"), with: master)
        let password = WrappedSecret(masterKeyID: wrapped.masterKeyID, wrapped: Hex.encode(wrapped.wrapped))

        var processes: [ChildProcessHandle] = []
        defer { for process in processes.reversed() { process.stop() } }
        processes.append(try await ChildProcessHandle.start(
            "kafka-dev", ["--port", String(kafkaPort), "--regions", region, "--partitions", "12", "--admin-port", "0",
                          "--bootstrap-file", directory + "/bootstrap"], log: directory + "/kafka-dev.log", ready: "kafka-dev bootstrap"))
        processes.append(try await ChildProcessHandle.start(
            "meter-sim", ["--meters", String(meters), "--framing", "wrapper", "--port", String(firstMeterPort), "--admin-port", "0",
                          "--fault-latency", "200ms"], log: directory + "/meter-sim.log", ready: "meter-sim ready", timeout: .seconds(180)))
        let collector = try await ChildProcessHandle.start(
            "collector", ["--region", region, "--admin-port", "0", "--max-concurrent-lines", String(concurrency), "--log-level", "warning",
                          "--kafka-brokers", "127.0.0.1:\(kafkaPort)", "--master-key-file", directory + "/master.key", "--step-timeout", "30s"],
            log: directory + "/collector.log", ready: "", timeout: .seconds(5))
        processes.append(collector)

        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let brokers = "127.0.0.1:\(kafkaPort)"
        var consumerConfiguration = KafkaConsumerConfiguration(bootstrapServers: brokers, groupID: "bench-results", topics: [KafkaTopics.results])
        consumerConfiguration.offsetReset = .earliest
        let consumer = try KafkaConsumer(configuration: consumerConfiguration, logger: logger)
        let consuming = Task { try await consumer.run() }
        defer { consuming.cancel() }
        let results = ResultCounter()
        let reading = Task {
            for try await message in consumer.messages {
                if let result = try? ContractCoder.decode(TaskResult.self, from: message.value) { results.add(result) }
                consumer.markFinished(message)
            }
        }
        defer { reading.cancel() }
        var producerConfiguration = KafkaProducerConfiguration(bootstrapServers: brokers)
        producerConfiguration.clientID = "bench"
        let producer = try KafkaProducer(configuration: producerConfiguration, logger: logger)

        let day = Date(timeIntervalSince1970: ((Date().timeIntervalSince1970 - 3 * 86_400) / 86_400).rounded(.down) * 86_400)
        func task(_ id: String, meter index: Int) -> CollectionTask {
            let now = Date()
            return CollectionTask(
                taskID: id, origin: .schedule, region: region, lineID: "tcp-\(index)", meterID: String(format: "SIM%08d", index + 1),
                meter: MeterAccess(endpoint: .tcp(host: "127.0.0.1", port: firstMeterPort + index), protocol: .dlmsWrapper, clientSAP: 17,
                                   authentication: .lls, keys: .init(password: password)),
                configVersion: 1, createdAt: now, deadline: now.addingTimeInterval(600),
                actions: [
                    .readObjects(["1.0.1.8.0.255", "1.0.1.8.1.255", "1.0.1.8.2.255", "1.0.2.8.0.255"].map { ObjectReference(classID: 3, obis: $0, attribute: 2) }
                        + [ObjectReference(classID: 8, obis: "0.0.1.0.0.255", attribute: 2)]),
                    .readProfile(profile: ObjectReference(classID: 7, obis: "1.0.99.1.0.255", attribute: 2), from: day, to: day.addingTimeInterval(95 * 900)),
                ])
        }

        // One session alone: its round trips at 200 ms each.
        let calibration = task("calibrate", meter: 0)
        _ = try await producer.send(topic: KafkaTopics.tasks(region: region), key: calibration.lineID, value: try ContractCoder.encode(calibration))
        let calibrated = try await results.wait(for: 1, timeout: .seconds(120))
        guard let single = calibrated.first, single.outcome == .succeeded else {
            throw BenchmarkError("the calibration session failed: \(String(describing: calibrated.first)); collector log: \(collector.logTail())")
        }
        let sessionSeconds = single.finishedAt.timeIntervalSince(single.startedAt)
        let roundTrips = max(1, (sessionSeconds / 0.2).rounded())

        let cpuBefore = collector.cpuSeconds()
        let clock = ContinuousClock()
        let start = clock.now
        // Published as a scheduler would: many sends in flight, not one acknowledgement at a time.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<meters {
                if index >= 500 { try await group.next() }
                let job = task("daily/\(index)", meter: index)
                let payload = try ContractCoder.encode(job)
                group.addTask {
                    _ = try await producer.send(topic: KafkaTopics.tasks(region: region), key: job.lineID, value: payload)
                }
            }
            try await group.waitForAll()
        }
        let published = clock.now - start
        let finished = try await results.wait(for: meters + 1, timeout: .seconds(900))
        let wall = FleetBenchmarks.seconds(clock.now - start)
        let cpu = collector.cpuSeconds() - cpuBefore
        let succeeded = finished.filter { $0.outcome == .succeeded }.count - 1
        await producer.close()
        let ideal = Double(meters) * roundTrips * 0.2 / Double(concurrency)
        return [
            BenchmarkResult(name: "collector.fleet10k_200ms", value: wall / ideal, unit: "ratio"),
            BenchmarkResult(name: "collector.fleet10k_200ms.wall_seconds", value: wall, unit: "s"),
            BenchmarkResult(name: "collector.fleet10k_200ms.ideal_seconds", value: ideal, unit: "s"),
            BenchmarkResult(name: "collector.fleet10k_200ms.round_trips_per_session", value: roundTrips, unit: "round-trips"),
            BenchmarkResult(name: "collector.fleet10k_200ms.publish_seconds", value: FleetBenchmarks.seconds(published), unit: "s"),
            BenchmarkResult(name: "collector.fleet10k_200ms.succeeded", value: Double(succeeded), unit: "sessions"),
            BenchmarkResult(name: "collector.fleet10k_200ms.rss_mb", value: Double(FleetBenchmarks.residentKilobytes(of: collector.pid, field: "VmHWM:")) / 1024, unit: "MiB"),
            BenchmarkResult(name: "collector.fleet10k_200ms.cpu_ms_per_session", value: cpu * 1000 / Double(meters), unit: "ms"),
        ]
    }
}

/// The results seen so far, first per task id.
final class ResultCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [String: TaskResult] = [:]

    func add(_ result: TaskResult) {
        lock.lock(); defer { lock.unlock() }
        if results[result.taskID] == nil { results[result.taskID] = result }
    }

    func wait(for count: Int, timeout: Duration) async throws -> [TaskResult] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let snapshot = { self.lock.lock(); defer { self.lock.unlock() }; return Array(self.results.values) }()
            if snapshot.count >= count { return snapshot }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw BenchmarkError("only some of \(count) results arrived within \(timeout)")
    }
}

/// An executable of this build run as a child process, its output in a log file.
struct ChildProcessHandle {
    let process: Process
    let log: String
    var pid: Int32 { process.processIdentifier }

    static func start(_ product: String, _ arguments: [String], log: String, ready: String, timeout: Duration = .seconds(60)) async throws -> ChildProcessHandle {
        let binDirectory = URL(fileURLWithPath: try FleetBenchmarks.simulatorPath()).deletingLastPathComponent()
        FileManager.default.createFile(atPath: log, contents: nil)
        let process = Process()
        process.executableURL = binDirectory.appendingPathComponent(product)
        process.arguments = arguments
        FileManager.default.createFile(atPath: log + ".out", contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: log + ".out"))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        try process.run()
        let handle = ChildProcessHandle(process: process, log: log)
        let started = ContinuousClock.now
        while !ready.isEmpty {
            let text = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "") + ((try? String(contentsOfFile: log + ".out", encoding: .utf8)) ?? "")
            if text.contains(ready) { break }
            guard process.isRunning, ContinuousClock.now - started < timeout else {
                handle.stop()
                throw BenchmarkError("\(product) did not start: \(text.suffix(2000))")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        if ready.isEmpty { try await Task.sleep(for: timeout) }
        return handle
    }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    func logTail() -> String { String(((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").suffix(3000)) }

    /// User and system CPU seconds of the process so far (/proc/<pid>/stat, clock ticks of 1/100 s).
    func cpuSeconds() -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the name: state is field 3; utime and stime are fields 14 and 15.
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / 100
    }
}
