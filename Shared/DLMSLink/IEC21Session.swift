import NIOCore

/// The client side of an IEC 62056-21 mode C or mode E opening as a sans-IO state machine:
/// sign-on at 300 Bd, identification, option select with a baud rate switch, then a data
/// readout (mode C), programming mode (mode C: password, then commands such as `R1 1.8.0()`
/// or a load-profile read, §6.3.5–6.3.8), or the hand-over to HDLC (mode E, Annex E).
///
/// Events in (`start`, `receive`, `timerFired`), actions out. The shell sends bytes at the
/// current baud rate and changes the port's rate when told; per §6.3.14 the option select is
/// still sent at 300 Bd and the switch follows it.
public struct IEC21Session: Sendable {
    public enum Mode: Hashable, Sendable {
        /// Mode C data readout.
        case readout
        /// Mode E: switch to HDLC (the device must announce `\2`).
        case hdlc
        /// Mode C programming mode; the password answers the device's `P0` prompt (`nil` when
        /// the device asks for none).
        case programming(password: String?)
    }

    public struct Configuration: Sendable {
        /// The device address for the sign-on, `nil` for point-to-point.
        public var address: String?
        public var mode: Mode
        /// The fastest rate the port supports. Default: 9600.
        public var maximumBaudRate: Int
        /// Time allowed for the identification and for each part of the readout. Default: 5 s.
        public var responseTimeout: Duration
        /// The largest readout accepted. Default: 65,536 bytes.
        public var maximumReadoutLength: Int
        /// The opening, the readout, or one command with every partial block of its answer: a
        /// device that keeps answering (each part in time) fails with a timeout here. Default: 120 s.
        public var requestTimeout: Duration

        public init(address: String? = nil, mode: Mode = .readout, maximumBaudRate: Int = 9600,
                    responseTimeout: Duration = .seconds(5), maximumReadoutLength: Int = 65_536, requestTimeout: Duration = .seconds(120)) {
            self.address = address
            self.mode = mode
            self.maximumBaudRate = maximumBaudRate
            self.responseTimeout = responseTimeout
            self.maximumReadoutLength = maximumReadoutLength
            self.requestTimeout = requestTimeout
        }
    }

    public enum Action: Hashable, Sendable {
        case send(ByteBuffer)
        /// Change the port's baud rate now.
        case switchBaudRate(Int)
        case startTimer(Duration)
        case cancelTimer
        /// The device identified itself.
        case identified(IEC21Identification)
        /// The data readout (mode C).
        case deliver(IEC21DataBlock)
        /// The port now carries HDLC frames (mode E): hand it to an `HDLCConnection`.
        case enteredHDLC
        /// Programming mode is open (after the password was accepted): send commands with
        /// `command(_:)`. `operand` is the device's `P0` operand, often its serial number.
        case enteredProgramming(operand: String?)
        /// The device's answer to a programming command: `acknowledged`, or `data` (partial
        /// blocks already joined).
        case reply(IEC21Reply)
        /// The session ended: `nil` after a readout or the switch to HDLC, else why it failed.
        case closed(DLMSLinkError?)
    }

    enum State: Sendable {
        case idle, awaitingIdentification, awaitingReadout
        case awaitingPasswordPrompt, awaitingPasswordAcknowledgement
        /// Programming mode, no command outstanding.
        case programming
        case awaitingReply
        case done
    }

    /// How often a command the device answered with NAK is sent again (§6.3.7 allows repetition).
    static let maximumRepetitions = 2

    public let configuration: Configuration
    private(set) var state: State = .idle
    private var inbound = ByteBuffer()
    private var blocks: IEC21DataBlockDecoder
    private var replies: IEC21ReplyDecoder
    /// The command (or password message) awaiting an answer, for repetition after NAK.
    private var outstanding: IEC21Command?
    private var repetitions = 0
    /// Data of partial blocks (ending EOT) received so far for the outstanding command.
    private var partialData = ByteBuffer()
    private var operand: String?

    public init(configuration: Configuration) {
        self.configuration = configuration
        self.blocks = IEC21DataBlockDecoder(maximumBlockLength: configuration.maximumReadoutLength)
        self.replies = IEC21ReplyDecoder(maximumBlockLength: configuration.maximumReadoutLength)
    }

    /// Whether programming mode is open and no command is outstanding.
    public var isReadyForCommand: Bool { if case .programming = state { true } else { false } }

    /// Sends a programming-mode command; its answer arrives as `.reply`.
    ///
    /// - Throws: `DLMSLinkError.invalidState` unless programming mode is open with no command outstanding.
    public mutating func command(_ command: IEC21Command) throws -> [Action] {
        guard case .programming = state else { throw DLMSLinkError.invalidState("no IEC 62056-21 programming session ready for a command") }
        state = .awaitingReply
        return transmit(command)
    }

