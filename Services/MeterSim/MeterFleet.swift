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
import Observability
import ServiceLifecycle
import ServiceRuntime
import Synchronization

/// One simulated meter as the network shell sees it.
final class MeterEntry: Sendable {
    let index: Int
    let meter: SimulatedMeter
    let transport: MeterSimConfiguration.Transport
    let framing: MeterSimConfiguration.Framing
    let quirk: MeterQuirk
    /// TCP/UDP: the meter's own address; gateway: the gateway's; serial: empty.
    let host: String
    let port: Int
    let hdlcPhysicalAddress: UInt16
    /// Serial lines and gateways: the line's name (`line-0`, `gateway-1`).
    let line: String?
    let faults: Mutex<MeterFaults>
    /// Round trip of every exchange (IP meters; see `FaultConfiguration.latency`). Default: 0.
    let latency: Duration
    /// Random extra delay, up to this (IP meters). Default: 0.
    let jitter: Duration
    /// Serial: the line's device path, once the line exists.
    let devicePath = Mutex<String?>(nil)

    init(index: Int, meter: SimulatedMeter, group: MeterSimConfiguration.Group, host: String, port: Int,
         hdlcPhysicalAddress: UInt16, line: String?, faults: MeterFaults) {
        self.index = index
        self.meter = meter
        self.transport = group.transport
        self.framing = group.framing
        self.quirk = group.quirk
        self.host = host
        self.port = port
        self.hdlcPhysicalAddress = hdlcPhysicalAddress
        self.line = line
        self.faults = Mutex(faults)
        self.latency = group.faults.latency
        self.jitter = group.faults.jitter
    }

    var serialNumber: String { meter.configuration.serialNumber }

    /// Where a client finds the meter: `host:port` or the serial line's device.
    var address: String {
        switch transport {
        case .tcp, .udp, .gatewayUDP: "\(host):\(port)"
        case .serial: devicePath.withLock { $0 } ?? (line ?? "")
        }
    }
}

/// Process-wide simulator metrics.
final class MeterSimMetrics: Sendable {
    let sessions = Counter(label: "hes_sim_sessions_total")
    let requests = Counter(label: "hes_sim_requests_total")
    let contentions = Counter(label: "hes_sim_bus_contentions_total")
    let connectionsGauge = Gauge(label: "hes_sim_connections_open")
    let connections = Atomic<Int>(0)

    func connectionOpened() { connectionsGauge.record(connections.add(1, ordering: .relaxed).newValue) }
    func connectionClosed() { connectionsGauge.record(connections.subtract(1, ordering: .relaxed).newValue) }
}

