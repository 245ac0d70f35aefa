import COSEM
import NIOCore

/// The client side of an HDLC link (IEC 62056-46 §6.4, normal response mode, modulo 8) as a
/// sans-IO state machine: the shell passes events in (`connect`, `send`, `receive`,
/// `timerFired`, `transportClosed`, `disconnect`) and carries out the returned actions.
///
/// - Connect sends SNRM (with the proposed parameters unless `sendsParameters` is off) and
///   expects UA; the UA's parameters are negotiated with `HDLCParameters.negotiated`.
/// - An APDU is prefixed with the LLC command header and cut into I-frames no longer than the
///   negotiated transmit information length; all but the last carry the segmentation bit. With
///   window size 1 each segment waits for the server's RR before the next is sent.
/// - Responses are reassembled from segmented I-frames (acknowledged with RR whenever the server
///   sets the final bit, i.e. after every frame with window size 1), checked for
///   N(S)/N(R), stripped of their LLC header and delivered.
/// - A single timer serves as response timer and, while idle, as inactivity timer: `startTimer`
///   replaces any running timer. On a response timeout the last frame is sent again (an RR
///   when receiving segments, which polls the server to repeat its frame) up to
///   `maximumRetries` times, then the link fails with `DLMSLinkError.timeout`.
/// - DM closes the link with `disconnectedByPeer`, FRMR with `frameRejected`; a sequence error
///   sends DISC and closes with `sequenceError`.
/// - Frames from other addresses (other meters on a multi-drop bus) are ignored.
public struct HDLCConnection: Sendable {
    /// Link settings; a manufacturer profile chooses them per meter.
    public struct Configuration: Sendable {
        /// The client's HDLC address (one byte).
        public var clientAddress: HDLCAddress
        /// The server's HDLC address (logical and physical device).
        public var serverAddress: HDLCAddress
        /// What the SNRM proposes. Default: 128-byte information fields, window 1.
        public var proposedParameters: HDLCParameters
        /// Whether the SNRM carries the parameters (some meters reject an SNRM with an
        /// information field). Default: true.
        public var sendsParameters: Bool
        /// How the SNRM parameters are written. Default: Green Book style (1/2-byte lengths, 4-byte windows).
        public var parameterEncoding: HDLCParameters.EncodingOptions
        /// How long to wait for each answer before sending again. Default: 3 s.
        public var responseTimeout: Duration
        /// How many times a frame is sent again before the link fails. Default: 3.
        public var maximumRetries: Int
        /// How long the connected link may stay idle; `nil` for no limit. Default: 120 s
        /// (the inactivity time-out default of IEC 62056-46).
        public var inactivityTimeout: Duration?
        /// The largest reassembled response accepted. Default: 65,536 bytes.
        public var maximumMessageLength: Int

        public init(
            clientAddress: HDLCAddress,
            serverAddress: HDLCAddress,
            proposedParameters: HDLCParameters = .defaults,
            sendsParameters: Bool = true,
            parameterEncoding: HDLCParameters.EncodingOptions = .init(),
            responseTimeout: Duration = .seconds(3),
            maximumRetries: Int = 3,
            inactivityTimeout: Duration? = .seconds(120),
            maximumMessageLength: Int = 65_536
        ) {
            self.clientAddress = clientAddress
            self.serverAddress = serverAddress
            self.proposedParameters = proposedParameters
            self.sendsParameters = sendsParameters
            self.parameterEncoding = parameterEncoding
            self.responseTimeout = responseTimeout
            self.maximumRetries = maximumRetries
            self.inactivityTimeout = inactivityTimeout
            self.maximumMessageLength = maximumMessageLength
        }
    }

    /// What the shell must do, in order.
    public enum Action: Hashable, Sendable {
        /// Write these bytes (one encoded frame) to the transport.
        case send(ByteBuffer)
        /// A complete APDU (LLC header removed) arrived.
        case deliver(ByteBuffer)
        /// Start the timer (replacing a running one); call `timerFired()` when it expires.
        case startTimer(Duration)
        /// Stop the timer.
        case cancelTimer
        /// The link is up with these parameters (the client's view).
        case connected(HDLCParameters)
        /// The link is down: `nil` after an orderly disconnect, else why it failed.
        case closed(DLMSLinkError?)
    }