    /// Leaves programming mode with `B0` (complete sign-off) and closes the session.
    public mutating func exit() -> [Action] {
        switch state {
        case .programming, .awaitingReply, .awaitingPasswordAcknowledgement, .awaitingPasswordPrompt:
            var out = ByteBuffer()
            IEC21Command.exit.encode(into: &out)
            state = .done
            return [.cancelTimer, .send(out), .closed(nil)]
        case .idle, .awaitingIdentification, .awaitingReadout, .done:
            state = .done
            return [.cancelTimer, .closed(nil)]
        }
    }

    private mutating func transmit(_ command: IEC21Command) -> [Action] {
        outstanding = command
        repetitions = 0
        partialData.clear()
        var out = ByteBuffer()
        command.encode(into: &out)
        return [.send(out), .startTimer(configuration.responseTimeout)]
    }

    /// Sends the sign-on request.
    ///
    /// - Throws: `DLMSLinkError.invalidState` when already started, `invalidParameter` for a bad address.
    public mutating func start() throws -> [Action] {
        guard case .idle = state else { throw DLMSLinkError.invalidState("IEC 62056-21 session already started") }
        var out = ByteBuffer()
        try IEC21SignOnRequest(address: configuration.address).encode(into: &out)
        state = .awaitingIdentification
        return [.send(out), .startTimer(configuration.responseTimeout)]
    }

    public mutating func receive(_ bytes: ByteBuffer) -> [Action] {
        inbound.writeImmutableBuffer(bytes)
        defer { inbound.discardReadBytes() }
        do {
            switch state {
            case .idle, .done:
                return []
            case .awaitingIdentification:
                while true {
                    // Skip noise before the '/', and the echo of our own request ("/?…!CR LF")
                    // that two-wire lines and optical heads return.
                    let view = inbound.readableBytesView
                    guard let slash = view.firstIndex(of: UInt8(ascii: "/")) else {
                        inbound.moveReaderIndex(to: inbound.writerIndex)
                        return []
                    }
                    inbound.moveReaderIndex(forwardBy: slash - view.startIndex)
                    guard let next = inbound.getInteger(at: inbound.readerIndex + 1, as: UInt8.self) else { return [] }
                    if next == UInt8(ascii: "?") {
                        guard let lf = inbound.readableBytesView.firstIndex(of: 0x0A) else {
                            guard inbound.readableBytes <= IEC21Identification.maximumLength else {
                                throw DLMSLinkError.lengthLimitExceeded("IEC 62056-21 echo without line end")
                            }
                            return []
                        }
                        inbound.moveReaderIndex(forwardBy: lf - inbound.readableBytesView.startIndex + 1)
                        continue
                    }
                    guard let id = try IEC21Identification.decode(from: &inbound) else { return [] }
                    return try identified(id)
                }
            case .awaitingReadout:
                guard let block = try blocks.decode(buffer: &inbound) else { return [] }
                guard !block.isPartial else {
                    return finish(.unsupported("partial readout blocks (EOT) are not supported"))
                }
                state = .done
                return [.cancelTimer, .deliver(block), .closed(nil)]
            case .awaitingPasswordPrompt, .awaitingPasswordAcknowledgement, .awaitingReply, .programming:
                var actions: [Action] = []
                while let reply = try replies.decode(buffer: &inbound) {
                    actions += try programmingReply(reply)
                    if case .done = state { break }
                }
                return actions
            }
        } catch let error as DLMSLinkError {
            return finish(error)
        } catch {
            return finish(.malformedFrame("\(error)"))
        }
    }

    public mutating func timerFired() -> [Action] {
        switch state {
        case .awaitingIdentification:
            return finish(.timeout("no IEC 62056-21 identification"))
        case .awaitingReadout:
            return finish(.timeout("IEC 62056-21 readout incomplete"))
        case .awaitingPasswordPrompt:
            return finish(.timeout("no IEC 62056-21 password prompt (P0) after the programming-mode option select"))
        case .awaitingPasswordAcknowledgement:
            return finish(.timeout("no answer to the IEC 62056-21 password"))
        case .awaitingReply:
            return finish(.timeout("no answer to the IEC 62056-21 command \(outstanding.map(Self.describe) ?? "")"))
        case .idle, .programming, .done:
            return []
        }
    }

    // MARK: - Programming mode (§6.3.5–6.3.8)

