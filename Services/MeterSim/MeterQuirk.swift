import DLMSLink
import MeterSimulation
import NIOCore

/// A simulated meter family: how it deviates from the standard, modelled on real meters. The
/// names match `hesctl read --meter-profile` (DLMSClient's `ManufacturerProfile.builtIn`) where
/// the client needs a profile to read the family.
enum MeterQuirk: String, Sendable, CaseIterable, Codable {
    /// Standard IEC 62056 behaviour.
    case standard
    /// HDLC only with four-byte server addresses (shorter ones are ignored), and only a bare
    /// SNRM connects (one with parameters gets FRMR); the UA proposes 128-byte information fields.
    case fourByteAddress = "four-byte-address"
    /// RLRQ is never answered: the association ends with DISC or by closing the connection.
    case discOnly = "disc-only"
    /// Speaks the wrapper over TCP whatever the fleet's framing, and closes the connection after
    /// the RLRE (IP-only meters without an HDLC stack).
    case wrapperOnly = "wrapper-only"
    /// Gurux's server stack as our interop tests meet it: the RLRE is one byte shorter than its
    /// length says (read with `--meter-profile gurux`, which ends with DISC only).
    case gurux
    /// IEC 62056-21 meter with EMH's manufacturer extension: identifies as `EMH`, and answers
    /// `R5 P.01(from;to)` with its load profile.
    case emh

    /// The built-in manufacturer profile a client reads the family with (`hesctl read
    /// --meter-profile`, a configuration's `manufacturerProfile`). Wrapper-only meters need none.
    var manufacturerProfile: String {
        switch self {
        case .standard, .wrapperOnly: "standard"
        case .fourByteAddress, .discOnly, .gurux, .emh: rawValue
        }
    }

    /// The HDLC link settings of meter `physical` of this family.
    func hdlcConfiguration(physical: UInt16, logical: UInt16 = 1) throws -> HDLCServerConnection.Configuration {
        switch self {
        case .fourByteAddress:
            return HDLCServerConnection.Configuration(
                serverAddress: try .server(logical: logical, physical: physical, size: .four),
                limits: HDLCParameters(maximumInformationLengthTransmit: HDLCParameters.defaultMaximumInformationLength,
                                       maximumInformationLengthReceive: HDLCParameters.defaultMaximumInformationLength),
                requiredAddressSize: .four, acceptsSNRMParameters: false)
        default:
            return HDLCServerConnection.Configuration(serverAddress: try .server(logical: logical, physical: physical))
        }
    }

    /// Applies the family's association quirks to a meter configuration.
    func apply(to meter: inout SimulatedMeter.Configuration) {
        if self == .discOnly { meter.answersReleaseRequest = false }
    }

    /// The family's deviations in an encoded response APDU.
    func adjust(_ response: ByteBuffer) -> ByteBuffer {
        guard self == .gurux, response.getInteger(at: response.readerIndex, as: UInt8.self) == 0x63, response.readableBytes > 2 else {
            return response
        }
        return response.getSlice(at: response.readerIndex, length: response.readableBytes - 1)!
    }

    /// The IEC 62056-21 identification of a meter of this family.
    func iec21Configuration(serialNumber: String) -> IEC21ServerSession.Configuration {
        switch self {
        case .emh: IEC21ServerSession.Configuration(manufacturer: "EMH", identification: "LZQJ" + serialNumber.suffix(8))
        default: IEC21ServerSession.Configuration(manufacturer: "SIM", identification: serialNumber)
        }
    }
}