    enum State: Sendable {
        case idle
        case connecting
        case ready
        /// Waiting for the RR that acknowledges a non-final segment.
        case awaitingAcknowledgement(remaining: ArraySlice<ByteBuffer>)
        /// The request is sent; collecting the (possibly segmented) response.
        case awaitingResponse(reassembly: ByteBuffer)
        case disconnecting
        case closed
        /// Only while a payload is taken out to be changed (postgres-nio's idiom): a buffer
        /// changed while the enum still holds it is copied first, so every appended segment
        /// would copy the whole response so far.
        case modifying
    }

    public let configuration: Configuration
    private(set) var state: State = .idle
    /// The negotiated parameters, once connected.
    public private(set) var parameters: HDLCParameters = .defaults
    private var sendSequence: UInt8 = 0      // V(S)
    private var receiveSequence: UInt8 = 0   // V(R)
    private var lastSent: ByteBuffer?
    private var retries = 0
    private var decoder = HDLCFrameDecoder()
    private var inbound = ByteBuffer()

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// Whether an APDU can be sent now.
    public var isReady: Bool {
        if case .ready = state { return true }
        return false
    }

    /// Bytes the frame decoder skipped as garbage.
    public var discardedBytes: Int { decoder.discardedBytes }

    // MARK: - Commands from the client

    /// Opens the link: SNRM.
    ///
    /// - Throws: `DLMSLinkError.invalidState` unless the link is new; `invalidParameter` for
    ///   proposed parameters out of range.
    public mutating func connect() throws -> [Action] {
        guard case .idle = state else { throw DLMSLinkError.invalidState("connect() on a link that is \(state)") }
        try configuration.proposedParameters.validate()
        let info = configuration.sendsParameters
            ? configuration.proposedParameters.encoded(options: configuration.parameterEncoding)
            : ByteBuffer()
        state = .connecting
        return transmit(.setNormalResponseMode(pollFinal: true), information: info)
    }

    /// Sends one APDU and waits for its response.
    ///
    /// - Throws: `DLMSLinkError.invalidState` unless the link is connected and idle.
    public mutating func send(_ apdu: ByteBuffer) throws -> [Action] {
        guard case .ready = state else { throw DLMSLinkError.invalidState("send() on a link that is \(state)") }
        var message = ByteBuffer()
        message.reserveCapacity(apdu.readableBytes + HDLCLLCHeader.length)
        HDLCLLCHeader.command.encode(into: &message)
        message.writeImmutableBuffer(apdu)
        let size = parameters.maximumInformationLengthTransmit
        var segments: [ByteBuffer] = []
        segments.reserveCapacity((message.readableBytes + size - 1) / size)
        while message.readableBytes > 0 {
            segments.append(message.readSlice(length: min(size, message.readableBytes))!)
        }
        return sendNextSegment(of: segments[...])
    }

    /// Closes the link: DISC, then UA or DM.
    public mutating func disconnect() -> [Action] {
        switch state {
        case .idle, .closed:
            state = .closed
            return [.closed(nil)]
        case .disconnecting:
            return []
        case .connecting, .ready, .awaitingAcknowledgement, .awaitingResponse:
            state = .disconnecting
            return transmit(.disconnect(pollFinal: true))
        case .modifying:
            preconditionFailure("disconnect() while the state is being modified")
        }
    }

    // MARK: - Events from the transport

    /// Bytes arrived from the transport.
    public mutating func receive(_ bytes: ByteBuffer) -> [Action] {
        inbound.writeImmutableBuffer(bytes)
        var actions: [Action] = []
        while true {
            let frame: HDLCFrame?
            do {
                frame = try decoder.decode(buffer: &inbound)
            } catch let error as DLMSLinkError {
                actions += fail(error)
                break
            } catch {
                actions += fail(.malformedFrame("\(error)"))
                break
            }
            guard let frame else { break }
            actions += frameReceived(frame)
            if case .closed = state { break }
        }
        inbound.discardReadBytes()
        return actions
    }

