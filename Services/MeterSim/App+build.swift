import Foundation
import Logging
import MeterSimulation
import ServiceLifecycle
import ServiceRuntime

/// Everything meter-sim needs to run.
struct MeterSimConfiguration: Sendable {
    /// How DLMS APDUs travel over each TCP connection.
    enum Framing: String, Sendable {
        /// IEC 62056-47 wrapper: source wPort = client SAP, destination wPort = logical device 1.
        case wrapper
        /// IEC 62056-46 HDLC: server logical address 1, physical address `hdlcPhysicalBase + n`.
        case hdlc
    }

    var runtime: RuntimeConfiguration
    /// Default: 1.
    var meterCount: Int
    /// Default: wrapper.
    var framing: Framing = .wrapper
    /// Meter n listens on `firstPort + n`, or on `firstPort` at its own address. Default: 4061.
    var firstPort: Int
    /// Address of meter 0. Default: 127.0.0.1.
    var addressBase: String = "127.0.0.1"
    /// Whether each meter gets its own address (`addressBase + n`) instead of its own port. Default: false.
    var addressPerMeter: Bool = false
    /// HDLC physical address of meter 0; meter n has this + n. Default: 16.
    var hdlcPhysicalBase: Int = 16
    /// Seed of the deterministic data. Default: 0.
    var seed: UInt64 = 0
    /// LLS password. Default: "12345678".
    var password: [UInt8] = Array("12345678".utf8)
    /// Largest server APDU; 0 keeps the simulator's default.
    var maximumPDUSize: Int = 0
    /// Fault injection. Default: none.
    var faults = FaultConfiguration()

    /// The listening address and port of meter `index`.
    func endpoint(of index: Int) throws -> (host: String, port: Int) {
        guard addressPerMeter else { return (addressBase, firstPort + index) }
        let parts = addressBase.split(separator: ".").compactMap { UInt32($0) }
        guard parts.count == 4, parts.allSatisfy({ $0 <= 255 }) else {
            throw MeterSimError("--address-base '\(addressBase)' is not an IPv4 address")
        }
        let base = parts.reduce(UInt32(0)) { $0 << 8 | $1 }
        let (address, overflow) = base.addingReportingOverflow(UInt32(index))
        guard !overflow else { throw MeterSimError("meter \(index): address beyond 255.255.255.255") }
        let host = [24, 16, 8, 0].map { String((address >> UInt32($0)) & 0xFF) }.joined(separator: ".")
        return (host, firstPort)
    }

    /// The simulator configuration of meter `index`.
    func meterConfiguration(of index: Int) -> SimulatedMeter.Configuration {
        var meter = SimulatedMeter.Configuration.fleetMember(index: index, seed: seed)
        meter.lowLevelPassword = password
        if maximumPDUSize > 0 { meter.maximumServerPDUSize = UInt16(maximumPDUSize) }
        meter.clockOffset = faults.clockDrift
        meter.refusesAssociation = faults.applies(.refuse, toMeter: index, seed: seed)
        return meter
    }
}

struct MeterSimError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension App {
    static func serviceGroup(for configuration: MeterSimConfiguration) -> ServiceGroup {
        let runtime = ServiceRuntime(configuration.runtime)
        runtime.logger.info("meter-sim starting", metadata: [
            "meters": "\(configuration.meterCount)", "framing": "\(configuration.framing.rawValue)"])
        let fleet = MeterFleet(configuration: configuration, readiness: runtime.readiness, logger: runtime.logger)
        runtime.adminServer.addRoute { [fleet] in fleet.adminRoute($0) }
        return runtime.serviceGroup(running: [fleet])
    }
}
