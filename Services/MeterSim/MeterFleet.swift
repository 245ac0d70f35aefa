#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import Metrics
import MeterSimulation
import NIOCore
import NIOPosix
import ServiceLifecycle
import ServiceRuntime
import Synchronization

/// One simulated meter as the network shell sees it.
final class MeterEntry: Sendable {
    let index: Int
    let meter: SimulatedMeter
    let host: String
    let port: Int
    let hdlcPhysicalAddress: UInt16
    let faults: Mutex<MeterFaults>

    init(index: Int, meter: SimulatedMeter, host: String, port: Int, hdlcPhysicalAddress: UInt16, faults: MeterFaults) {
        self.index = index
        self.meter = meter
        self.host = host
        self.port = port
        self.hdlcPhysicalAddress = hdlcPhysicalAddress
        self.faults = Mutex(faults)
    }

    var serialNumber: String { meter.configuration.serialNumber }
}

/// Process-wide simulator metrics.
final class MeterSimMetrics: Sendable {
    let sessions = Counter(label: "hes_sim_sessions_total")
    let requests = Counter(label: "hes_sim_requests_total")
    let connectionsGauge = Gauge(label: "hes_sim_connections_open")
    let connections = Atomic<Int>(0)

    func connectionOpened() { connectionsGauge.record(connections.add(1, ordering: .relaxed).newValue) }
    func connectionClosed() { connectionsGauge.record(connections.subtract(1, ordering: .relaxed).newValue) }
}

/// Serves the whole fleet: one listening socket per meter on the shared NIO event loops (no
/// per-meter threads), one `COSEMServerSession` per accepted connection.
final class MeterFleet: Service, Sendable {
    let configuration: MeterSimConfiguration
    let readiness: Readiness
    let logger: Logger
    let metrics = MeterSimMetrics()
    private let openChannels = Mutex<[ObjectIdentifier: any Channel]>([:])
    /// The served meters, once `run()` has created them.
    let entries = Mutex<[MeterEntry]>([])

    init(configuration: MeterSimConfiguration, readiness: Readiness, logger: Logger) {
        self.configuration = configuration
        self.readiness = readiness
        self.logger = logger
        readiness.register("meters", reason: "binding listeners")
    }

    func run() async throws {
        let start = ContinuousClock.now
        raiseFileDescriptorLimit()
        let configuration = self.configuration
        var entries: [MeterEntry] = []
        entries.reserveCapacity(configuration.meterCount)
        for index in 0..<configuration.meterCount {
            let (host, port) = try configuration.endpoint(of: index)
            let faults = configuration.faults
            let seed = configuration.seed
            entries.append(MeterEntry(
                index: index, meter: SimulatedMeter(configuration: configuration.meterConfiguration(of: index)),
                host: host, port: port,
                hdlcPhysicalAddress: UInt16(truncatingIfNeeded: configuration.hdlcPhysicalBase + index) & 0x3FFF,
                faults: MeterFaults(silent: faults.applies(.silent, toMeter: index, seed: seed),
                                    garbage: faults.applies(.garbage, toMeter: index, seed: seed),
                                    drop: faults.applies(.drop, toMeter: index, seed: seed),
                                    reset: faults.applies(.reset, toMeter: index, seed: seed))))
        }

        self.entries.withLock { $0 = entries }
        let group = MultiThreadedEventLoopGroup.singleton
        var listeners: [any Channel] = []
        listeners.reserveCapacity(entries.count)
        do {
            // Binds are issued in batches so thousands of sockets open in parallel.
            for batch in stride(from: 0, to: entries.count, by: 512) {
                let futures = entries[batch..<min(batch + 512, entries.count)].map { bind($0, group: group) }
                for future in futures { listeners.append(try await future.get()) }
            }
        } catch {
            for listener in listeners { listener.close(promise: nil) }
            throw error
        }

        let elapsed = ContinuousClock.now - start
        let first = entries.first.map { "\($0.host):\($0.port)" } ?? "-"
        let last = entries.last.map { "\($0.host):\($0.port)" } ?? "-"
        logger.info("meter-sim ready: \(entries.count) meter(s) (\(configuration.framing.rawValue)) on \(first) … \(last) in \(elapsed)")
        readiness.markReady("meters")

        let bound = listeners
        await withGracefulShutdownHandler {
            for listener in bound { try? await listener.closeFuture.get() }
        } onGracefulShutdown: { [self] in
            logger.info("meter-sim stopping: closing listeners and connections")
            for listener in bound { listener.close(promise: nil) }
            for channel in openChannels.withLock({ Array($0.values) }) { channel.close(promise: nil) }
        }
    }

    private func bind(_ entry: MeterEntry, group: any EventLoopGroup) -> EventLoopFuture<any Channel> {
        let framing = configuration.framing
        let faults = configuration.faults
        let metrics = self.metrics
        var logger = self.logger
        logger[metadataKey: "meter.id"] = "\(entry.serialNumber)"
        return ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 64)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 512, maximum: 65_536))
            .childChannelInitializer { channel in
                let id = ObjectIdentifier(channel)
                self.openChannels.withLock { $0[id] = channel }
                channel.closeFuture.whenComplete { _ in _ = self.openChannels.withLock { $0.removeValue(forKey: id) } }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        MeterConnectionHandler(entry: entry, framing: framing, latency: faults.latency, jitter: faults.jitter,
                                               metrics: metrics, logger: logger))
                }
            }
            .bind(host: entry.host, port: entry.port)
            .flatMapErrorThrowing { error in
                throw MeterSimError("meter \(entry.serialNumber): cannot listen on \(entry.host):\(entry.port): \(error)")
            }
    }

    /// Raises the soft open-file limit to the hard limit: each meter holds a listening socket.
    private func raiseFileDescriptorLimit() {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
        let needed = rlim_t(configuration.meterCount + 256)
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        if limit.rlim_cur < needed {
            logger.warning("open-file limit \(limit.rlim_cur) is below what \(configuration.meterCount) meters need (\(needed))")
        }
    }
}
