import DLMSLink
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A TCP server speaking the IEC 62056-47 wrapper whose answers a test scripts: per request
/// APDU, answer, stay silent, send garbage, answer late, or drop the connection. For fault
/// tests of the client; the well-behaved meter is the simulator.
public final class ScriptedMeterServer: Sendable {
    /// What to do with one request.
    public enum Reply: Sendable {
        /// Answer with this APDU (wrapped with swapped wPorts).
        case apdu(ByteBuffer)
        /// Answer with these raw bytes (no wrapper header added).
        case raw(ByteBuffer)
        /// Answer after a delay.
        case delayed(TimeAmount, ByteBuffer)
        /// Say nothing.
        case silence
        /// Close the connection.
        case close
    }

    public typealias Script = @Sendable (_ request: ByteBuffer, _ index: Int) -> Reply

    public let port: Int
    private let channel: any Channel
    private let counters: Counters

    /// Number of request APDUs received so far.
    public var requestCount: Int { counters.requests.withLockedValue { $0 } }
    /// Number of connections accepted so far.
    public var connectionCount: Int { counters.connections.withLockedValue { $0 } }

    private init(channel: any Channel, port: Int, counters: Counters) {
        self.channel = channel
        self.port = port
        self.counters = counters
    }

    /// Starts listening on 127.0.0.1 on a free port.
    public static func start(script: @escaping Script) async throws -> ScriptedMeterServer {
        try await listen { pipeline, counters in
            try pipeline.addHandler(ByteToMessageHandler(WrapperFrameDecoder()))
            try pipeline.addHandler(ScriptHandler(script: script, counter: counters.requests))
        }
    }

    /// Starts a server without framing: `respond` sees each chunk of received bytes and returns
    /// the bytes to answer with, or `nil` to stay silent (for HDLC-level faults).
    public static func startRaw(respond: @escaping @Sendable (ByteBuffer) -> ByteBuffer?) async throws -> ScriptedMeterServer {
        try await listen { pipeline, counters in
            try pipeline.addHandler(RawHandler(respond: respond, counter: counters.requests))
        }
    }

    /// A server for `body`, stopped when `body` returns or throws.
    public static func withServer<Result>(script: @escaping Script, _ body: (ScriptedMeterServer) async throws -> Result) async throws -> Result {
        try await withResource(try await start(script: script), cleanup: { await $0.stop() }, body)
    }

    /// A raw server (``startRaw(respond:)``) for `body`, stopped when `body` returns or throws.
    public static func withRawServer<Result>(respond: @escaping @Sendable (ByteBuffer) -> ByteBuffer?,
                                             _ body: (ScriptedMeterServer) async throws -> Result) async throws -> Result {
        try await withResource(try await startRaw(respond: respond), cleanup: { await $0.stop() }, body)
    }

    /// Listens on 127.0.0.1 on a free port; `configure` sets up each accepted connection.
    private static func listen(
        _ configure: @escaping @Sendable (ChannelPipeline.SynchronousOperations, Counters) throws -> Void
    ) async throws -> ScriptedMeterServer {
        let counters = Counters()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                counters.connections.withLockedValue { $0 += 1 }
                return child.eventLoop.makeCompletedFuture { try configure(child.pipeline.syncOperations, counters) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return ScriptedMeterServer(channel: channel, port: channel.localAddress!.port!, counters: counters)
    }

    public func stop() async {
        try? await channel.close().get()
    }

    private final class RawHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let respond: @Sendable (ByteBuffer) -> ByteBuffer?
        let counter: NIOLockedValueBox<Int>

        init(respond: @escaping @Sendable (ByteBuffer) -> ByteBuffer?, counter: NIOLockedValueBox<Int>) {
            self.respond = respond
            self.counter = counter
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            counter.withLockedValue { $0 += 1 }
            if let answer = respond(unwrapInboundIn(data)) {
                context.writeAndFlush(NIOAny(answer), promise: nil)
            }
        }
    }

