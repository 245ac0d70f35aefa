import Metrics
import NIOCore
import NIOPosix

/// A `DLMSTransport` over a NIO channel (TCP socket, connected UDP socket, serial port file
/// descriptor). Received bytes queue in a handler on the channel's event loop; `receive`
/// hops there, and a timer on the same loop answers `nil` at the deadline, so waiting costs
/// no thread and no extra task.
public final class ChannelTransport: DLMSTransport {
    public let isDatagram: Bool
    let channel: any Channel
    private let inbound: NIOLoopBound<InboundQueueHandler>
    /// What the transport is connected to, for messages.
    public let peerDescription: String

    /// The serial port's descriptor (owned by the channel) for line settings such as the baud rate.
    let serialDescriptor: CInt?
    private let wire: WireMetrics.Direction

    init(channel: any Channel, inbound: NIOLoopBound<InboundQueueHandler>, isDatagram: Bool, peerDescription: String, serialDescriptor: CInt? = nil,
         wire: WireMetrics.Direction) {
        self.channel = channel
        self.inbound = inbound
        self.isDatagram = isDatagram
        self.peerDescription = peerDescription
        self.serialDescriptor = serialDescriptor
        self.wire = wire
    }

    /// Changes the serial line's baud rate (IEC 62056-21 switches after the identification).
    ///
    /// - Throws: `DLMSClientError` with `.invalidArgument` when this is not a serial port.
    public func setBaudRate(_ baudRate: Int) async throws {
        guard let descriptor = serialDescriptor else {
            throw DLMSClientError(code: .invalidArgument, step: .connect, reason: "\(peerDescription) is not a serial port")
        }
        // Let queued bytes (the acknowledgement that announces the switch) leave first.
        try await channel.eventLoop.submit { try SerialPort.drainAndSetBaudRate(descriptor, baudRate) }.get()
    }

    /// Changes all line settings of the serial port (after pending output left).
    public func reconfigure(_ settings: SerialPortSettings) async throws {
        guard let descriptor = serialDescriptor else {
            throw DLMSClientError(code: .invalidArgument, step: .connect, reason: "\(peerDescription) is not a serial port")
        }
        try await channel.eventLoop.submit { try SerialPort.drainAndConfigure(descriptor, settings) }.get()
    }

    public func send(_ bytes: ByteBuffer) async throws {
        do {
            let count = bytes.readableBytes
            try await channel.writeAndFlush(bytes).get()
            wire.sent.increment(by: count)
        } catch {
            throw DLMSClientError(code: .connectionClosed, step: .connect, reason: "writing to \(peerDescription) failed: \(error)", underlying: error)
        }
    }

    public func receive(until deadline: NIODeadline) async throws -> ByteBuffer? {
        let inbound = self.inbound
        let eventLoop = channel.eventLoop
        let received = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<ByteBuffer?, any Error>) in
                eventLoop.execute {
                    inbound.value.wait(until: deadline, continuation: continuation)
                }
            }
        } onCancel: {
            eventLoop.execute { inbound.value.cancelWaiter() }
        }
        if let received { wire.received.increment(by: received.readableBytes) }
        return received
    }

    public func discardPending() async {
        let inbound = self.inbound
        try? await channel.eventLoop.submit { inbound.value.discardQueued() }.get()
    }

    public func close() async {
        try? await channel.close().get()
    }

    deinit {
        channel.close(promise: nil)
    }
}

