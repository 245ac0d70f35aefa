import DLMSLink
import Foundation
import Logging
import MeterSimulation
import Metrics
import NIOCore
import Observability
import Synchronization

/// One accepted connection of one meter: unframes requests (wrapper or HDLC), runs them
/// through the connection's `COSEMServerSession` and writes the framed responses, applying the
/// meter's faults. Lives on its channel's event loop.
final class MeterConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The wrapper wPort (and HDLC upper address) of the only logical device: management.
    static let logicalDevice: UInt16 = 1

    private let entry: MeterEntry
    private let framing: MeterSimConfiguration.Framing
    private let latency: Duration
    private let jitter: Duration
    private let inactivityTimeout: Duration
    private var inactivityTimer: Scheduled<Void>?
    private let metrics: MeterSimMetrics
    private let logger: Logger
    private var session: COSEMServerSession?
    private var wrapperDecoder = WrapperFrameDecoder()
    private var inbound = ByteBuffer()
    private var hdlc: HDLCServerConnection?
    private var responsesSent = 0
    private var closing = false

    init(entry: MeterEntry, latency: Duration, jitter: Duration, inactivityTimeout: Duration,
         metrics: MeterSimMetrics, logger: Logger) {
        self.entry = entry
        // Wrapper-only meters have no HDLC stack, whatever the fleet's framing.
        self.framing = entry.quirk == .wrapperOnly ? .wrapper : entry.framing
        self.latency = latency
        self.jitter = jitter
        self.inactivityTimeout = inactivityTimeout
        self.metrics = metrics
        self.logger = logger
        if framing == .hdlc, let configuration = try? entry.quirk.hdlcConfiguration(physical: entry.hdlcPhysicalAddress, logical: Self.logicalDevice) {
            hdlc = HDLCServerConnection(configuration: configuration)
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        metrics.connectionOpened()
        logger.debug("connection opened", metadata: [LogMetadataKey.peer: "\(context.remoteAddress.map { "\($0)" } ?? "?")"])
        restartInactivityTimer(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        inactivityTimer?.cancel()
        metrics.connectionClosed()
        logger.debug("connection closed")
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("connection error", metadata: [LogMetadataKey.error: "\(error)"])
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        let faults = entry.faults.withLock { $0 }
        if faults.silent || closing { return }
        restartInactivityTimer(context: context)
        switch framing {
        case .wrapper: wrapperRead(bytes, context: context, faults: faults)
        case .hdlc, .iec21: hdlcRead(bytes, context: context, faults: faults)
        }
    }

    /// HDLC: a link idle for the inactivity timeout is dropped (IEC 62056-46 §6.4.3.6); over
    /// TCP the connection closes with it.
    private func restartInactivityTimer(context: ChannelHandlerContext) {
        guard framing == .hdlc, inactivityTimeout > .zero else { return }
        inactivityTimer?.cancel()
        inactivityTimer = context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(inactivityTimeout.nanoseconds)) { [self] in
            guard var link = hdlc else { return }
            _ = link.inactivityTimeout()
            hdlc = link
            session = nil
            closing = true
            logger.info("HDLC link idle for \(inactivityTimeout); dropping it")
            context.close(promise: nil)
        }
    }

    // MARK: - Wrapper (IEC 62056-47)

    private func wrapperRead(_ bytes: ByteBuffer, context: ChannelHandlerContext, faults: MeterFaults) {
        inbound.writeImmutableBuffer(bytes)
        while !closing {
            let frame: WrapperFrame?
            do {
                frame = try wrapperDecoder.decode(buffer: &inbound)
            } catch {
                logger.info("malformed wrapper frame; closing", metadata: [LogMetadataKey.error: "\(error)"])
                closing = true
                context.close(promise: nil)
                return
            }
            guard let frame else { break }
            guard frame.destination == Self.logicalDevice else {
                // Only the management logical device exists; a real meter stays silent too.
                logger.debug("wrapper frame for absent logical device", metadata: [LogMetadataKey.wrapperPort: "\(frame.destination)"])
                continue
            }
            guard let response = handle(frame.apdu, clientSAP: frame.source) else { continue }
            let reply = WrapperFrame(source: frame.destination, destination: frame.source, apdu: response).encoded
            // Wrapper-only meters hang up after the release response.
            let hangUp = entry.quirk == .wrapperOnly && session?.isReleased == true
            emit([reply], context: context, faults: faults, closeAfter: hangUp)
        }
        inbound.discardReadBytes()
    }

    // MARK: - HDLC (IEC 62056-46)

    private func hdlcRead(_ bytes: ByteBuffer, context: ChannelHandlerContext, faults: MeterFaults) {
        guard var link = hdlc else { return }
        var pending = link.receive(bytes)
        var out: [ByteBuffer] = []
        var closeAfter = false
        while !pending.isEmpty {
            let action = pending.removeFirst()
            switch action {
            case .send(let frame):
                out.append(frame)
            case .deliver(let request):
                let clientSAP = UInt16(link.clientAddress?.upper ?? 0x10)
                if let response = handle(request, clientSAP: clientSAP), let actions = try? link.respond(response) {
                    pending.insert(contentsOf: actions, at: 0)
                } else {
                    link.discardRequest()
                }
            case .closed:
                closeAfter = true
                session = nil
            }
        }
        hdlc = link
        if !out.isEmpty || closeAfter { emit(out, context: context, faults: faults, closeAfter: closeAfter) }
    }

    // MARK: - Shared

    private func handle(_ request: ByteBuffer, clientSAP: UInt16) -> ByteBuffer? {
        metrics.requests.increment()
        if session == nil || session?.clientSAP != clientSAP || session?.isReleased == true {
            session = COSEMServerSession(meter: entry.meter, clientSAP: clientSAP)
            metrics.sessions.increment()
        }
        // The latency is a network's round trip: the request reaches the meter after half of it
        // (what the meter's clock reads, or is set to, is that instant's), the answer needs the rest.
        return session!.handle(request, now: Date().addingTimeInterval(Double(latency.nanoseconds) / 2e9)).map(entry.quirk.adjust)
    }

    /// Writes `frames` after the configured latency, applying drop, garbage and reset faults.
    private func emit(_ frames: [ByteBuffer], context: ChannelHandlerContext, faults: MeterFaults, closeAfter: Bool = false) {
        responsesSent += 1
        var frames = frames
        var close = closeAfter
        if faults.drop && responsesSent % 2 == 0 {
            frames = []
        } else if faults.garbage {
            frames = frames.map { frame in
                var garbage = ByteBuffer()
                for _ in 0..<max(frame.readableBytes, 8) { garbage.writeInteger(UInt8.random(in: 0...255)) }
                return garbage
            }
        } else if faults.reset && responsesSent >= 2, var first = frames.first {
            frames = [first.readSlice(length: max(1, first.readableBytes / 2))!]
            close = true
        }
        if close { closing = true }
        let write = {
            for frame in frames { context.write(self.wrapOutboundOut(frame), promise: nil) }
            if close {
                context.writeAndFlush(self.wrapOutboundOut(ByteBuffer())).whenComplete { _ in context.close(promise: nil) }
            } else {
                context.flush()
            }
        }
        var delay = latency
        if jitter > .zero {
            delay += .nanoseconds(Int64.random(in: 0...max(0, jitter.nanoseconds)))
        }
        if delay > .zero {
            context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(delay.nanoseconds)) { write() }
        } else {
            write()
        }
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
