import NIOCore

/// What an IEC 62056-21 device reports, for `IEC21ServerSession`. The device reads its own
/// clock: the session never asks for the time, so an implementation decides what "now" is.
public protocol IEC21ServerDevice: Sendable {
    /// Whether the device answers a sign-on with this address (`nil`: the request had none).
    func answersSignOn(address: String?) -> Bool
    /// The data lines of a mode C readout, each a data set such as `1.8.0(012345.678*kWh)`,
    /// without the closing `!` line.
    func readoutLines() -> [String]
    /// The operand of the `P0` message sent on entering programming mode (e.g. the serial number).
    var passwordOperand: String { get }
    /// Whether `P1 (password)` opens the device for reading.
    func acceptsPassword(_ password: String) -> Bool
    /// The answer to `R1 address()`: the data set `address(value*unit)`, or `nil` when the
    /// device has no such data set.
    func read(_ address: String) -> String?
    /// A manufacturer-specific read (`R2`…`R9` with any data, e.g. EMH's `R5 P.01(from;to)`):
    /// the data lines of the answer, or `nil` when the device does not implement it.
    func readManufacturerSpecific(type: UInt8, data: String) -> [String]?
}

/// The device (meter) side of IEC 62056-21 mode C and mode E as a sans-IO state machine, the
/// counterpart of `IEC21Session`:
///
/// - idle at 300 Bd: a sign-on `/?address!CR LF` the device answers (§6.3.1) gets the
///   identification `/XXXZ\W…Ident CR LF` (§6.3.2);
/// - the option select `ACK V Z Y CR LF` (§6.3.3) switches to the baud rate `Z` (capped at the
///   device's) and then: `Y = 0` sends the data readout `STX data ! CR LF ETX BCC` and returns
///   to idle at 300 Bd; `Y = 1` enters programming mode with `SOH P0 STX (operand) ETX BCC`;
///   `V = 2, Y = 2` hands the line to HDLC (mode E, Annex E) and the session ends;
/// - programming mode (§6.3.5–6.3.8): `P1 (password)` → ACK, or `B0` (break) for a wrong
///   password; `R1 address()` → `STX address(value*unit) ETX BCC`; `R2`…`R9` →
///   manufacturer-specific answers; anything the device cannot do → `STX (ERROR) ETX BCC`;
///   a wrong BCC → NAK; `B0`/`B1` → back to idle at 300 Bd.
///
/// Reads require the password first (a password-protected meter). The shell writes `send`
/// bytes at the current rate and changes the rate when told, in order; it calls
/// `inactivityTimeout()` when the line stays silent (IEC 62056-21: 60…120 s in programming
/// mode, 1.5 s for the option select).
public struct IEC21ServerSession: Sendable {
    public struct Configuration: Sendable {
        /// The three-letter FLAG manufacturer id of the identification. Default: `SIM`.
        public var manufacturer: String
        /// The highest baud rate character offered (`0`…`6`). Default: `5` (9600 Bd).
        public var baudRateCharacter: UInt8
        /// Whether the identification announces mode E (`\2`) and option selects `2 Z 2` are accepted. Default: true.
        public var supportsModeE: Bool
        /// The identification text after the capabilities (up to 16 characters).
        public var identification: String

        public init(manufacturer: String = "SIM", baudRateCharacter: UInt8 = UInt8(ascii: "5"), supportsModeE: Bool = true, identification: String) {
            self.manufacturer = manufacturer
            self.baudRateCharacter = baudRateCharacter
            self.supportsModeE = supportsModeE
            self.identification = identification
        }
    }

    public enum Action: Hashable, Sendable {
        /// Write these bytes at the current baud rate.
        case send(ByteBuffer)
        /// Switch the line to this rate once the bytes before have been written.
        case switchBaudRate(Int)
        /// Mode E: from now on the line carries HDLC frames (8N1) for this device.
        case enteredHDLC
        /// The exchange is over; the device is idle at 300 Bd again.
        case ended
    }

    enum State: Hashable, Sendable {
        case idle
        case awaitingOptionSelect
        case programming(authorised: Bool)
        case hdlc
    }

    public static let initialBaudRate = 300
    static let soh: UInt8 = 0x01
    static let ack: UInt8 = 0x06
    static let nak: UInt8 = 0x15
    /// The longest sign-on or command accepted before the input is dropped as noise.
    static let maximumMessageLength = 2048

    public let configuration: Configuration
    let device: any IEC21ServerDevice
    private(set) var state: State = .idle
    private var inbound = ByteBuffer()

    public init(configuration: Configuration, device: any IEC21ServerDevice) {
        self.configuration = configuration
        self.device = device
    }