/// Queues inbound buffers for one waiting reader. Confined to the channel's event loop.
final class InboundQueueHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private struct Waiter {
        var continuation: CheckedContinuation<ByteBuffer?, any Error>
        var timer: Scheduled<Void>?
    }

    private let eventLoop: any EventLoop
    private let peerDescription: String
    private var queue = CircularBuffer<ByteBuffer>()
    private var waiter: Waiter?
    private var failure: DLMSClientError?
    /// Bounds on what queues while nobody reads (a meter streaming garbage, a datagram flood):
    /// bytes, and reads (each holds a buffer of its own whatever its size).
    private let maximumQueuedBytes: Int
    private let maximumQueuedReads: Int
    private var queuedBytes = 0

    init(eventLoop: any EventLoop, peerDescription: String, maximumQueuedBytes: Int = 1 << 20, maximumQueuedReads: Int = 1024) {
        self.eventLoop = eventLoop
        self.peerDescription = peerDescription
        self.maximumQueuedBytes = maximumQueuedBytes
        self.maximumQueuedReads = maximumQueuedReads
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        if let waiter {
            self.waiter = nil
            waiter.timer?.cancel()
            waiter.continuation.resume(returning: bytes)
            return
        }
        guard failure == nil else { return }
        queuedBytes += bytes.readableBytes
        guard queuedBytes <= maximumQueuedBytes, queue.count < maximumQueuedReads else {
            fail(DLMSClientError(code: .linkFailed, step: .connect,
                                 reason: "\(peerDescription) sent more than \(queue.count < maximumQueuedReads ? "\(maximumQueuedBytes) unread byte(s)" : "\(maximumQueuedReads) unread packet(s)")"))
            queue.removeAll()
            queuedBytes = 0
            context.close(promise: nil)
            return
        }
        queue.append(bytes)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(DLMSClientError(code: .connectionClosed, step: .connect, reason: "\(peerDescription) closed the connection"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(DLMSClientError(code: .connectionClosed, step: .connect, reason: "\(peerDescription): \(error)", underlying: error))
        context.close(promise: nil)
    }

    func wait(until deadline: NIODeadline, continuation: CheckedContinuation<ByteBuffer?, any Error>) {
        eventLoop.preconditionInEventLoop()
        if let bytes = queue.popFirst() {
            queuedBytes -= bytes.readableBytes
            continuation.resume(returning: bytes)
        } else if let failure {
            continuation.resume(throwing: failure)
        } else if waiter != nil {
            continuation.resume(throwing: DLMSClientError(code: .invalidArgument, step: .connect, reason: "two concurrent receives on one transport"))
        } else if deadline <= .now() {
            continuation.resume(returning: nil)
        } else {
            let timer = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
                guard let waiter else { return }
                self.waiter = nil
                waiter.continuation.resume(returning: nil)
            }
            waiter = Waiter(continuation: continuation, timer: timer)
        }
    }

    func cancelWaiter() {
        guard let waiter else { return }
        self.waiter = nil
        waiter.timer?.cancel()
        waiter.continuation.resume(throwing: CancellationError())
    }

    func discardQueued() {
        queue.removeAll()
        queuedBytes = 0
    }

    private func fail(_ error: DLMSClientError) {
        if failure == nil { failure = error }
        if let waiter {
            self.waiter = nil
            waiter.timer?.cancel()
            waiter.continuation.resume(throwing: error)
        }
    }
}

/// Turns a connected UDP channel into a byte pipe: datagrams from the peer in, buffers out
/// as datagrams to the peer. Datagrams from anyone else are dropped (response matching by source).
final class DatagramPeerHandler: ChannelDuplexHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private let peer: SocketAddress

    init(peer: SocketAddress) {
        self.peer = peer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard envelope.remoteAddress == peer else { return }
        // The receive buffer is sized for the largest datagram: keep only what arrived.
        var trimmed = context.channel.allocator.buffer(capacity: envelope.data.readableBytes)
        trimmed.writeImmutableBuffer(envelope.data)
        context.fireChannelRead(wrapInboundOut(trimmed))
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let bytes = unwrapOutboundIn(data)
        context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: peer, data: bytes)), promise: promise)
    }
}

/// Bytes on the wire to and from meters, by kind of line: `hes_meter_wire_bytes_total{direction,line}`
/// (line `tcp`, `udp`, `gateway-udp` or `serial`, as the endpoint's kind). Counted where bytes
/// enter and leave the process, so every session and protocol is included.
enum WireMetrics {
    struct Direction: Sendable {
        let sent: Counter
        let received: Counter

        init(_ line: String) {
            sent = Counter(label: "hes_meter_wire_bytes_total", dimensions: [("direction", "sent"), ("line", line)])
            received = Counter(label: "hes_meter_wire_bytes_total", dimensions: [("direction", "received"), ("line", line)])
        }
    }

    // Created on first use: after the process bootstrapped its metrics.
    static let tcp = Direction("tcp")
    static let udp = Direction("udp")
    static let gatewayUDP = Direction("gateway-udp")
    static let serial = Direction("serial")
}
