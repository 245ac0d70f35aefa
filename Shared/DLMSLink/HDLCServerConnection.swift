import NIOCore

/// The server (meter) side of an HDLC link (IEC 62056-46 §6.4, normal response mode, modulo 8,
/// window 1) as a sans-IO state machine, the counterpart of `HDLCConnection`.
///
/// - SNRM (in any state) resets the link and is answered with UA carrying the negotiated
///   parameters: for each value the smaller of the client's proposal and the server's limits
///   (an SNRM without information field proposes the defaults). DISC is answered with UA when
///   connected, else DM, and closes the link.
/// - Segmented request I-frames are acknowledged with RR and reassembled; a complete request is
///   stripped of its LLC header and delivered. N(S) and N(R) are checked: a repeat of the last
///   frame is answered again, anything else out of sequence with FRMR.
/// - `respond(_:)` prefixes the LLC response header and cuts the response into I-frames of the
///   negotiated transmit length; all but the last carry the segmentation bit, and each waits
///   for the client's RR (window 1). An RR with the previous N(R) polls for a lost frame and
///   makes the server repeat its last frame.
/// - Frames addressed to other servers (other meters on a multi-drop bus) are ignored; frames
///   the server cannot handle are answered with FRMR. Garbage between frames is skipped.
public struct HDLCServerConnection: Sendable {
    /// Link settings of the simulated or real server.
    public struct Configuration: Sendable {
        /// The server's own HDLC address (logical device and, on a bus, physical address).
        public var serverAddress: HDLCAddress
        /// The largest values the server accepts; each is lowered to the client's proposal.
        /// Default: 2030-byte information fields, window 1.
        public var limits: HDLCParameters
        /// How the UA parameters are written. Default: Green Book style.
        public var parameterEncoding: HDLCParameters.EncodingOptions
        /// The largest reassembled request accepted. Default: 65,536 bytes.
        public var maximumMessageLength: Int
        /// Only frames whose destination address has this size are for the server (meters that
        /// insist on four-byte addresses ignore shorter ones). Default: `nil`, any size.
        public var requiredAddressSize: HDLCAddress.Size?
        /// Whether an SNRM may carry parameters; when false such an SNRM is rejected with FRMR
        /// and only a bare SNRM (the defaults) connects. Default: true.
        public var acceptsSNRMParameters: Bool

        public init(
            serverAddress: HDLCAddress,
            limits: HDLCParameters = HDLCParameters(
                maximumInformationLengthTransmit: HDLCParameters.largestInformationLength,
                maximumInformationLengthReceive: HDLCParameters.largestInformationLength),
            parameterEncoding: HDLCParameters.EncodingOptions = .init(),
            maximumMessageLength: Int = 65_536,
            requiredAddressSize: HDLCAddress.Size? = nil,
            acceptsSNRMParameters: Bool = true
        ) {
            self.serverAddress = serverAddress
            self.limits = limits
            self.parameterEncoding = parameterEncoding
            self.maximumMessageLength = maximumMessageLength
            self.requiredAddressSize = requiredAddressSize
            self.acceptsSNRMParameters = acceptsSNRMParameters
        }
    }

    /// What the shell must do, in order.
    public enum Action: Hashable, Sendable {
        /// Write these bytes (one encoded frame) to the transport.
        case send(ByteBuffer)
        /// A complete request APDU (LLC header removed) arrived; answer with `respond(_:)`.
        case deliver(ByteBuffer)
        /// The link was disconnected (DISC); the shell may close the transport.
        case closed
    }

    enum State: Sendable {
        case disconnected
        /// Connected, collecting a (possibly segmented) request.
        case receiving(reassembly: ByteBuffer)
        /// A complete request was delivered; waiting for `respond(_:)`.
        case processing
        /// Waiting for the RR that acknowledges a non-final response segment.
        case sending(remaining: ArraySlice<ByteBuffer>)
        /// Only while a payload is taken out to be changed (postgres-nio's idiom): a buffer
        /// changed while the enum still holds it is copied first, so every appended segment
        /// would copy the whole request so far.
        case modifying
    }

    public let configuration: Configuration
    private(set) var state: State = .disconnected
    /// The negotiated parameters, seen from the server.
    public private(set) var parameters: HDLCParameters = .defaults
    /// The connected client's address.
    public private(set) var clientAddress: HDLCAddress?
    private var sendSequence: UInt8 = 0      // V(S)
    private var receiveSequence: UInt8 = 0   // V(R)
    private var lastSent: ByteBuffer?
    private var decoder = HDLCFrameDecoder()
    private var inbound = ByteBuffer()

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// Whether the link is connected (between SNRM and DISC).
    public var isConnected: Bool {
        if case .disconnected = state { return false }
        return true
    }

    /// Whether a delivered request waits for `respond(_:)`.
    public var isProcessing: Bool {
        if case .processing = state { return true }
        return false
    }

    /// Bytes the frame decoder skipped as garbage.
    public var discardedBytes: Int { decoder.discardedBytes }

