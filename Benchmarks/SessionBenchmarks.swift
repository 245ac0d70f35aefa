import COSEM
import DLMSClient
import DLMSCodec
import DLMSLink
import Foundation
import MeterSimulation
import NIOCore
import NIOPosix

/// Complete DLMS sessions through real loopback sockets: connect, AARQ (LLS), clock and two
/// registers (one GET-with-list), a 96-row load-profile range (capture objects + buffer with
/// block transfer), release.
enum SessionBenchmarks {
    static let all: [Benchmark] = [
        Benchmark(name: "session.zero_latency") { try await zeroLatency() },
        ConcurrentSessionBenchmark.benchmark,
    ]

    /// One session as the collector runs it.
    static func readOnce(port: Int, meter: SimulatedMeter, day: Date) async throws -> Int {
        let connection = MeterConnection(endpoint: .tcp(host: "127.0.0.1", port: port), clientSAP: 17,
                                         authentication: .low(password: Array("12345678".utf8)))
        return try await DLMSClient.withAssociation(to: connection) { client in
            let results = try await client.getWithList([
                AttributeWithSelection(ClockValue.descriptor(.clock, .time)),
                AttributeWithSelection(CosemAttributeDescriptor(classID: .register, instance: OBISCode(1, 0, 1, 8, 0, 255), attribute: 2)),
                AttributeWithSelection(CosemAttributeDescriptor(classID: .register, instance: OBISCode(1, 0, 2, 8, 0, 255), attribute: 2)),
            ])
            let profile = try await client.readProfile(OBISCode(1, 0, 99, 1, 0, 255), from: day, to: day.addingTimeInterval(95 * 900))
            return results.count + profile.rows.count
        }
    }

    /// Sessions per second of CPU time (client and simulated meter in this one process, so the
    /// figure is conservative for the client alone), and per second of wall time.
    static func zeroLatency() async throws -> [BenchmarkResult] {
        let meter = SimulatedMeter(configuration: .fleetMember(index: 0))
        let server = try await BenchmarkMeterServer.start(meter: meter)
        defer { server.stop() }
        // A day well inside the simulated buffer (the last 60 days).
        let day = Date(timeIntervalSince1970: ((Date().timeIntervalSince1970 - 3 * 86_400) / 86_400).rounded(.down) * 86_400)
        let rows = try await readOnce(port: server.port, meter: meter, day: day)
        guard rows == 3 + 96 else { throw BenchmarkError("expected 96 profile rows and 3 values, got \(rows - 3) rows") }

        var results = try await measure(port: server.port, meter: meter, day: day, label: "session.zero_latency")
        // The same against meter-sim in its own process: the CPU figure is the client's alone.
        let simulators = try await ConcurrentSessionBenchmark.startSimulators([(20_000, 1)], latency: nil)
        defer { ConcurrentSessionBenchmark.stopSimulators(simulators) }
        results += try await measure(port: 20_000, meter: meter, day: day, label: "session.zero_latency.client_only")
        return results
    }

    static func measure(port: Int, meter: SimulatedMeter, day: Date, label: String) async throws -> [BenchmarkResult] {
        let concurrency = 8
        let duration = Duration.seconds(4)
        let cpuStart = processCPUSeconds()
        let clock = ContinuousClock()
        let start = clock.now
        let sessions = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var count = 0
                    while clock.now - start < duration {
                        _ = try await readOnce(port: port, meter: meter, day: day)
                        count += 1
                    }
                    return count
                }
            }
            return try await group.reduce(0, +)
        }
        let wall = clock.now - start
        let cpu = processCPUSeconds() - cpuStart
        let wallSeconds = Double(wall.components.seconds) + Double(wall.components.attoseconds) / 1e18
        return [
            BenchmarkResult(name: label, value: Double(sessions) / cpu, unit: "sessions/cpu-s"),
            BenchmarkResult(name: label + ".wall", value: Double(sessions) / wallSeconds, unit: "sessions/s"),
        ]
    }

    static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }
}

struct BenchmarkError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A wrapper/TCP listener answering with `COSEMServerSession`, without any added latency.
final class BenchmarkMeterServer: Sendable {
    let port: Int
    private let channel: any Channel

    private init(channel: any Channel) {
        self.channel = channel
        self.port = channel.localAddress!.port!
    }

