import DLMSLink
import Foundation
import Logging
import MeterSimulation
import Metrics
import NIOCore
import Observability
import Synchronization

/// One meter's UDP socket: each datagram carries one wrapper frame (IEC 62056-47 §5), answered
/// with one datagram to its sender. UDP has no connection, so the association lives per peer
/// address until it is released or replaced. Lives on its channel's event loop.
final class WrapperDatagramHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    /// Peers remembered at once; the oldest association is dropped beyond this.
    static let maximumPeers = 16

    private let entry: MeterEntry
    private let latency: Duration
    private let jitter: Duration
    private let metrics: MeterSimMetrics
    private let logger: Logger
    private var sessions: [(peer: SocketAddress, session: COSEMServerSession)] = []
    private var responsesSent = 0

    init(entry: MeterEntry, latency: Duration, jitter: Duration, metrics: MeterSimMetrics, logger: Logger) {
        self.entry = entry
        self.latency = latency
        self.jitter = jitter
        self.metrics = metrics
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let faults = entry.faults.withLock { $0 }
        if faults.silent { return }
        var datagram = envelope.data
        var decoder = WrapperFrameDecoder()
        guard let frame = try? decoder.decode(buffer: &datagram), frame.destination == MeterConnectionHandler.logicalDevice else {
            logger.debug("datagram is not one wrapper frame for logical device 1; ignored")
            return
        }
        metrics.requests.increment()
        let index = sessions.firstIndex { $0.peer == envelope.remoteAddress && $0.session.clientSAP == frame.source && !$0.session.isReleased }
        var session = index.map { sessions.remove(at: $0).session } ?? {
            metrics.sessions.increment()
            return COSEMServerSession(meter: entry.meter, clientSAP: frame.source)
        }()
        // The latency is a network's round trip: the request reaches the meter after half of it
        // (what the meter's clock reads, or is set to, is that instant's), the answer needs the rest.
        let response = session.handle(frame.apdu, now: Date().addingTimeInterval(Double(latency.nanoseconds) / 2e9)).map(entry.quirk.adjust)
        if !session.isReleased {
            sessions.append((envelope.remoteAddress, session))
            if sessions.count > Self.maximumPeers { sessions.removeFirst() }
        }
        guard let response else { return }
        responsesSent += 1
        if faults.drop && responsesSent % 2 == 0 { return }
        var reply = WrapperFrame(source: frame.destination, destination: frame.source, apdu: response).encoded
        if faults.garbage {
            reply = ByteBuffer(bytes: (0..<max(reply.readableBytes, 8)).map { _ in UInt8.random(in: 0...255) })
        }
        let out = AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: reply)
        let delay = latency + (jitter > .zero ? .nanoseconds(Int64.random(in: 0...max(0, jitter.nanoseconds))) : .zero)
        if delay > .zero {
            context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(delay.nanoseconds)) {
                context.writeAndFlush(self.wrapOutboundOut(out), promise: nil)
            }
        } else {
            context.writeAndFlush(wrapOutboundOut(out), promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("datagram error", metadata: [LogMetadataKey.error: "\(error)"])
    }
}

/// A serial server in UDP mode: the meters of one line behind one UDP port. Datagrams carry
/// raw serial bytes (HDLC frames or IEC 62056-21 messages) into the line's `MeterBus`; what
/// the meters answer goes back in datagrams to the last sender, as a MOXA in UDP mode sends
/// the line's bytes to its configured peer.
final class GatewayDatagramHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private var bus: MeterBus
    private let metrics: MeterSimMetrics
    private let logger: Logger
    private var peer: SocketAddress?
    private var ticker: Scheduled<Void>?

    init(bus: MeterBus, metrics: MeterSimMetrics, logger: Logger) {
        self.bus = bus
        self.metrics = metrics
        self.logger = logger
    }

    func channelActive(context: ChannelHandlerContext) {
        for (address, serials) in bus.sharedAddresses {
            logger.warning("gateway \(bus.name): meters \(serials.joined(separator: ", ")) share HDLC physical address \(address); their answers will collide")
        }
        scheduleTick(context: context)
        context.fireChannelActive()
    }

    /// Once a second, so idle links and IEC 62056-21 sessions time out.
    private func scheduleTick(context: ChannelHandlerContext) {
        ticker = context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(1)) { [self] in
            perform(bus.tick(now: .now), context: context)
            scheduleTick(context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        ticker?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        peer = envelope.remoteAddress
        let output = bus.receive(envelope.data, now: .now)
        perform(output, context: context)
    }

    private func perform(_ output: MeterBus.Output, context: ChannelHandlerContext) {
        if output.requests > 0 { metrics.requests.increment(by: output.requests) }
        if let contention = output.contention {
            metrics.contentions.increment()
            logger.error("bus contention behind gateway \(bus.name): \(contention)", metadata: [LogMetadataKey.lineID: "\(bus.name)"])
        }
        guard let peer else { return }
        var wrote = false
        for case .write(let bytes, _) in output.operations {
            context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: peer, data: bytes)), promise: nil)
            wrote = true
        }
        if wrote { context.flush() }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("gateway datagram error", metadata: [LogMetadataKey.error: "\(error)"])
    }
}
