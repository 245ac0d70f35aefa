import NIOCore

/// The client side of an IEC 62056-21 mode C or mode E opening as a sans-IO state machine:
/// sign-on at 300 Bd, identification, option select with a baud rate switch, then either a data
/// readout (mode C) or the hand-over to HDLC (mode E, IEC 62056-21 Annex E).
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

        public init(address: String? = nil, mode: Mode = .readout, maximumBaudRate: Int = 9600,
                    responseTimeout: Duration = .seconds(5), maximumReadoutLength: Int = 65_536) {
            self.address = address
            self.mode = mode
            self.maximumBaudRate = maximumBaudRate
            self.responseTimeout = responseTimeout
            self.maximumReadoutLength = maximumReadoutLength
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
        /// The session ended: `nil` after a readout or the switch to HDLC, else why it failed.
        case closed(DLMSLinkError?)
    }

    enum State: Sendable {
        case idle, awaitingIdentification, awaitingReadout, done
    }

    public let configuration: Configuration
    private(set) var state: State = .idle
    private var inbound = ByteBuffer()
    private var blocks: IEC21DataBlockDecoder

    public init(configuration: Configuration) {
        self.configuration = configuration
        self.blocks = IEC21DataBlockDecoder(maximumBlockLength: configuration.maximumReadoutLength)
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
        case .idle, .done:
            return []
        }
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
        let select = configuration.mode == .hdlc
            ? IEC21OptionSelect.modeE(baudRateCharacter: character)
            : IEC21OptionSelect(baudRateCharacter: character, mode: .dataReadout)
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
        }
        return actions
    }

    private mutating func finish(_ error: DLMSLinkError) -> [Action] {
        state = .done
        return [.cancelTimer, .closed(error)]
    }
}