    // MARK: - Events

    /// Bytes arrived from the transport.
    public mutating func receive(_ bytes: ByteBuffer) -> [Action] {
        inbound.writeImmutableBuffer(bytes)
        var actions: [Action] = []
        while true {
            do {
                guard let frame = try decoder.decode(buffer: &inbound) else { break }
                actions += frameReceived(frame)
            } catch {
                // A frame with good checksums but content DLMS does not allow (REJ, RR with data).
                if isConnected, clientAddress != nil { actions += reject() }
            }
        }
        inbound.discardReadBytes()
        return actions
    }

    /// A decoded frame arrived.
    public mutating func frameReceived(_ frame: HDLCFrame) -> [Action] {
        guard HDLCConnection.sameAddress(frame.destination, configuration.serverAddress) else { return [] }
        if let size = configuration.requiredAddressSize, frame.destination.size != size { return [] }
        if let clientAddress, isConnected, !HDLCConnection.sameAddress(frame.source, clientAddress),
           frame.control != .setNormalResponseMode(pollFinal: true) {
            return []
        }

        // State by state, then frame by frame, both exhaustive: a new state or frame type must
        // be decided on, not fall through a catch-all.
        switch state {
        case .disconnected:
            switch frame.control {
            case .setNormalResponseMode:
                return connect(frame)
            case .disconnect:
                clientAddress = frame.source
                return [.send(encode(.disconnectedMode(pollFinal: true))), .closed]
            case .information, .receiveReady, .receiveNotReady, .unnumberedAcknowledge, .disconnectedMode, .frameReject, .unnumberedInformation:
                // Normal disconnected mode: every command is answered with DM.
                guard frame.control.pollFinal else { return [] }
                clientAddress = frame.source
                return [.send(encode(.disconnectedMode(pollFinal: true)))]
            }

        case .receiving(var reassembly):
            switch frame.control {
            case .setNormalResponseMode:
                return connect(frame)
            case .disconnect:
                return disconnect()
            case .information(let ns, let nr, _):
                if ns == previous(receiveSequence) {
                    return repeatLast()
                }
                guard ns == receiveSequence, nr == sendSequence else { return reject() }
                guard frame.information.readableBytes <= parameters.maximumInformationLengthReceive,
                      reassembly.readableBytes + frame.information.readableBytes <= configuration.maximumMessageLength
                else { return reject() }
                receiveSequence = (receiveSequence &+ 1) & 7
                // The buffer leaves the state before it grows, so it is the only reference and
                // the append does not copy what was received so far.
                state = .modifying
                reassembly.writeImmutableBuffer(frame.information)
                if frame.segmented {
                    state = .receiving(reassembly: reassembly)
                    return [.send(remember(encode(.receiveReady(receiveSequence: receiveSequence, pollFinal: true))))]
                }
                guard (try? HDLCLLCHeader.decode(from: &reassembly)) != nil else {
                    // Rejected: the message as a whole (its first segment carries the LLC
                    // header), so none of its segments may stay to prefix the next request.
                    state = .receiving(reassembly: ByteBuffer())
                    return reject()
                }
                state = .processing
                return [.deliver(reassembly)]
            case .receiveReady(let nr, _):
                return nr == previous(sendSequence) || nr == sendSequence ? repeatLast() : reject()
            case .receiveNotReady:
                return []
            case .unnumberedAcknowledge, .disconnectedMode, .frameReject, .unnumberedInformation:
                return reject()
            }

        case .processing:
            switch frame.control {
            case .setNormalResponseMode:
                return connect(frame)
            case .disconnect:
                return disconnect()
            case .receiveReady, .information:
                // The client polls or repeats its request before the answer is ready: nothing to say yet.
                return [.send(encode(.receiveNotReady(receiveSequence: receiveSequence, pollFinal: true)))]
            case .receiveNotReady:
                return []
            case .unnumberedAcknowledge, .disconnectedMode, .frameReject, .unnumberedInformation:
                return reject()
            }

        case .sending(let remaining):
            switch frame.control {
            case .setNormalResponseMode:
                return connect(frame)
            case .disconnect:
                return disconnect()
            case .receiveReady(let nr, _):
                if nr == sendSequence { return sendNextSegment(of: remaining) }
                if nr == previous(sendSequence) { return repeatLast() }
                return reject()
            case .information(let ns, _, _):
                return ns == previous(receiveSequence) ? repeatLast() : reject()
            case .receiveNotReady:
                return []
            case .unnumberedAcknowledge, .disconnectedMode, .frameReject, .unnumberedInformation:
                return reject()
            }

        case .modifying:
            preconditionFailure("frameReceived(_:) while the state is being modified")
        }
    }