/// Serves the whole fleet on the shared NIO event loops (no per-meter threads): a listening
/// TCP socket or a UDP socket per IP meter, a UDP socket per serial gateway, and a thread per
/// serial line.
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

    /// The meters of every group, numbered across the fleet, and the lines they form.
    func makeEntries() throws -> (entries: [MeterEntry], lines: [(name: String, group: MeterSimConfiguration.Group, line: Int, entries: [MeterEntry])]) {
        var entries: [MeterEntry] = []
        entries.reserveCapacity(configuration.meterCount)
        var lines: [(String, MeterSimConfiguration.Group, Int, [MeterEntry])] = []
        var lineNumber = 0, gatewayNumber = 0
        for group in configuration.groups {
            let seed = configuration.seed
            var lineEntries: [MeterEntry] = []
            for position in 0..<group.count {
                let index = entries.count
                let meter = SimulatedMeter(configuration: configuration.meterConfiguration(of: index, in: group))
                let faults = MeterFaults(group.faults, meter: index, seed: seed)
                let entry: MeterEntry
                switch group.transport {
                case .tcp, .udp:
                    let (host, port) = try group.endpoint(of: position)
                    entry = MeterEntry(index: index, meter: meter, group: group, host: host, port: port,
                                       hdlcPhysicalAddress: group.physicalAddress(position: position), line: nil, faults: faults)
                case .gatewayUDP, .serial:
                    let line = position / group.metersPerLine
                    let name = group.transport == .serial ? "line-\(lineNumber + line)" : "gateway-\(gatewayNumber + line)"
                    let (host, port) = group.transport == .gatewayUDP ? try group.endpoint(of: line) : ("", 0)
                    entry = MeterEntry(index: index, meter: meter, group: group, host: host, port: port,
                                       hdlcPhysicalAddress: group.physicalAddress(position: position % group.metersPerLine), line: name, faults: faults)
                    lineEntries.append(entry)
                    if lineEntries.count == group.metersPerLine || position == group.count - 1 {
                        lines.append((name, group, line, lineEntries))
                        lineEntries = []
                    }
                }
                entries.append(entry)
            }
            if group.transport == .serial { lineNumber += group.lineCount }
            if group.transport == .gatewayUDP { gatewayNumber += group.lineCount }
        }
        return (entries, lines)
    }

    func run() async throws {
        let start = ContinuousClock.now
        raiseFileDescriptorLimit()
        let (entries, lines) = try makeEntries()
        self.entries.withLock { $0 = entries }
        let group = MultiThreadedEventLoopGroup.singleton
        var channels: [any Channel] = []
        var serialLines: [SerialLine] = []
        channels.reserveCapacity(entries.count)
        do {
            // Binds are issued in batches so thousands of sockets open in parallel.
            let ipMeters = entries.filter { $0.transport == .tcp || $0.transport == .udp }
            for batch in stride(from: 0, to: ipMeters.count, by: 512) {
                let futures = ipMeters[batch..<min(batch + 512, ipMeters.count)].map { bind($0, group: group) }
                for future in futures { channels.append(try await future.get()) }
            }
            for line in lines {
                let bus = try MeterBus(name: line.name, entries: line.entries, framing: line.group.framing, baudRate: line.group.baudRate,
                                       hdlcInactivityTimeout: configuration.hdlcInactivityTimeout)
                switch line.group.transport {
                case .gatewayUDP:
                    channels.append(try await bindGateway(bus, host: line.entries[0].host, port: line.entries[0].port, group: group))
                default:
                    let serial = if let device = line.group.serialDevice {
                        try SerialLine(device: device, bus: bus, paces: configuration.pacesSerialLines, contentions: metrics.contentions, logger: logger)
                    } else {
                        try SerialLine(pseudoTerminalFor: bus, linkPath: line.group.linkPath(line: line.line), paces: configuration.pacesSerialLines,
                                       contentions: metrics.contentions, logger: logger)
                    }
                    for entry in line.entries { entry.devicePath.withLock { $0 = serial.devicePath } }
                    serialLines.append(serial)
                    serial.start()
                }
            }
        } catch {
            for channel in channels { channel.close(promise: nil) }
            for line in serialLines { line.stop() }
            throw error
        }

        let elapsed = ContinuousClock.now - start
        let first = entries.first.map(\.address) ?? "-"
        let last = entries.last.map(\.address) ?? "-"
        let kinds = Set(configuration.groups.map { "\($0.transport.rawValue)/\($0.framing.rawValue)" }).sorted().joined(separator: ", ")
        var message = "meter-sim ready: \(entries.count) meter(s) (\(kinds)) on \(first) … \(last) in \(elapsed)"
        for line in serialLines {
            message += "; \(line.name): \(line.linkPath.map { "\($0) → " } ?? "")\(line.devicePath)"
        }
        logger.info("\(message)")
        readiness.markReady("meters")

        let bound = channels
        await withGracefulShutdownHandler {
            for channel in bound { try? await channel.closeFuture.get() }
            if bound.isEmpty { try? await gracefulShutdown() }
        } onGracefulShutdown: { [self] in
            logger.info("meter-sim stopping: closing listeners and connections")
            for channel in bound { channel.close(promise: nil) }
            for channel in openChannels.withLock({ Array($0.values) }) { channel.close(promise: nil) }
        }
        for line in serialLines { line.stop() }
    }

    private func bind(_ entry: MeterEntry, group: any EventLoopGroup) -> EventLoopFuture<any Channel> {
        let inactivity = configuration.hdlcInactivityTimeout
        let metrics = self.metrics
        let logger = { var logger = self.logger; logger[metadataKey: LogMetadataKey.meterID] = "\(entry.serialNumber)"; return logger }()
        if entry.transport == .udp {
            return DatagramBootstrap(group: group)
                .channelOption(.socketOption(.so_reuseaddr), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            WrapperDatagramHandler(entry: entry, latency: entry.latency, jitter: entry.jitter, metrics: metrics, logger: logger))
                    }
                }
                .bind(host: entry.host, port: entry.port)
                .flatMapErrorThrowing { error in
                    throw MeterSimError("meter \(entry.serialNumber): cannot bind UDP \(entry.host):\(entry.port): \(error)")
                }
        }
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
                        MeterConnectionHandler(entry: entry, latency: entry.latency, jitter: entry.jitter,
                                               inactivityTimeout: inactivity, metrics: metrics, logger: logger))
                }
            }
            .bind(host: entry.host, port: entry.port)
            .flatMapErrorThrowing { error in
                throw MeterSimError("meter \(entry.serialNumber): cannot listen on \(entry.host):\(entry.port): \(error)")
            }
    }

    private func bindGateway(_ bus: MeterBus, host: String, port: Int, group: any EventLoopGroup) async throws -> any Channel {
        let metrics = self.metrics
        let logger = { var logger = self.logger; logger[metadataKey: LogMetadataKey.lineID] = "\(bus.name)"; return logger }()
        do {
            return try await DatagramBootstrap(group: group)
                .channelOption(.socketOption(.so_reuseaddr), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(GatewayDatagramHandler(bus: bus, metrics: metrics, logger: logger))
                    }
                }
                .bind(host: host, port: port).get()
        } catch {
            throw MeterSimError("\(bus.name): cannot bind UDP \(host):\(port): \(error)")
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