    static func start(meter: SimulatedMeter) async throws -> BenchmarkMeterServer {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.addHandler(ByteToMessageHandler(WrapperFrameDecoder()))
                    try child.pipeline.syncOperations.addHandler(Handler(meter: meter))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return BenchmarkMeterServer(channel: channel)
    }

    func stop() {
        channel.close(promise: nil)
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = WrapperFrame
        let meter: SimulatedMeter
        var session: COSEMServerSession?

        init(meter: SimulatedMeter) {
            self.meter = meter
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let frame = unwrapInboundIn(data)
            if session == nil { session = COSEMServerSession(meter: meter, clientSAP: frame.source) }
            guard let answer = session!.handle(frame.apdu, now: Date()) else { return }
            context.writeAndFlush(NIOAny(WrapperFrame(source: frame.destination, destination: frame.source, apdu: answer).encoded), promise: nil)
        }
    }
}

/// 10,000 sessions at once against meter-sim answering each request 200 ms late (GPRS-like):
/// the client's peak resident memory while they are all open.
enum ConcurrentSessionBenchmark {
    static let benchmark = Benchmark(name: "session.concurrent_200ms") { try await run(sessions: 10_000) }

    static func run(sessions: Int) async throws -> [BenchmarkResult] {
        // Each simulated meter needs a listening socket and a connection: with the usual hard
        // limit of 20,000 descriptors a process, two simulator processes share the fleet.
        raiseFileLimit()
        let firstPort = 20_000  // below the ephemeral range (32768…), where client sockets would collide
        let half = sessions / 2
        let simulators = try await startSimulators([(firstPort, half), (firstPort + half, sessions - half)], latency: "200ms")
        defer { stopSimulators(simulators) }

        let day = Date(timeIntervalSince1970: ((Date().timeIntervalSince1970 - 3 * 86_400) / 86_400).rounded(.down) * 86_400)
        let meter = SimulatedMeter(configuration: .fleetMember(index: 0))
        let clock = ContinuousClock()
        let begin = clock.now
        let completed = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<sessions {
                group.addTask {
                    do {
                        _ = try await SessionBenchmarks.readOnce(port: firstPort + index, meter: meter, day: day)
                        return true
                    } catch {
                        return false
                    }
                }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        let elapsed = clock.now - begin
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return [
            BenchmarkResult(name: "session.concurrent_200ms.completed", value: Double(completed), unit: "sessions"),
            BenchmarkResult(name: "session.concurrent_200ms.duration", value: seconds, unit: "s"),
            BenchmarkResult(name: "session.concurrent_200ms.peak_rss", value: Double(peakResidentKilobytes()) / 1024, unit: "MiB"),
        ]
    }

    /// Starts `meter-sim` processes (the build next to this one, else the debug build), one per
    /// (first port, meter count), and waits until each one's last port accepts connections.
    static func startSimulators(_ fleets: [(firstPort: Int, count: Int)], latency: String?, arguments: [String] = []) async throws -> [Process] {
        let binDirectory = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        var simulator = binDirectory.appendingPathComponent("meter-sim").path
        if !FileManager.default.isExecutableFile(atPath: simulator) {
            simulator = binDirectory.deletingLastPathComponent().appendingPathComponent("debug/meter-sim").path
        }
        var simulators: [Process] = []
        for fleet in fleets {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: simulator)
            process.arguments = ["--meters", String(fleet.count), "--framing", "wrapper", "--port", String(fleet.firstPort),
                                 "--admin-port", "0", "--log-level", "warning"] + (latency.map { ["--fault-latency", $0] } ?? []) + arguments
            process.standardError = FileHandle.nullDevice
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            simulators.append(process)
        }
        let started = ContinuousClock.now
        for fleet in fleets {
            while !portAccepts(fleet.firstPort + fleet.count - 1) {
                guard ContinuousClock.now - started < .seconds(90), simulators.allSatisfy(\.isRunning) else {
                    stopSimulators(simulators)
                    throw BenchmarkError("meter-sim (\(simulator)) did not start")
                }
                try await Task.sleep(for: .milliseconds(200))
            }
        }
        return simulators
    }

    static func stopSimulators(_ simulators: [Process]) {
        for process in simulators {
            process.terminate()
            process.waitUntilExit()
        }
    }

    static func raiseFileLimit() {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = limit.rlim_max
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }

    static func portAccepts(_ port: Int) -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    /// VmHWM from /proc/self/status.
    static func peakResidentKilobytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "0") ?? 0
        }
        return 0
    }
}
