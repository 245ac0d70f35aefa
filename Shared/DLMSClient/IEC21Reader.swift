import DLMSLink
import Foundation
import NIOCore

/// What an IEC 62056-21 mode C data readout returned.
public struct IEC21Readout: Hashable, Sendable {
    public var identification: IEC21Identification
    public var dataSets: [IEC21DataSet]
}

/// Runs the sans-IO `IEC21Session` over a serial transport (or a serial gateway): mode C
/// readout, programming mode, or the mode E opening that hands an optical port over to HDLC.
public enum IEC21Reader {
    /// Mode C: sign-on, identification, option select with baud-rate switch, data readout.
    ///
    /// - Parameters:
    ///   - transport: a serial port opened at 300 Bd 7E1 (`SerialPortSettings.iec21`), or a gateway.
    ///   - configuration: device address, fastest rate, timeouts.
    /// - Throws: `DLMSClientError`: step `.linkSetup` for the opening, `.get` for the readout.
    public static func readout(over transport: any DLMSTransport, configuration: IEC21Session.Configuration) async throws -> IEC21Readout {
        var configuration = configuration
        configuration.mode = .readout
        let driver = IEC21Driver(transport: transport, configuration: configuration, serialPath: nil)
        let identification = try await driver.open()
        let block = try await driver.run(step: .get) { event in
            if case .deliver(let block) = event { return block }
            return nil
        }
        do {
            return IEC21Readout(identification: identification, dataSets: try block.dataSets())
        } catch {
            throw DLMSClientError.wrapping(error, step: .get)
        }
    }

    /// Mode E (IEC 62056-21 Annex E): the opening after which the port carries HDLC.
    ///
    /// - Returns: the device's identification.
    /// - Parameter serialPath: the port's device, to switch it to 8N1 with the new rate.
    public static func enterHDLC(over transport: any DLMSTransport, serialPath: String?, configuration: IEC21Session.Configuration) async throws -> IEC21Identification {
        var configuration = configuration
        configuration.mode = .hdlc
        return try await IEC21Driver(transport: transport, configuration: configuration, serialPath: serialPath).open()
    }

    /// Mode C programming mode (IEC 62056-21 §6.3.5–6.3.8): sign-on, option select `ACK 0 Z 1`,
    /// the password answering the device's `P0`, then `body`'s commands; `B0` afterwards, also
    /// when `body` throws.
    ///
    /// - Parameter password: the `P1` password, `nil` when the device asks for none.
    /// - Throws: `DLMSClientError`: step `.linkSetup` for the opening, `.associate` for a refused
    ///   password (`associationRejected`), `.get` for a failed read; or what `body` throws.
    public static func withProgrammingSession<Result>(
        over transport: any DLMSTransport, configuration: IEC21Session.Configuration, password: String?,
        _ body: (IEC21ProgrammingSession) async throws -> Result
    ) async throws -> Result {
        var configuration = configuration
        configuration.mode = .programming(password: password)
        let driver = IEC21Driver(transport: transport, configuration: configuration, serialPath: nil)
        let identification = try await driver.open()
        let operand = try await driver.run(step: .associate) { event in
            if case .enteredProgramming(let operand) = event { return Optional(operand) }
            return nil
        }
        let session = IEC21ProgrammingSession(driver: driver, identification: identification, operand: operand)
        do {
            let result = try await body(session)
            try await driver.exit()
            return result
        } catch {
            try? await driver.exit()
            throw error
        }
    }
}

/// An open IEC 62056-21 programming-mode session (see `IEC21Reader.withProgrammingSession`).
/// One command at a time.
public final class IEC21ProgrammingSession {
    public let identification: IEC21Identification
    /// The device's `P0` operand (often its serial number).
    public let operand: String?
    private let driver: IEC21Driver

    init(driver: IEC21Driver, identification: IEC21Identification, operand: String?) {
        self.driver = driver
        self.identification = identification
        self.operand = operand
    }

    /// Sends one command and returns the device's answer (partial blocks joined).
    public func send(_ command: IEC21Command) async throws -> IEC21Reply {
        try await driver.command(command)
    }

    /// Reads one data set with `R1 address()`.
    ///
    /// - Throws: `DLMSClientError` `.dataAccessFailed` when the device answers `(ERROR)` or ACK
    ///   without data; `.timeout` when it does not answer.
    public func read(_ address: String) async throws -> [IEC21DataSet] {
        let command: IEC21Command
        do { command = try IEC21Command.read(address) } catch { throw DLMSClientError.wrapping(error, step: .get) }
        guard case .data(let block) = try await send(command) else {
            throw DLMSClientError(code: .unexpectedResponse, step: .get, reason: "the device acknowledged R1 \(address)() without data")
        }
        do {
            let sets = try block.dataSets()
            if let error = sets.first(where: { $0.values.contains { $0.value.uppercased().hasPrefix("ER") } }) {
                throw DLMSClientError(code: .dataAccessFailed, step: .get, reason: "the device answered R1 \(address)() with \(error.address)(\(error.values[0].value))")
            }
            return sets
        } catch let error as DLMSClientError {
            throw error
        } catch {
            throw DLMSClientError.wrapping(error, step: .get)
        }
    }

