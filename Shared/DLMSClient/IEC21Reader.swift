import DLMSLink
import NIOCore

/// What an IEC 62056-21 mode C data readout returned.
public struct IEC21Readout: Hashable, Sendable {
    public var identification: IEC21Identification
    public var dataSets: [IEC21DataSet]
}

/// Runs the sans-IO `IEC21Session` over a serial transport (or a serial gateway): mode C
/// readout, or the mode E opening that hands an optical port over to HDLC.
public enum IEC21Reader {
    /// Mode C: sign-on, identification, option select with baud-rate switch, data readout.
    ///
    /// - Parameters:
    ///   - transport: a serial port opened at 300 Bd 7E1 (`SerialPortSettings.iec21`), or a gateway.
    ///   - configuration: device address, fastest rate, timeouts.
    /// - Throws: `DLMSClientError` (step `.linkSetup`) naming what failed.
    public static func readout(over transport: any DLMSTransport, configuration: IEC21Session.Configuration) async throws -> IEC21Readout {
        var configuration = configuration
        configuration.mode = .readout
        let result = try await run(over: transport, configuration: configuration)
        guard let block = result.block else {
            throw DLMSClientError(code: .unexpectedResponse, step: .linkSetup, reason: "the IEC 62056-21 session ended without a readout")
        }
        do {
            return IEC21Readout(identification: result.identification, dataSets: try block.dataSets())
        } catch {
            throw DLMSClientError.wrapping(error, step: .linkSetup)
        }
    }

    /// Mode E (IEC 62056-21 Annex E): the opening after which the port carries HDLC.
    ///
    /// - Returns: the device's identification.
    /// - Parameter serialPath: the port's device, to switch it to 8N1 with the new rate.
    public static func enterHDLC(over transport: any DLMSTransport, serialPath: String?, configuration: IEC21Session.Configuration) async throws -> IEC21Identification {
        var configuration = configuration
        configuration.mode = .hdlc
        return try await run(over: transport, configuration: configuration, serialPath: serialPath).identification
    }

    private static func run(over transport: any DLMSTransport, configuration: IEC21Session.Configuration, serialPath: String? = nil) async throws -> (identification: IEC21Identification, block: IEC21DataBlock?) {
        var session = IEC21Session(configuration: configuration)
        var timer: NIODeadline?
        var identification: IEC21Identification?
        var block: IEC21DataBlock?
        var finished = false

        func perform(_ actions: [IEC21Session.Action]) async throws {
            for action in actions {
                switch action {
                case .send(let bytes):
                    try await transport.send(bytes)
                case .switchBaudRate(let rate):
                    if let serial = transport as? ChannelTransport, serial.serialDescriptor != nil {
                        if configuration.mode == .hdlc, let path = serialPath {
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
                case .identified(let id):
                    identification = id
                case .deliver(let data):
                    block = data
                case .enteredHDLC:
                    break
                case .closed(let error):
                    finished = true
                    if let error { throw error }
                }
            }
        }

        do {
            await transport.discardPending()
            try await perform(try session.start())
            while !finished {
                let wakeUp = timer ?? .now() + .seconds(30)
                if let bytes = try await transport.receive(until: wakeUp) {
                    try await perform(session.receive(bytes))
                } else if let deadline = timer, deadline <= .now() {
                    timer = nil
                    try await perform(session.timerFired())
                }
            }
        } catch {
            throw DLMSClientError.wrapping(error, step: .linkSetup)
        }
        guard let identification else {
            throw DLMSClientError(code: .unexpectedResponse, step: .linkSetup, reason: "no IEC 62056-21 identification")
        }
        return (identification, block)
    }
}