    private final class Counters: Sendable {
        let requests = NIOLockedValueBox(0)
        let connections = NIOLockedValueBox(0)
    }

    private final class ScriptHandler: ChannelInboundHandler {
        typealias InboundIn = WrapperFrame
        let script: Script
        let counter: NIOLockedValueBox<Int>

        init(script: @escaping Script, counter: NIOLockedValueBox<Int>) {
            self.script = script
            self.counter = counter
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let frame = unwrapInboundIn(data)
            let index = counter.withLockedValue { value -> Int in value += 1; return value - 1 }
            func answer(_ apdu: ByteBuffer) -> ByteBuffer {
                WrapperFrame(source: frame.destination, destination: frame.source, apdu: apdu).encoded
            }
            switch script(frame.apdu, index) {
            case .apdu(let apdu):
                context.writeAndFlush(NIOAny(answer(apdu)), promise: nil)
            case .raw(let bytes):
                context.writeAndFlush(NIOAny(bytes), promise: nil)
            case .delayed(let delay, let apdu):
                let bytes = answer(apdu)
                let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
                context.eventLoop.scheduleTask(in: delay) { loopBound.value.writeAndFlush(NIOAny(bytes), promise: nil) }
            case .silence:
                break
            case .close:
                context.close(promise: nil)
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}

/// The UDP variant: one wrapper frame per datagram, answered to the sender.
public final class ScriptedUDPMeterServer: Sendable {
    public let port: Int
    private let channel: any Channel
    private let requests: NIOLockedValueBox<Int>

    /// Number of request datagrams received so far.
    public var requestCount: Int { requests.withLockedValue { $0 } }

    private init(channel: any Channel, requests: NIOLockedValueBox<Int>) {
        self.channel = channel
        self.port = channel.localAddress!.port!
        self.requests = requests
    }

    /// A server for `body`, stopped when `body` returns or throws.
    public static func withServer<Result>(script: @escaping ScriptedMeterServer.Script,
                                          _ body: (ScriptedUDPMeterServer) async throws -> Result) async throws -> Result {
        try await withResource(try await start(script: script), cleanup: { await $0.stop() }, body)
    }

    public static func start(script: @escaping ScriptedMeterServer.Script) async throws -> ScriptedUDPMeterServer {
        let requests = NIOLockedValueBox(0)
        let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Handler(script: script, counter: requests))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return ScriptedUDPMeterServer(channel: channel, requests: requests)
    }

    public func stop() async {
        try? await channel.close().get()
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        typealias OutboundOut = AddressedEnvelope<ByteBuffer>
        let script: ScriptedMeterServer.Script
        let counter: NIOLockedValueBox<Int>

        init(script: @escaping ScriptedMeterServer.Script, counter: NIOLockedValueBox<Int>) {
            self.script = script
            self.counter = counter
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let envelope = unwrapInboundIn(data)
            guard let frame = try? WrapperFrame.decode(datagram: envelope.data) else { return }
            let index = counter.withLockedValue { value -> Int in value += 1; return value - 1 }
            let reply: ByteBuffer?
            switch script(frame.apdu, index) {
            case .apdu(let apdu), .delayed(_, let apdu):
                reply = WrapperFrame(source: frame.destination, destination: frame.source, apdu: apdu).encoded
            case .raw(let bytes):
                reply = bytes
            case .silence, .close:
                reply = nil
            }
            if let reply {
                context.writeAndFlush(wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: reply)), promise: nil)
            }
        }
    }
}

/// Runs `body` with `resource`, then awaits `cleanup` — also when `body` throws: the scope test
/// servers and fixtures use, where a `defer` could only start a task nobody waits for.
public func withResource<Resource, Result>(_ resource: Resource, cleanup: (Resource) async -> Void,
                                           _ body: (Resource) async throws -> Result) async throws -> Result {
    let result: Result
    do {
        result = try await body(resource)
    } catch {
        await cleanup(resource)
        throw error
    }
    await cleanup(resource)
    return result
}
