import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// One physical line shared by several meters — an RS-485 bus, an optical port, a serial
/// gateway — distinguished by their HDLC physical addresses. The line owns the port: it opens
/// it once, keeps it open between sessions, and runs one association at a time, in the order
/// they were asked for, so two sessions never talk over each other on the bus.
public final class DLMSLine: Sendable {
    public let endpoint: TransportEndpoint
    private let group: any EventLoopGroup
    private let connectTimeout: Duration
    private let state = NIOLockedValueBox(State())

    private struct State {
        var busy = false
        var waiters: [CheckedContinuation<Void, Never>] = []
        var transport: ChannelTransport?
        var sessions = 0
    }

    /// - Parameters:
    ///   - endpoint: the port (serial or gateway).
    ///   - group: event loops. Default: NIO's shared group.
    ///   - connectTimeout: opening the port. Default: 10 s.
    public init(endpoint: TransportEndpoint, on group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, connectTimeout: Duration = .seconds(10)) {
        self.endpoint = endpoint
        self.group = group
        self.connectTimeout = connectTimeout
    }

    /// A line for `body`, closed when `body` returns or throws. The port opens with the first
    /// session.
    ///
    /// - Parameters: as ``init(endpoint:on:connectTimeout:)``; `body` gets the line.
    /// - Returns: what `body` returns.
    /// - Throws: what `body` threw.
    public static func withLine<Result>(
        endpoint: TransportEndpoint,
        on group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        connectTimeout: Duration = .seconds(10),
        _ body: (DLMSLine) async throws -> Result
    ) async throws -> Result {
        let line = DLMSLine(endpoint: endpoint, on: group, connectTimeout: connectTimeout)
        let result: Result
        do {
            result = try await body(line)
        } catch {
            await line.close()
            throw error
        }
        await line.close()
        return result
    }

    /// Sessions completed or failed on this line so far.
    public var sessionCount: Int { state.withLockedValue { $0.sessions } }

    /// Waits for the line, then runs one association with the meter at `connection` (whose
    /// endpoint is ignored: the line's port is used).
    ///
    /// - Throws: what `DLMSClient.withAssociation` throws. After a transport failure the port
    ///   is closed and opened again for the next session.
    public func withAssociation<Result>(to connection: MeterConnection, logger: Logger = Logger(label: "hes.dlms-line"),
                                        _ body: (DLMSClient) async throws -> Result) async throws -> Result {
        // The port may be in any state after these (half a frame, a dead USB adapter): start clean.
        try await withPort(droppingItOn: [.connectionClosed, .linkFailed]) { transport in
            try await DLMSClient.withAssociation(to: connection, over: transport, logger: logger, closesTransport: false, body)
        }
    }

    /// Waits for the line, then lends its port to `body` alone: for sessions that are not DLMS
    /// associations (IEC 62056-21 mode C readouts and programming mode on the same bus).
    ///
    /// - Throws: what `body` threw. After a transport failure the port is closed and opened
    ///   again for the next session.
    public func withTransport<Result>(_ body: (any DLMSTransport) async throws -> Result) async throws -> Result {
        // After a timeout half an answer may still arrive: the next session starts on a clean port too.
        try await withPort(droppingItOn: [.connectionClosed, .linkFailed, .timeout], body)
    }

    /// Waits for the line and runs `body` with its port (opened if needed); a failure with one of
    /// `codes` closes the port, so the next session opens it afresh.
    private func withPort<Result>(droppingItOn codes: [DLMSClientError.Code], _ body: (ChannelTransport) async throws -> Result) async throws -> Result {
        await acquire()
        defer { release() }
        let transport = try await openTransport()
        do {
            return try await body(transport)
        } catch let error as DLMSClientError where codes.contains(error.code) {
            await dropTransport(transport)
            throw error
        }
    }

    /// Closes the port. Sessions asked for later open it again.
    public func close() async {
        let transport = state.withLockedValue { state -> ChannelTransport? in
            defer { state.transport = nil }
            return state.transport
        }
        await transport?.close()
    }

    // MARK: - Exclusive use

    private func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let granted = state.withLockedValue { state -> Bool in
                if state.busy {
                    state.waiters.append(continuation)
                    return false
                }
                state.busy = true
                return true
            }
            if granted { continuation.resume() }
        }
    }

    private func release() {
        let next = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            state.sessions += 1
            guard !state.waiters.isEmpty else {
                state.busy = false
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()
    }

    private func openTransport() async throws -> ChannelTransport {
        if let open = state.withLockedValue({ $0.transport }) { return open }
        let transport = try await endpoint.open(on: group, timeout: connectTimeout)
        state.withLockedValue { $0.transport = transport }
        return transport
    }

    private func dropTransport(_ transport: ChannelTransport) async {
        state.withLockedValue { state in
            if state.transport === transport { state.transport = nil }
        }
        await transport.close()
    }
}
