import Logging
import NIOCore
import NIOPosix

/// A fixed bootstrap address in front of the mock cluster, whose brokers listen on ephemeral
/// ports that change on every start: `127.0.0.1:<port>` forwards each connection byte for byte
/// to the first mock broker.
///
/// Clients bootstrap through it and then talk to the brokers at the addresses the metadata
/// names; when kafka-dev restarts on the same `--port`, their next bootstrap connection finds
/// the new cluster, so running services come back without being restarted (the messages of
/// the old cluster are gone, as with any restarted in-memory broker).
final class BootstrapForwarder: Sendable {
    private let channel: any Channel

    /// Binds `host:port` and forwards to `target` (`host:port` of a mock broker).
    init(host: String, port: Int, target: String, logger: Logger) async throws {
        let parts = target.split(separator: ":")
        guard parts.count == 2, let targetPort = Int(parts[1]) else {
            throw KafkaDevError("cannot forward to '\(target)': not host:port")
        }
        let targetHost = String(parts[0])
        self.channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // The accepted channel is registered (and starts reading) only once the connection
            // to the broker is up and both handlers are in place.
            .childChannelInitializer { inbound in
                ClientBootstrap(group: inbound.eventLoop)
                    .connect(host: targetHost, port: targetPort)
                    .flatMap { outbound in
                        let (toBroker, toClient) = ForwardingHandler.pair()
                        return inbound.pipeline.addHandler(toBroker).flatMap {
                            outbound.pipeline.addHandler(toClient)
                        }
                    }
                    .flatMapErrorThrowing { error in
                        logger.warning("bootstrap forwarder cannot reach the mock broker", metadata: ["error": "\(error)"])
                        inbound.close(promise: nil)
                    }
            }
            .bind(host: host, port: port)
            .get()
    }

    var address: String { "\(channel.localAddress?.ipAddress ?? "127.0.0.1"):\(channel.localAddress?.port ?? 0)" }

    func close() async {
        try? await channel.close()
    }
}

/// One side of a forwarded connection: what it reads it writes to its partner's channel, with
/// back-pressure (reads resume when the partner's channel is writable again), and a close on
/// either side closes both.
private final class ForwardingHandler: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var partner: ForwardingHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false

    static func pair() -> (ForwardingHandler, ForwardingHandler) {
        let first = ForwardingHandler(), second = ForwardingHandler()
        first.partner = second
        second.partner = first
        return (first, second)
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        self.partner = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partner?.forward(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) { partner?.flushForward() }

    func channelInactive(context: ChannelHandlerContext) { partner?.closeForward() }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.resumeReading() }
    }

    func read(context: ChannelHandlerContext) {
        if let partner, partner.isWritable {
            context.read()
        } else {
            pendingRead = true
        }
    }

    // MARK: - Called by the partner (same event loop: the outbound channel was bootstrapped on it)

    private var isWritable: Bool { context?.channel.isWritable ?? false }

    private func forward(_ buffer: ByteBuffer) {
        guard let context else { return }
        context.write(wrapOutboundOut(buffer), promise: nil)
    }

    private func flushForward() { context?.flush() }

    private func closeForward() { context?.close(promise: nil) }

    private func resumeReading() {
        guard pendingRead, let context else { return }
        pendingRead = false
        context.read()
    }
}

struct KafkaDevError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