    /// Sends the response to the request last delivered.
    ///
    /// - Throws: `DLMSLinkError.invalidState` unless a request is waiting for its response.
    public mutating func respond(_ apdu: ByteBuffer) throws -> [Action] {
        guard case .processing = state else { throw DLMSLinkError.invalidState("respond() on a link that is \(state)") }
        var message = ByteBuffer()
        message.reserveCapacity(apdu.readableBytes + HDLCLLCHeader.length)
        HDLCLLCHeader.response.encode(into: &message)
        message.writeImmutableBuffer(apdu)
        let size = parameters.maximumInformationLengthTransmit
        var segments: [ByteBuffer] = []
        segments.reserveCapacity((message.readableBytes + size - 1) / size)
        while message.readableBytes > 0 {
            segments.append(message.readSlice(length: min(size, message.readableBytes))!)
        }
        return sendNextSegment(of: segments[...])
    }

    /// The request last delivered gets no response (a server that drops it); the link waits for
    /// the next request.
    public mutating func discardRequest() {
        if case .processing = state { state = .receiving(reassembly: ByteBuffer()) }
    }

    /// The link stayed idle longer than the server's inactivity timeout (IEC 62056-46 §6.4.3.6):
    /// the server returns to disconnected mode without sending anything; the client's next
    /// frame gets DM.
    public mutating func inactivityTimeout() -> [Action] {
        guard isConnected else { return [] }
        state = .disconnected
        lastSent = nil
        return [.closed]
    }

    /// The transport closed.
    public mutating func transportClosed() -> [Action] {
        guard isConnected else { return [] }
        state = .disconnected
        return [.closed]
    }

    // MARK: - Helpers

    private mutating func connect(_ frame: HDLCFrame) -> [Action] {
        var info = frame.information
        let proposal: HDLCParameters
        if info.readableBytes == 0 {
            proposal = .defaults
        } else if !configuration.acceptsSNRMParameters {
            clientAddress = frame.source
            return reject()
        } else if let decoded = try? HDLCParameters.decode(from: &info) {
            proposal = decoded
        } else {
            clientAddress = frame.source
            return reject()
        }
        let limits = configuration.limits
        parameters = HDLCParameters(
            maximumInformationLengthTransmit: min(proposal.maximumInformationLengthReceive, limits.maximumInformationLengthTransmit),
            maximumInformationLengthReceive: min(proposal.maximumInformationLengthTransmit, limits.maximumInformationLengthReceive),
            windowSizeTransmit: min(proposal.windowSizeReceive, limits.windowSizeTransmit, 1),
            windowSizeReceive: min(proposal.windowSizeTransmit, limits.windowSizeReceive, 1)
        )
        clientAddress = frame.source
        sendSequence = 0
        receiveSequence = 0
        lastSent = nil
        state = .receiving(reassembly: ByteBuffer())
        return [.send(encode(.unnumberedAcknowledge(pollFinal: true),
                             information: parameters.encoded(options: configuration.parameterEncoding)))]
    }

    /// DISC while connected: UA, and the link is down.
    private mutating func disconnect() -> [Action] {
        state = .disconnected
        lastSent = nil
        return [.send(encode(.unnumberedAcknowledge(pollFinal: true))), .closed]
    }

    private func previous(_ sequence: UInt8) -> UInt8 { (sequence &+ 7) & 7 }

    private func encode(_ control: HDLCControl, information: ByteBuffer = ByteBuffer(), segmented: Bool = false) -> ByteBuffer {
        HDLCFrame(destination: clientAddress ?? (try! .client(0x10)), source: configuration.serverAddress,
                  control: control, segmented: segmented, information: information).encoded
    }

    private mutating func remember(_ bytes: ByteBuffer) -> ByteBuffer {
        lastSent = bytes
        return bytes
    }

    private mutating func repeatLast() -> [Action] {
        if let lastSent { return [.send(lastSent)] }
        return [.send(encode(.receiveReady(receiveSequence: receiveSequence, pollFinal: true)))]
    }

    /// Sends the first of `segments`; the rest wait in the state for the client's RR. A slice,
    /// so taking the next segment does not copy the ones after it.
    private mutating func sendNextSegment(of segments: ArraySlice<ByteBuffer>) -> [Action] {
        guard let first = segments.first else { return [] }
        let rest = segments.dropFirst()
        let control = HDLCControl.information(sendSequence: sendSequence, receiveSequence: receiveSequence, pollFinal: true)
        sendSequence = (sendSequence &+ 1) & 7
        state = rest.isEmpty ? .receiving(reassembly: ByteBuffer()) : .sending(remaining: rest)
        return [.send(remember(encode(control, information: first, segmented: !rest.isEmpty)))]
    }

    /// FRMR (IEC 62056-46 §6.4.4.4.3.9): the rejected control field, V(S) and V(R). The link
    /// stays in its state; the client decides whether to disconnect.
    private mutating func reject() -> [Action] {
        var info = ByteBuffer()
        info.writeInteger(UInt8(0))
        info.writeInteger(receiveSequence << 5 | sendSequence << 1)
        info.writeInteger(UInt8(0x01))
        return [.send(encode(.frameReject(pollFinal: true), information: info))]
    }
}
