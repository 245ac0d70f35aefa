import NIOCore
import NIOPosix

/// Where a meter (or a line of meters) is reached.
public enum TransportEndpoint: Hashable, Sendable, CustomStringConvertible {
    /// An IP meter over TCP (Ethernet, GPRS/LTE modem in server mode).
    case tcp(host: String, port: Int)
    /// An IP meter over UDP: each datagram carries one wrapper frame.
    case udp(host: String, port: Int)
    /// A serial server (e.g. MOXA) in UDP mode: datagrams carry the raw serial bytes of the
    /// line behind it, so HDLC or IEC 62056-21 framing runs over them as over a serial port.
    case gatewayUDP(host: String, port: Int)
    /// A local serial port: RS-485 bus, optical head, RS-232.
    case serial(SerialPortSettings)

    public var description: String {
        switch self {
        case .tcp(let host, let port): "tcp://\(host):\(port)"
        case .udp(let host, let port): "udp://\(host):\(port)"
        case .gatewayUDP(let host, let port): "gateway-udp://\(host):\(port)"
        case .serial(let settings): "serial://\(settings.path)@\(settings.baudRate)"
        }
    }

    /// Opens the transport.
    ///
    /// - Parameters:
    ///   - group: the event loops to use. Default: NIO's shared singleton group.
    ///   - timeout: how long a TCP connect may take.
    /// - Throws: `DLMSClientError` with code `.connectFailed`.
    public func open(on group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, timeout: Duration) async throws -> ChannelTransport {
        let peer = description
        do {
            switch self {
            case .tcp(let host, let port):
                let channel = try await ClientBootstrap(group: group)
                    .connectTimeout(TimeAmount(timeout))
                    .channelOption(.socketOption(.tcp_nodelay), value: 1)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(InboundQueueHandler(eventLoop: channel.eventLoop, peerDescription: peer))
                        }
                    }
                    .connect(host: host, port: port).get()
                return try await Self.transport(on: channel, isDatagram: false, peer: peer, wire: WireMetrics.tcp)
            case .udp(let host, let port), .gatewayUDP(let host, let port):
                let address = try SocketAddress.makeAddressResolvingHost(host, port: port)
                let local = address.protocol == .inet6 ? "::" : "0.0.0.0"
                let channel = try await DatagramBootstrap(group: group)
                    // NIO's default receive buffer is 2 KiB and cuts longer datagrams; a wrapper
                    // datagram holds up to 8 + 65,535 bytes (the PDU size the AARQ proposes).
                    // What arrived is copied out trimmed (DatagramPeerHandler), so a flood of
                    // small datagrams holds their size, not 64 KiB each.
                    .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: Self.maximumDatagramSize))
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(DatagramPeerHandler(peer: address))
                            try channel.pipeline.syncOperations.addHandler(InboundQueueHandler(eventLoop: channel.eventLoop, peerDescription: peer))
                        }
                    }
                    .bind(host: local, port: 0).get()
                let isDatagram: Bool = if case .udp = self { true } else { false }
                return try await Self.transport(on: channel, isDatagram: isDatagram, peer: peer, wire: isDatagram ? WireMetrics.udp : WireMetrics.gatewayUDP)
            case .serial(let settings):
                let descriptor = try SerialPort.open(settings)
                let channel: any Channel
                do {
                    channel = try await NIOPipeBootstrap(group: group)
                        .channelInitializer { channel in
                            channel.eventLoop.makeCompletedFuture {
                                try channel.pipeline.syncOperations.addHandler(InboundQueueHandler(eventLoop: channel.eventLoop, peerDescription: peer))
                            }
                        }
                        .takingOwnershipOfDescriptor(inputOutput: descriptor).get()
                } catch {
                    SerialPort.closeDescriptor(descriptor)
                    throw error
                }
                return try await Self.transport(on: channel, isDatagram: false, peer: peer, serialDescriptor: descriptor, wire: WireMetrics.serial)
            }
        } catch let error as DLMSClientError {
            throw error
        } catch {
            throw DLMSClientError(code: .connectFailed, step: .connect, reason: "\(peer): \(error)", underlying: error)
        }
    }

    /// Opens the transport, runs `body` with it, and closes it when `body` returns or throws.
    ///
    /// - Parameters:
    ///   - group: the event loops to use. Default: NIO's shared singleton group.
    ///   - timeout: how long a TCP connect may take.
    ///   - body: the work to do over the transport.
    /// - Returns: what `body` returns.
    /// - Throws: `DLMSClientError` with code `.connectFailed`, or what `body` threw.
    public func withTransport<Result>(
        on group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        timeout: Duration,
        _ body: (ChannelTransport) async throws -> Result
    ) async throws -> Result {
        let transport = try await open(on: group, timeout: timeout)
        let result: Result
        do {
            result = try await body(transport)
        } catch {
            await transport.close()
            throw error
        }
        await transport.close()
        return result
    }

    /// The largest datagram a UDP transport receives whole: a wrapper header and a 65,535-byte APDU.
    public static let maximumDatagramSize = 8 + 65_535

    private static func transport(on channel: any Channel, isDatagram: Bool, peer: String, serialDescriptor: CInt? = nil,
                                  wire: WireMetrics.Direction) async throws -> ChannelTransport {
        let inbound = try await channel.eventLoop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: InboundQueueHandler.self), eventLoop: channel.eventLoop)
        }.get()
        return ChannelTransport(channel: channel, inbound: inbound, isDatagram: isDatagram, peerDescription: peer, serialDescriptor: serialDescriptor,
                                wire: wire)
    }
}