    private mutating func programmingReply(_ reply: IEC21Reply) throws -> [Action] {
        switch (state, reply) {
        case (.awaitingPasswordPrompt, .command(let prompt)) where prompt.identifier == .password:
            operand = prompt.data.map(Self.unparenthesised)
            guard case .programming(let password?) = configuration.mode else {
                state = .programming
                return [.cancelTimer, .enteredProgramming(operand: operand)]
            }
            state = .awaitingPasswordAcknowledgement
            return transmit(try IEC21Command.password(password))
        case (.awaitingPasswordAcknowledgement, .acknowledged):
            state = .programming
            outstanding = nil
            return [.cancelTimer, .enteredProgramming(operand: operand)]
        case (.awaitingPasswordAcknowledgement, .data(let block)):
            return finish(.refused("the device refused the password: \(Self.text(block.data))"))
        case (.awaitingReply, .acknowledged):
            state = .programming
            outstanding = nil
            return [.cancelTimer, .reply(.acknowledged)]
        case (.awaitingReply, .data(let block)):
            partialData.writeImmutableBuffer(block.data)
            guard partialData.readableBytes <= configuration.maximumReadoutLength else {
                return finish(.lengthLimitExceeded("IEC 62056-21 answer exceeds \(configuration.maximumReadoutLength) bytes"))
            }
            if block.isPartial {
                // §6.3.8: ACK asks for the next partial block.
                return [.send(ByteBuffer(bytes: [0x06])), .startTimer(configuration.responseTimeout)]
            }
            state = .programming
            outstanding = nil
            let whole = IEC21DataBlock(data: partialData)
            partialData = ByteBuffer()
            return [.cancelTimer, .reply(.data(whole))]
        case (.awaitingPasswordAcknowledgement, .notAcknowledged), (.awaitingReply, .notAcknowledged):
            guard let command = outstanding, repetitions < Self.maximumRepetitions else {
                let what = state == .awaitingPasswordAcknowledgement ? "the password" : outstanding.map(Self.describe) ?? "the command"
                return finish(.refused("the device answered NAK to \(what)"))
            }
            repetitions += 1
            partialData.clear()
            var out = ByteBuffer()
            command.encode(into: &out)
            return [.send(out), .startTimer(configuration.responseTimeout)]
        case (.awaitingPasswordAcknowledgement, .command(let command)) where command.identifier == .exit:
            return finish(.refused("the device refused the password and left programming mode"))
        case (_, .command(let command)) where command.identifier == .exit:
            return finish(.disconnectedByPeer("the device left programming mode (B\(String(UnicodeScalar(command.type))))"))
        default:
            return finish(.unexpectedFrame("IEC 62056-21 \(reply) while \(state)"))
        }
    }

    static func describe(_ command: IEC21Command) -> String {
        "\(String(UnicodeScalar(command.identifier.rawValue)))\(String(UnicodeScalar(command.type)))"
            + (command.identifier == .password ? "" : command.data.map { " \($0)" } ?? "")
    }

    static func unparenthesised(_ text: String) -> String {
        text.hasPrefix("(") && text.hasSuffix(")") && text.count >= 2 ? String(text.dropFirst().dropLast()) : text
    }

    static func text(_ data: ByteBuffer) -> String {
        String(decoding: data.readableBytesView.prefix(64).filter { $0 >= 0x20 && $0 < 0x7F }, as: UTF8.self)
    }

    private mutating func identified(_ id: IEC21Identification) throws -> [Action] {
        guard let offered = id.baudRate,
              id.baudRateCharacter >= UInt8(ascii: "0"), id.baudRateCharacter <= UInt8(ascii: "6")
        else {
            return finish(.unsupported("baud rate character '\(String(UnicodeScalar(id.baudRateCharacter)))' is not mode C/E"))
        }
        if configuration.mode == .hdlc && !id.supportsModeE {
            return finish(.unsupported("the device \(id.manufacturer) \(id.identification) does not offer mode E"))
        }
        // The fastest rate both sides support; characters 0…6 are 300·2^n.
        var character = id.baudRateCharacter
        while let rate = IEC21BaudRate.rate(for: character), rate > configuration.maximumBaudRate, character > UInt8(ascii: "0") {
            character -= 1
        }
        let rate = IEC21BaudRate.rate(for: character) ?? offered
        let select: IEC21OptionSelect
        switch configuration.mode {
        case .hdlc: select = .modeE(baudRateCharacter: character)
        case .readout: select = IEC21OptionSelect(baudRateCharacter: character, mode: .dataReadout)
        case .programming: select = IEC21OptionSelect(baudRateCharacter: character, mode: .programming)
        }
        var out = ByteBuffer()
        select.encode(into: &out)
        var actions: [Action] = [.identified(id), .send(out), .switchBaudRate(rate)]
        switch configuration.mode {
        case .hdlc:
            state = .done
            actions += [.cancelTimer, .enteredHDLC, .closed(nil)]
        case .readout:
            state = .awaitingReadout
            actions.append(.startTimer(configuration.responseTimeout))
        case .programming:
            state = .awaitingPasswordPrompt
            actions.append(.startTimer(configuration.responseTimeout))
        }
        return actions
    }

    private mutating func finish(_ error: DLMSLinkError) -> [Action] {
        state = .done
        return [.cancelTimer, .closed(error)]
    }
}