    /// A decoded frame arrived.
    public mutating func frameReceived(_ frame: HDLCFrame) -> [Action] {
        guard Self.sameAddress(frame.destination, configuration.clientAddress),
              Self.sameAddress(frame.source, configuration.serverAddress)
        else { return [] }

        // State by state, then frame by frame, both exhaustive: a new state or frame type must
        // be decided on, not fall through a catch-all.
        switch state {
        case .idle, .closed:
            return []

        case .connecting:
            switch frame.control {
            case .unnumberedAcknowledge:
                return connected(by: frame)
            case .disconnectedMode, .frameReject:
                return closedByPeer(frame)
            case .information, .receiveReady, .receiveNotReady, .setNormalResponseMode, .disconnect, .unnumberedInformation:
                return []
            }

        case .disconnecting:
            switch frame.control {
            case .unnumberedAcknowledge, .disconnectedMode:
                state = .closed
                return [.cancelTimer, .closed(nil)]
            case .information, .receiveReady, .receiveNotReady, .setNormalResponseMode, .disconnect, .frameReject, .unnumberedInformation:
                return []
            }

        case .ready:
            switch frame.control {
            case .information(let ns, _, _):
                if ns == (receiveSequence &+ 7) & 7 {
                    // A repeat of the last response: our RR or the next request was lost. Acknowledge again.
                    return [.send(encode(.receiveReady(receiveSequence: receiveSequence, pollFinal: true)))]
                }
                return fail(.unexpectedFrame("I-frame N(S)=\(ns) while no request is outstanding"))
            case .disconnectedMode, .frameReject:
                return closedByPeer(frame)
            case .receiveReady, .receiveNotReady, .setNormalResponseMode, .disconnect, .unnumberedAcknowledge, .unnumberedInformation:
                return []
            }

        case .awaitingAcknowledgement(let remaining):
            switch frame.control {
            case .receiveReady(let nr, _):
                if nr == sendSequence {
                    return sendNextSegment(of: remaining)
                }
                if nr == (sendSequence &+ 7) & 7 {
                    return retransmit()
                }
                return fail(.sequenceError("RR N(R)=\(nr), expected \(sendSequence)"))
            case .receiveNotReady:
                return [.startTimer(configuration.responseTimeout)]
            case .information(let ns, let nr, _):
                return fail(.sequenceError("I-frame N(S)=\(ns) N(R)=\(nr) before the request was complete"))
            case .disconnectedMode, .frameReject:
                return closedByPeer(frame)
            case .setNormalResponseMode, .disconnect, .unnumberedAcknowledge, .unnumberedInformation:
                return []
            }

        case .awaitingResponse(var reassembly):
            switch frame.control {
            case .information(let ns, let nr, let final):
                if ns == (receiveSequence &+ 7) & 7 && reassembly.readableBytes > 0 {
                    // The server repeats a segment because our RR was lost.
                    return [.send(encode(.receiveReady(receiveSequence: receiveSequence, pollFinal: true))),
                            .startTimer(configuration.responseTimeout)]
                }
                guard ns == receiveSequence, nr == sendSequence else {
                    return fail(.sequenceError("I-frame N(S)=\(ns) N(R)=\(nr), expected N(S)=\(receiveSequence) N(R)=\(sendSequence)"))
                }
                guard reassembly.readableBytes + frame.information.readableBytes <= configuration.maximumMessageLength else {
                    return fail(.lengthLimitExceeded("response exceeds \(configuration.maximumMessageLength) bytes"))
                }
                receiveSequence = (receiveSequence &+ 1) & 7
                // The buffer leaves the state before it grows, so it is the only reference and
                // the append does not copy what was received so far.
                state = .modifying
                reassembly.writeImmutableBuffer(frame.information)
                if frame.segmented {
                    state = .awaitingResponse(reassembly: reassembly)
                    // With a receive window above 1 the server sends several frames and sets F on
                    // the last one of its turn; only then is it our turn to acknowledge.
                    guard final else { return [.startTimer(configuration.responseTimeout)] }
                    return transmit(.receiveReady(receiveSequence: receiveSequence, pollFinal: true))
                }
                do {
                    _ = try HDLCLLCHeader.decode(from: &reassembly)
                } catch let error as DLMSLinkError {
                    return fail(error)
                } catch {
                    return fail(.malformedFrame("\(error)"))
                }
                return becomeReady() + [.deliver(reassembly)]
            case .receiveNotReady:
                return [.startTimer(configuration.responseTimeout)]
            case .disconnectedMode, .frameReject:
                return closedByPeer(frame)
            case .receiveReady, .setNormalResponseMode, .disconnect, .unnumberedAcknowledge, .unnumberedInformation:
                return []
            }

        case .modifying:
            preconditionFailure("frameReceived(_:) while the state is being modified")
        }
    }

    /// The timer from the last `startTimer` expired.
    public mutating func timerFired() -> [Action] {
        switch state {
        case .idle, .closed:
            return []
        case .ready:
            state = .closed
            return [.send(encode(.disconnect(pollFinal: true))),
                    .closed(.inactivityTimeout("no traffic for \(configuration.inactivityTimeout.map { "\($0)" } ?? "?")"))]
        case .connecting, .awaitingAcknowledgement, .awaitingResponse, .disconnecting:
            guard retries < configuration.maximumRetries else {
                let what = switch state {
                case .connecting: "UA to SNRM"
                case .disconnecting: "UA to DISC"
                case .awaitingAcknowledgement, .awaitingResponse, .idle, .ready, .closed, .modifying: "response"
                }
                state = .closed
                return [.closed(.timeout("no \(what) after \(configuration.maximumRetries + 1) attempt(s)"))]
            }
            retries += 1
            return retransmit()
        case .modifying:
            preconditionFailure("timerFired() while the state is being modified")
        }
    }

