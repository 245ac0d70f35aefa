import DLMSLink
import NIOCore

/// Carries whole APDUs over a transport: the wrapper (IEC 62056-47) or HDLC (IEC 62056-46).
/// One framing object serves one association; it is not shared between tasks.
protocol APDUFraming: AnyObject {
    /// Whether the session must repeat a request whose answer did not come in time (the
    /// framing itself does not retransmit: wrapper over UDP).
    var repeatsRequestsOnTimeout: Bool { get }
    /// The largest APDU the link carries in one piece, if the link limits it.
    var maximumAPDULength: Int? { get }

    /// Sets the link up (HDLC: SNRM/UA). Nothing for the wrapper.
    func open(deadline: NIODeadline) async throws
    /// Sends one complete APDU.
    func send(_ apdu: ByteBuffer) async throws
    /// The next complete APDU from the meter, or `nil` when `deadline` passed first.
    func receive(until deadline: NIODeadline) async throws -> ByteBuffer?
    /// Takes the link down (HDLC: DISC/UA), waiting at most until `deadline`. Never throws.
    func close(deadline: NIODeadline) async
}

/// IEC 62056-47 wrapper: an 8-byte header (version 1, source and destination wPort, length)
/// before each APDU. Over TCP frames are cut from the stream; over UDP each datagram is one frame.
final class WrapperFraming: APDUFraming {
    private let transport: any DLMSTransport
    private let clientWPort: UInt16
    private let serverWPort: UInt16
    private var decoder = WrapperFrameDecoder()
    private var inbound = ByteBuffer()

    init(transport: any DLMSTransport, clientWPort: UInt16, serverWPort: UInt16) {
        self.transport = transport
        self.clientWPort = clientWPort
        self.serverWPort = serverWPort
    }

    var repeatsRequestsOnTimeout: Bool { transport.isDatagram }
    var maximumAPDULength: Int? { nil }

    func open(deadline: NIODeadline) async throws {}

    func send(_ apdu: ByteBuffer) async throws {
        try await transport.send(WrapperFrame(source: clientWPort, destination: serverWPort, apdu: apdu).encoded)
    }

    func receive(until deadline: NIODeadline) async throws -> ByteBuffer? {
        while true {
            // Frames for other wPorts are dropped and the loop goes on: a peer sending nothing
            // else must not keep it going past the deadline.
            guard NIODeadline.now() < deadline else { return nil }
            if let frame = try decoder.decode(buffer: &inbound) {
                inbound.discardReadBytes()
                // Another association's frame on a shared connection: not ours to answer.
                guard frame.source == serverWPort, frame.destination == clientWPort else { continue }
                return frame.apdu
            }
            guard let chunk = try await transport.receive(until: deadline) else { return nil }
            if transport.isDatagram {
                let frame = try WrapperFrame.decode(datagram: chunk)
                guard frame.source == serverWPort, frame.destination == clientWPort else { continue }
                return frame.apdu
            }
            inbound.writeImmutableBuffer(chunk)
        }
    }

    func close(deadline: NIODeadline) async {}
}

/// IEC 62056-46 HDLC: drives the sans-IO `HDLCConnection` with the transport's bytes and a
/// timer made from receive deadlines.
final class HDLCFraming: APDUFraming {
    private let transport: any DLMSTransport
    private var link: HDLCConnection
    private var timerDeadline: NIODeadline?
    private var delivered: [ByteBuffer] = []
    private var isConnected = false
    private var closedState: ClosedState?

    private enum ClosedState {
        case orderly
        case failed(DLMSLinkError)
    }

    init(transport: any DLMSTransport, configuration: HDLCConnection.Configuration) {
        self.transport = transport
        self.link = HDLCConnection(configuration: configuration)
    }

    var repeatsRequestsOnTimeout: Bool { false }
    var maximumAPDULength: Int? { nil }
    /// The negotiated link parameters once open.
    var parameters: HDLCParameters { link.parameters }

    func open(deadline: NIODeadline) async throws {
        try await perform(try link.connect())
        while !isConnected {
            try checkOpen()
            guard try await pump(until: deadline) else {
                throw DLMSLinkError.timeout("no UA to SNRM before the step deadline")
            }
        }
    }

    func send(_ apdu: ByteBuffer) async throws {
        try checkOpen()
        try await perform(try link.send(apdu))
    }

    func receive(until deadline: NIODeadline) async throws -> ByteBuffer? {
        while delivered.isEmpty {
            try checkOpen()
            guard try await pump(until: deadline) else { return nil }
        }
        return delivered.removeFirst()
    }

    func close(deadline: NIODeadline) async {
        guard closedState == nil else { return }
        do {
            try await perform(link.disconnect())
            while closedState == nil {
                guard try await pump(until: deadline) else { return }
            }
        } catch {
            // The link is going away either way.
        }
    }

    // MARK: - Driving the state machine

    private func checkOpen() throws {
        switch closedState {
        case nil: return
        case .orderly: throw DLMSLinkError.connectionClosed("the HDLC link is closed")
        case .failed(let error): throw error
        }
    }

    /// Waits for bytes or the link timer, whichever comes first, and feeds the state machine.
    /// - Returns: false when `deadline` passed.
    @discardableResult
    private func pump(until deadline: NIODeadline) async throws -> Bool {
        let now = NIODeadline.now()
        if now >= deadline { return false }
        let wakeUp = timerDeadline.map { min($0, deadline) } ?? deadline
        if let bytes = try await transport.receive(until: wakeUp) {
            try await perform(link.receive(bytes))
            return true
        }
        if let timer = timerDeadline, timer <= .now() {
            timerDeadline = nil
            try await perform(link.timerFired())
            return true
        }
        return NIODeadline.now() < deadline
    }

    private func perform(_ actions: [HDLCConnection.Action]) async throws {
        for action in actions {
            switch action {
            case .send(let frame):
                try await transport.send(frame)
            case .deliver(let apdu):
                delivered.append(apdu)
            case .startTimer(let duration):
                timerDeadline = .now() + TimeAmount(duration)
            case .cancelTimer:
                timerDeadline = nil
            case .connected:
                isConnected = true
            case .closed(let error):
                timerDeadline = nil
                if let error {
                    closedState = .failed(error)
                    throw error
                }
                closedState = .orderly
            }
        }
    }
}
