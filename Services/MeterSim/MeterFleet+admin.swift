import Foundation
import Hummingbird
import Logging
import MeterSimulation
import Observability
import ServiceRuntime
import Synchronization

/// meter-sim's admin endpoints (JSON; errors are problem documents):
/// - `GET /meters`: every meter with its address, disconnect state, clock offset, sessions
///   and faults;
/// - `GET /meters/<serial>`: one meter;
/// - `POST /meters/<serial>/faults`: switches the meter's faults at run time and answers its
///   new state. The switches come as a JSON body (`{"silent": true, "refuse": false}`) or as
///   query parameters (`?silent=true&refuse=false`); `refuse` makes it reject AARQs. An unknown
///   switch or a value that is not a boolean is a 400 that names it, and changes nothing.
extension MeterFleet {
    func addAdminRoutes(to router: AdminRouter) {
        let meters = router.group("meters")
        meters.get { _, _ in
            self.entries.withLock { $0 }.map(MeterStatus.init)
        }
        meters.get(":serial") { _, context in
            MeterStatus(try self.entry(context))
        }
        meters.post(":serial/faults") { request, context in
            let entry = try self.entry(context)
            var change = try FaultSwitches(query: request.uri.queryParameters)
            if let body = try? await request.body.collect(upTo: 4096), body.readableBytes > 0 {
                do {
                    change.merge(try JSONDecoder().decode(FaultSwitches.self, from: Data(body.readableBytesView)))
                } catch let problem as HTTPProblem {
                    throw problem
                } catch {
                    throw HTTPProblem.badRequest("the body is not a fault switch object ({\"silent\": true, …}): \(Self.describe(error))")
                }
            }
            let faults = entry.faults.withLock { faults in
                change.apply(to: &faults)
                return faults
            }
            if let refuse = change.refuse { entry.meter.refusesAssociation = refuse }
            self.logger.info("faults changed", metadata: [LogMetadataKey.meterID: "\(entry.serialNumber)", "faults": "\(faults)"])
            return MeterStatus(entry)
        }
    }

    private func entry(_ context: BasicRequestContext) throws -> MeterEntry {
        let serial = context.parameters.get("serial") ?? ""
        guard let entry = entry(serial: serial) else {
            throw HTTPProblem.notFound("no meter with serial number '\(serial)' (they are SIM00000001, SIM00000002, …)")
        }
        return entry
    }

    private func entry(serial: String) -> MeterEntry? {
        guard serial.hasPrefix("SIM"), let number = Int(serial.dropFirst(3)) else { return nil }
        return entries.withLock { entries in
            entries.indices.contains(number - 1) && entries[number - 1].serialNumber == serial ? entries[number - 1] : nil
        }
    }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context),
             DecodingError.keyNotFound(_, let context), DecodingError.dataCorrupted(let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? context.debugDescription : "\(path): \(context.debugDescription)"
        default:
            return "\(error)"
        }
    }
}

/// The fault switches of one `POST /meters/<serial>/faults`: each one given is set, the others
/// are left as they are.
struct FaultSwitches: Codable, Sendable, Equatable {
    var silent: Bool?
    var garbage: Bool?
    var drop: Bool?
    var reset: Bool?
    var refuse: Bool?

    static let names = ["silent", "garbage", "drop", "reset", "refuse"]

    init(silent: Bool? = nil, garbage: Bool? = nil, drop: Bool? = nil, reset: Bool? = nil, refuse: Bool? = nil) {
        self.silent = silent
        self.garbage = garbage
        self.drop = drop
        self.reset = reset
        self.refuse = refuse
    }

    /// From query parameters: `true`/`false` (any case) or `1`/`0`.
    init(query: some Sequence<(key: Substring, value: Substring)>) throws {
        for (name, text) in query {
            guard let value = Bool(text.lowercased()) ?? (text == "1" ? true : text == "0" ? false : nil) else {
                throw HTTPProblem.badRequest("\(name): '\(text)' is not true or false")
            }
            try set(String(name), to: value)
        }
    }

    /// An object with only the known switches, each a boolean; anything else is refused.
    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AnyKey.self)
        for key in container.allKeys {
            guard Self.names.contains(key.stringValue) else {
                throw HTTPProblem.badRequest("unknown fault '\(key.stringValue)' (\(Self.names.joined(separator: ", ")))")
            }
            try set(key.stringValue, to: container.decode(Bool.self, forKey: key))
        }
    }

    private mutating func set(_ name: String, to value: Bool) throws {
        switch name {
        case "silent": silent = value
        case "garbage": garbage = value
        case "drop": drop = value
        case "reset": reset = value
        case "refuse": refuse = value
        default: throw HTTPProblem.badRequest("unknown fault '\(name)' (\(Self.names.joined(separator: ", ")))")
        }
    }

    /// The body's switches win over the query's.
    mutating func merge(_ other: FaultSwitches) {
        silent = other.silent ?? silent
        garbage = other.garbage ?? garbage
        drop = other.drop ?? drop
        reset = other.reset ?? reset
        refuse = other.refuse ?? refuse
    }

    func apply(to faults: inout MeterFaults) {
        faults.silent = silent ?? faults.silent
        faults.garbage = garbage ?? faults.garbage
        faults.drop = drop ?? faults.drop
        faults.reset = reset ?? faults.reset
    }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}

/// One meter as `GET /meters` shows it.
struct MeterStatus: ResponseEncodable, Decodable, Sendable, Equatable {
    struct Faults: Codable, Sendable, Equatable {
        var silent: Bool
        var garbage: Bool
        var drop: Bool
        var reset: Bool
    }

    var serial: String
    var address: String
    var transport: String
    var framing: String
    var quirk: String
    /// Serial lines and gateways: the line's name.
    var line: String?
    var hdlcPhysicalAddress: Int
    var disconnectState: String
    var clockOffsetSeconds: Double
    var sessions: Int
    /// remote_disconnect and remote_reconnect invocations the meter executed.
    var disconnectActions: Int
    var reconnectActions: Int
    var refusesAssociation: Bool
    var faults: Faults

    init(_ entry: MeterEntry) {
        let faults = entry.faults.withLock { $0 }
        let offset = entry.meter.effectiveClockOffset
        self.serial = entry.serialNumber
        self.address = entry.address
        self.transport = entry.transport.rawValue
        self.framing = entry.framing.rawValue
        self.quirk = entry.quirk.rawValue
        self.line = entry.line
        self.hdlcPhysicalAddress = Int(entry.hdlcPhysicalAddress)
        self.disconnectState = "\(entry.meter.disconnectState)"
        self.clockOffsetSeconds = Double(offset.components.seconds) + Double(offset.components.attoseconds) / 1e18
        self.sessions = entry.meter.sessionCount
        self.disconnectActions = entry.meter.disconnectActions
        self.reconnectActions = entry.meter.reconnectActions
        self.refusesAssociation = entry.meter.refusesAssociation
        self.faults = Faults(silent: faults.silent, garbage: faults.garbage, drop: faults.drop, reset: faults.reset)
    }
}