    /// Reads a load profile with the manufacturer's `R5 P.01(from;to)` extension: only the
    /// rows inside `from…to`, in increasing time, each interval once
    /// (`IEC21LoadProfile.restricted(from:to:)`; what was left out is in its `discarded`).
    ///
    /// - Parameters:
    ///   - format: how the device wants the times written (EMH, Landis+Gyr: season-prefixed).
    ///   - commandType: `5` for most families; some take `1` or `6`.
    public func readLoadProfile(address: String = "P.01", from: Date, to: Date,
                                format: IEC21Timestamp.Format = .compact, commandType: UInt8 = UInt8(ascii: "5")) async throws -> IEC21LoadProfile {
        do {
            let start = Int64(from.timeIntervalSince1970.rounded(.down))
            let end = Int64(to.timeIntervalSince1970.rounded(.down))
            let command = try IEC21LoadProfile.request(
                address: address, from: IEC21Timestamp(secondsSince1970: start), to: IEC21Timestamp(secondsSince1970: end), format: format, commandType: commandType)
            switch try await send(command) {
            case .data(let block): return try IEC21LoadProfile.parse(block).restricted(from: start, to: end)
            case .acknowledged: return IEC21LoadProfile(channels: [], periodMinutes: 0, rows: [])
            default: throw DLMSClientError(code: .unexpectedResponse, step: .get, reason: "unexpected answer to \(address)")
            }
        } catch let error as DLMSClientError {
            throw error
        } catch {
            throw DLMSClientError.wrapping(error, step: .get)
        }
    }
}

/// Carries out an `IEC21Session`'s actions over a transport and waits for its events.
final class IEC21Driver {
    private var session: IEC21Session
    private let transport: any DLMSTransport
    private let serialPath: String?
    private var timer: NIODeadline?
    private var events: [IEC21Session.Action] = []
    private var closed = false

    init(transport: any DLMSTransport, configuration: IEC21Session.Configuration, serialPath: String?) {
        self.session = IEC21Session(configuration: configuration)
        self.transport = transport
        self.serialPath = serialPath
    }

    /// Sign-on, identification, option select.
    func open() async throws -> IEC21Identification {
        do {
            await transport.discardPending()
            try await perform(try session.start())
        } catch {
            throw DLMSClientError.wrapping(error, step: .linkSetup)
        }
        return try await run(step: .linkSetup) { event in
            if case .identified(let id) = event { return id }
            return nil
        }
    }

    func command(_ command: IEC21Command) async throws -> IEC21Reply {
        do {
            try await perform(try session.command(command))
        } catch {
            throw DLMSClientError.wrapping(error, step: .get)
        }
        return try await run(step: .get) { event in
            if case .reply(let reply) = event { return reply }
            return nil
        }
    }

    func exit() async throws {
        guard !closed else { return }
        try await perform(session.exit())
    }

    /// Feeds received bytes and timer expiries to the session until `match` picks an event.
    ///
    /// - Throws: `DLMSClientError` for the session closing with an error, or closing before
    ///   the awaited event.
    func run<T>(step: DLMSClientError.Step, until match: (IEC21Session.Action) -> T?) async throws -> T {
        // Each part of an answer restarts the session's response timer; the whole answer has
        // this deadline, so a device that sends empty parts forever still ends.
        let requestTimeout = session.configuration.requestTimeout
        let requestDeadline = NIODeadline.now() + TimeAmount(requestTimeout)
        do {
            while true {
                while !events.isEmpty {
                    let event = events.removeFirst()
                    if let value = match(event) { return value }
                    if case .closed(let error) = event {
                        if let error { throw error }
                        throw DLMSClientError(code: .unexpectedResponse, step: step, reason: "the IEC 62056-21 session ended early")
                    }
                }
                guard NIODeadline.now() < requestDeadline else {
                    throw DLMSClientError(code: .timeout, step: step, reason: "the IEC 62056-21 answer did not end within \(requestTimeout)")
                }
                let wakeUp = min(timer ?? .now() + .seconds(30), requestDeadline)
                if let bytes = try await transport.receive(until: wakeUp) {
                    try await perform(session.receive(bytes))
                } else if let deadline = timer, deadline <= .now() {
                    timer = nil
                    try await perform(session.timerFired())
                }
            }
        } catch {
            throw DLMSClientError.wrapping(error, step: step)
        }
    }

    private func perform(_ actions: [IEC21Session.Action]) async throws {
        for action in actions {
            switch action {
            case .send(let bytes):
                try await transport.send(bytes)
            case .switchBaudRate(let rate):
                if let serial = transport as? ChannelTransport, serial.serialDescriptor != nil {
                    if session.configuration.mode == .hdlc, let path = serialPath {
                        // Mode E: HDLC runs 8N1 at the new rate.
                        try await serial.reconfigure(.hdlc(path: path, baudRate: rate))
                    } else {
                        try await serial.setBaudRate(rate)
                    }
                }
            case .startTimer(let duration):
                timer = .now() + TimeAmount(duration)
            case .cancelTimer:
                timer = nil
            case .closed:
                closed = true
                events.append(action)
            case .identified, .deliver, .enteredHDLC, .enteredProgramming, .reply:
                events.append(action)
            }
        }
    }
}