    /// Whether the device is in its initial state (waiting for a sign-on at 300 Bd).
    public var isIdle: Bool { state == .idle }
    /// Whether the line was handed to HDLC (mode E).
    public var isInHDLC: Bool { state == .hdlc }

    // MARK: - Events

    /// Bytes arrived from the line.
    public mutating func receive(_ bytes: ByteBuffer) -> [Action] {
        guard state != .hdlc else { return [] }
        inbound.writeImmutableBuffer(bytes)
        defer { inbound.discardReadBytes() }
        var actions: [Action] = []
        while true {
            let step: [Action]?
            switch state {
            case .idle: step = signOn()
            case .awaitingOptionSelect: step = optionSelect()
            case .programming(let authorised): step = command(authorised: authorised)
            case .hdlc: step = nil
            }
            guard let step else { break }
            actions += step
        }
        if inbound.readableBytes > Self.maximumMessageLength { inbound.moveReaderIndex(to: inbound.writerIndex) }
        return actions
    }

    /// The line stayed silent too long: back to idle at 300 Bd.
    public mutating func inactivityTimeout() -> [Action] {
        switch state {
        case .idle: return []
        case .awaitingOptionSelect:
            state = .idle
            inbound.clear()
            return [.ended]
        case .programming, .hdlc:
            state = .idle
            inbound.clear()
            return [.switchBaudRate(Self.initialBaudRate), .ended]
        }
    }

    /// The HDLC link of a mode E session ended (DISC, or the shell gave up): back to idle.
    public mutating func hdlcEnded() -> [Action] {
        guard state == .hdlc else { return [] }
        state = .idle
        inbound.clear()
        return [.switchBaudRate(Self.initialBaudRate), .ended]
    }

    // MARK: - Opening (IEC 62056-21 §6.3.1–6.3.3)

    /// `/?address!CR LF`; `nil` when no complete request is buffered.
    private mutating func signOn() -> [Action]? {
        let view = inbound.readableBytesView
        guard let slash = view.firstIndex(of: UInt8(ascii: "/")) else {
            inbound.moveReaderIndex(to: inbound.writerIndex)
            return nil
        }
        inbound.moveReaderIndex(forwardBy: slash - view.startIndex)
        guard let end = inbound.readableBytesView.firstIndex(of: 0x0A) else { return nil }
        let line = Array(inbound.readableBytesView[inbound.readableBytesView.startIndex...end])
        inbound.moveReaderIndex(forwardBy: line.count)
        // "/?" address "!" CR LF
        guard line.count >= 5, line[1] == UInt8(ascii: "?"), line[line.count - 3] == UInt8(ascii: "!"), line[line.count - 2] == 0x0D else {
            return []
        }
        let addressBytes = line[2..<(line.count - 3)]
        let address = addressBytes.isEmpty ? nil : String(decoding: addressBytes, as: UTF8.self)
        guard device.answersSignOn(address: address) else { return [] }
        state = .awaitingOptionSelect
        var out = ByteBuffer()
        out.writeString("/" + configuration.manufacturer)
        out.writeInteger(configuration.baudRateCharacter)
        if configuration.supportsModeE { out.writeString("\\2") }
        out.writeString(configuration.identification + "\r\n")
        return [.send(out)]
    }

    /// `ACK V Z Y CR LF`; `nil` when no complete message is buffered.
    private mutating func optionSelect() -> [Action]? {
        let view = inbound.readableBytesView
        if let slash = view.firstIndex(of: UInt8(ascii: "/")), view.firstIndex(of: Self.ack).map({ slash < $0 }) ?? true {
            // A new sign-on instead of the option select: start over.
            state = .idle
            return []
        }
        guard let ack = view.firstIndex(of: Self.ack) else {
            inbound.moveReaderIndex(to: inbound.writerIndex)
            return nil
        }
        inbound.moveReaderIndex(forwardBy: ack - view.startIndex)
        guard inbound.readableBytes >= 6 else { return nil }
        let message = Array(inbound.readableBytesView.prefix(6))
        inbound.moveReaderIndex(forwardBy: 6)
        let (control, character, mode) = (message[1], message[2], message[3])
        guard message[4] == 0x0D, message[5] == 0x0A, let requested = IEC21BaudRate.rate(for: character),
              character >= UInt8(ascii: "0"), character <= UInt8(ascii: "6")
        else {
            state = .idle
            return [.ended]
        }
        let rate = min(requested, IEC21BaudRate.rate(for: configuration.baudRateCharacter) ?? requested)
        switch (control, mode) {
        case (UInt8(ascii: "0"), UInt8(ascii: "0")), (UInt8(ascii: "1"), UInt8(ascii: "0")):
            state = .idle
            var data = ByteBuffer()
            for line in device.readoutLines() { data.writeString(line + "\r\n") }
            data.writeString("!\r\n")
            return [.switchBaudRate(rate), .send(Self.dataBlock(data)), .switchBaudRate(Self.initialBaudRate), .ended]
        case (UInt8(ascii: "0"), UInt8(ascii: "1")), (UInt8(ascii: "1"), UInt8(ascii: "1")):
            state = .programming(authorised: false)
            return [.switchBaudRate(rate), .send(Self.commandMessage("P0", data: "(\(device.passwordOperand))"))]
        case (UInt8(ascii: "2"), UInt8(ascii: "2")) where configuration.supportsModeE:
            state = .hdlc
            inbound.clear()
            return [.switchBaudRate(rate), .enteredHDLC]
        default:
            state = .idle
            return [.ended]
        }
    }

