import DLMSLink
import Foundation
import MeterSimulation

/// A simulated meter as an IEC 62056-21 device: its values at the moment they are asked for,
/// the same numbers the DLMS objects and `meter-sim expect` give for that second.
struct SimulatedIEC21Device: IEC21ServerDevice {
    let meter: SimulatedMeter
    let quirk: MeterQuirk

    /// The full serial number (`SIM00000001`) or its eight digits address the meter.
    func answersSignOn(address: String?) -> Bool {
        guard let address else { return true }
        let serial = meter.configuration.serialNumber
        return address == serial || address == String(serial.suffix(8))
    }

    func readoutLines() -> [String] { meter.iec21ReadoutLines(at: Date()) }

    var passwordOperand: String { meter.configuration.serialNumber }

    func acceptsPassword(_ password: String) -> Bool { Array(password.utf8) == meter.configuration.lowLevelPassword }

    func read(_ address: String) -> String? { meter.iec21DataSet(address, at: Date()) }

    /// EMH meters answer `R5 P.01(from;to)`; other families have no manufacturer reads.
    func readManufacturerSpecific(type: UInt8, data: String) -> [String]? {
        guard quirk == .emh, type == UInt8(ascii: "5") else { return nil }
        return meter.iec21LoadProfile(data, at: Date())
    }
}
