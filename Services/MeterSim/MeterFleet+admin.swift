import Foundation
import ServiceRuntime

/// meter-sim's admin endpoints:
/// - `GET /meters`: every meter with its address, disconnect state, clock offset, sessions
///   and faults (JSON);
/// - `POST /meters/<serial>/faults?silent=true&garbage=false&drop=…&reset=…&refuse=…`:
///   switches the meter's faults at run time (`refuse`: AARQs are rejected) and answers its new
///   state.
extension MeterFleet {
    func adminRoute(_ request: AdminRequest) -> AdminResponse? {
        let segments = request.path.split(separator: "/").map(String.init)
        guard segments.first == "meters" else { return nil }
        switch (request.method, segments.count) {
        case ("GET", 1):
            let body = entries.withLock { $0 }.map(Self.json).joined(separator: ",\n")
            return AdminResponse(body: "[\n\(body)\n]\n")
        case ("GET", 2):
            guard let entry = entry(serial: segments[1]) else { return AdminResponse(status: 404, body: "{\"error\":\"no such meter\"}\n") }
            return AdminResponse(body: Self.json(entry) + "\n")
        case ("POST", 3) where segments[2] == "faults":
            guard let entry = entry(serial: segments[1]) else { return AdminResponse(status: 404, body: "{\"error\":\"no such meter\"}\n") }
            var faults = entry.faults.withLock { $0 }
            var refuse: Bool?
            for (name, text) in request.queryItems {
                guard let value = Bool(text.lowercased()) ?? (text == "1" ? true : text == "0" ? false : nil) else {
                    return AdminResponse(status: 400, body: "{\"error\":\"\(name): '\(text)' is not true or false\"}\n")
                }
                switch name {
                case "silent": faults.silent = value
                case "garbage": faults.garbage = value
                case "drop": faults.drop = value
                case "reset": faults.reset = value
                case "refuse": refuse = value
                default: return AdminResponse(status: 400, body: "{\"error\":\"unknown fault '\(name)' (silent, garbage, drop, reset, refuse)\"}\n")
                }
            }
            entry.faults.withLock { $0 = faults }
            if let refuse { entry.meter.refusesAssociation = refuse }
            logger.info("faults changed", metadata: ["meter.id": "\(entry.serialNumber)", "faults": "\(faults)"])
            return AdminResponse(body: Self.json(entry) + "\n")
        case ("GET", _), ("POST", _):
            return AdminResponse(status: 404, contentType: "text/plain", body: "not found\n")
        default:
            return AdminResponse(status: 405, contentType: "text/plain", body: "method not allowed\n")
        }
    }

    private func entry(serial: String) -> MeterEntry? {
        guard serial.hasPrefix("SIM"), let number = Int(serial.dropFirst(3)) else { return nil }
        return entries.withLock { entries in
            entries.indices.contains(number - 1) && entries[number - 1].serialNumber == serial ? entries[number - 1] : nil
        }
    }

    private static func json(_ entry: MeterEntry) -> String {
        let faults = entry.faults.withLock { $0 }
        let offset = entry.meter.effectiveClockOffset
        let seconds = Double(offset.components.seconds) + Double(offset.components.attoseconds) / 1e18
        let line = entry.line.map { "\"line\":\"\($0)\"," } ?? ""
        return "{\"serial\":\"\(entry.serialNumber)\",\"address\":\"\(entry.address)\","
            + "\"transport\":\"\(entry.transport.rawValue)\",\"framing\":\"\(entry.framing.rawValue)\",\"quirk\":\"\(entry.quirk.rawValue)\"," + line
            + "\"hdlcPhysicalAddress\":\(entry.hdlcPhysicalAddress),"
            + "\"disconnectState\":\"\(entry.meter.disconnectState)\",\"clockOffsetSeconds\":\(seconds),"
            + "\"sessions\":\(entry.meter.sessionCount),\"refusesAssociation\":\(entry.meter.refusesAssociation),"
            + "\"faults\":{\"silent\":\(faults.silent),\"garbage\":\(faults.garbage),\"drop\":\(faults.drop),\"reset\":\(faults.reset)}}"
    }
}