    /// The transport closed.
    public mutating func transportClosed() -> [Action] {
        switch state {
        case .closed:
            return []
        case .disconnecting, .idle:
            state = .closed
            return [.cancelTimer, .closed(nil)]
        case .connecting, .ready, .awaitingAcknowledgement, .awaitingResponse:
            let what = "\(state)"
            state = .closed
            return [.cancelTimer, .closed(.connectionClosed("the transport closed while the link was \(what)"))]
        case .modifying:
            preconditionFailure("transportClosed() while the state is being modified")
        }
    }

    // MARK: - Helpers

    static func sameAddress(_ a: HDLCAddress, _ b: HDLCAddress) -> Bool {
        a.upper == b.upper && (a.lower ?? 0) == (b.lower ?? 0)
    }

    private func encode(_ control: HDLCControl, information: ByteBuffer = ByteBuffer(), segmented: Bool = false) -> ByteBuffer {
        HDLCFrame(destination: configuration.serverAddress, source: configuration.clientAddress,
                  control: control, segmented: segmented, information: information).encoded
    }

    /// Sends a frame that expects an answer: remembered for retransmission, timer started.
    private mutating func transmit(_ control: HDLCControl, information: ByteBuffer = ByteBuffer(), segmented: Bool = false) -> [Action] {
        let bytes = encode(control, information: information, segmented: segmented)
        lastSent = bytes
        retries = 0
        return [.send(bytes), .startTimer(configuration.responseTimeout)]
    }

    private mutating func retransmit() -> [Action] {
        guard let lastSent else { return [] }
        return [.send(lastSent), .startTimer(configuration.responseTimeout)]
    }

    /// Sends the first of `segments`; the rest wait in the state for the server's RR. A slice,
    /// so taking the next segment does not copy the ones after it.
    private mutating func sendNextSegment(of segments: ArraySlice<ByteBuffer>) -> [Action] {
        guard let first = segments.first else { return [] }
        let rest = segments.dropFirst()
        let control = HDLCControl.information(sendSequence: sendSequence, receiveSequence: receiveSequence, pollFinal: true)
        sendSequence = (sendSequence &+ 1) & 7
        state = rest.isEmpty ? .awaitingResponse(reassembly: ByteBuffer()) : .awaitingAcknowledgement(remaining: rest)
        return transmit(control, information: first, segmented: !rest.isEmpty)
    }

    /// The UA to our SNRM: the link is up with the negotiated parameters.
    private mutating func connected(by frame: HDLCFrame) -> [Action] {
        var info = frame.information
        let response: HDLCParameters?
        do {
            response = info.readableBytes > 0 ? try HDLCParameters.decode(from: &info) : nil
        } catch let error as DLMSLinkError {
            return fail(error)
        } catch {
            return fail(.malformedFrame("UA parameters: \(error)"))
        }
        parameters = HDLCParameters.negotiated(proposal: configuration.proposedParameters, response: response)
        sendSequence = 0
        receiveSequence = 0
        return becomeReady() + [.connected(parameters)]
    }

    /// DM or FRMR from the server: the link is down, without a DISC of ours.
    private mutating func closedByPeer(_ frame: HDLCFrame) -> [Action] {
        state = .closed
        if case .frameReject = frame.control {
            return [.cancelTimer, .closed(.frameRejected("the server rejected a frame (FRMR \(Hex.encode(frame.information.readableBytesView, limit: 32))))"))]
        }
        return [.cancelTimer, .closed(.disconnectedByPeer("the server answered DM (disconnected mode)"))]
    }

    private mutating func becomeReady() -> [Action] {
        state = .ready
        lastSent = nil
        retries = 0
        if let inactivity = configuration.inactivityTimeout { return [.startTimer(inactivity)] }
        return [.cancelTimer]
    }

    /// A local protocol error: tell the server with DISC and close.
    private mutating func fail(_ error: DLMSLinkError) -> [Action] {
        state = .closed
        return [.cancelTimer, .send(encode(.disconnect(pollFinal: true))), .closed(error)]
    }
}
