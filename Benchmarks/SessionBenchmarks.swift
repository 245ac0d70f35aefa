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
                        _ = try await readOnce(port: server.port, meter: meter, day: day)
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
            BenchmarkResult(name: "session.zero_latency", value: Double(sessions) / cpu, unit: "sessions/cpu-s"),
            BenchmarkResult(name: "session.zero_latency.wall", value: Double(sessions) / wallSeconds, unit: "sessions/s"),
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