    // MARK: - Programming mode (IEC 62056-21 §6.3.5–6.3.8)

    /// `SOH C D [STX data] ETX BCC`; `nil` when no complete command is buffered.
    private mutating func command(authorised: Bool) -> [Action]? {
        let view = inbound.readableBytesView
        guard let soh = view.firstIndex(of: Self.soh) else {
            inbound.moveReaderIndex(to: inbound.writerIndex)
            return nil
        }
        inbound.moveReaderIndex(forwardBy: soh - view.startIndex)
        let message = inbound.readableBytesView
        guard let etx = message.firstIndex(of: IEC21DataBlock.etx) else { return nil }
        guard etx + 1 < message.endIndex else { return nil }
        let body = Array(message[(message.startIndex + 1)...etx])   // C D [STX data] ETX
        let bcc = message[etx + 1]
        inbound.moveReaderIndex(forwardBy: etx + 2 - message.startIndex)
        guard IEC21DataBlock.blockCheck(body) == bcc, body.count >= 3 else { return [.send(ByteBuffer(bytes: [Self.nak]))] }
        let (identifier, type) = (body[0], body[1])
        var data: String?
        if body[2] == IEC21DataBlock.stx {
            data = String(decoding: body[3..<(body.count - 1)], as: UTF8.self)
        } else if body.count != 3 {
            return [.send(ByteBuffer(bytes: [Self.nak]))]
        }

        switch (identifier, data) {
        case (UInt8(ascii: "B"), _):
            state = .idle
            return [.switchBaudRate(Self.initialBaudRate), .ended]
        case (UInt8(ascii: "P"), let data?) where type == UInt8(ascii: "1"):
            let password = data.hasPrefix("(") && data.hasSuffix(")") ? String(data.dropFirst().dropLast()) : data
            guard device.acceptsPassword(password) else {
                state = .idle
                return [.send(Self.commandMessage("B0", data: nil)), .switchBaudRate(Self.initialBaudRate), .ended]
            }
            state = .programming(authorised: true)
            return [.send(ByteBuffer(bytes: [Self.ack]))]
        case (UInt8(ascii: "R"), let data?) where authorised:
            if type == UInt8(ascii: "1"), let address = Self.readAddress(data), let answer = device.read(address) {
                return [.send(Self.dataBlock(answer))]
            }
            if type != UInt8(ascii: "1"), let lines = device.readManufacturerSpecific(type: type, data: data) {
                return [.send(Self.dataBlock(lines.joined(separator: "\r\n")))]
            }
            return [.send(Self.dataBlock("(ERROR)"))]
        default:
            // Writes, executes, reads before the password: not for this device.
            return [.send(Self.dataBlock("(ERROR)"))]
        }
    }

    /// The address of an `R1` data set `address()` or `address(operand)`.
    static func readAddress(_ data: String) -> String? {
        guard let open = data.firstIndex(of: "("), data.hasSuffix(")") else { return nil }
        let address = String(data[..<open])
        return address.isEmpty ? nil : address
    }

    // MARK: - Encoding

    static func dataBlock(_ text: String) -> ByteBuffer {
        var data = ByteBuffer()
        data.writeString(text)
        return dataBlock(data)
    }

    static func dataBlock(_ data: ByteBuffer) -> ByteBuffer {
        var out = ByteBuffer()
        IEC21DataBlock(data: data).encode(into: &out)
        return out
    }

    /// `SOH C D [STX data] ETX BCC`, e.g. `P0 (operand)` or `B0`.
    static func commandMessage(_ command: String, data: String?) -> ByteBuffer {
        var body = Array(command.utf8)
        if let data { body += [IEC21DataBlock.stx] + Array(data.utf8) }
        body.append(IEC21DataBlock.etx)
        var out = ByteBuffer()
        out.writeInteger(soh)
        out.writeBytes(body)
        out.writeInteger(IEC21DataBlock.blockCheck(body))
        return out
    }
}
