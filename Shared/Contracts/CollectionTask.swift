import Foundation

/// One unit of collection work for one meter, published by the scheduler on
/// `hes.tasks.<region>` (or `.priority`) keyed by line id, and executed by a collector.
public struct CollectionTask: VersionedContract, Hashable {
    public static let schemaName = "collection-task"
    /// v2 carries the meter's access (`meter`); v1 tasks, without it, cannot be executed.
    public static let supportedMajorVersions = 2...2
    public static let currentMajorVersion = 2

    /// Why the task exists.
    public enum Origin: String, Codable, Sendable, Hashable {
        /// A slot of a configured schedule.
        case schedule
        /// An on-demand command from the IMS.
        case command
        /// A gap in confirmed data found by the scheduler.
        case gapRecovery = "gap-recovery"
    }

    public var schema: String
    /// Unique and stable for a slot, so a re-emitted task is recognisable (`<schedule>/<slot>/<meter>`).
    public var taskID: String
    public var origin: Origin
    public var region: String
    /// The physical line (serial port, RS-485 bus, gateway, IP endpoint); the Kafka key.
    public var lineID: String
    public var meterID: String
    /// How to reach and open the meter.
    public var meter: MeterAccess
    /// The configuration version the task was planned from.
    public var configVersion: Int64
    /// The command this task executes, for `origin == .command`.
    public var commandID: String?
    /// The schedule slot, for scheduled tasks.
    public var slot: Date?
    public var createdAt: Date
    /// After this instant the collector reports the task expired instead of starting it.
    public var deadline: Date
    /// What to do in the session, in order.
    public var actions: [TaskAction]

    public init(
        taskID: String, origin: Origin, region: String, lineID: String, meterID: String, meter: MeterAccess,
        configVersion: Int64, commandID: String? = nil, slot: Date? = nil,
        createdAt: Date, deadline: Date, actions: [TaskAction]
    ) {
        self.schema = Self.currentSchema
        self.taskID = taskID
        self.origin = origin
        self.region = region
        self.lineID = lineID
        self.meterID = meterID
        self.meter = meter
        self.configVersion = configVersion
        self.commandID = commandID
        self.slot = slot
        self.createdAt = createdAt
        self.deadline = deadline
        self.actions = actions
    }
}

/// One step of a collection task.
public enum TaskAction: Codable, Sendable, Hashable {
    /// Read attributes of objects (registers, clock, …).
    case readObjects([ObjectReference])
    /// Read a profile generic buffer over a capture-time range (selective access by range).
    case readProfile(profile: ObjectReference, from: Date, to: Date)
    /// Set the meter clock, correcting for the measured round trip.
    case synchronizeClock(maximumDeviation: Double)
    /// Bring the disconnect control to a target state; acts only if the state differs.
    case setSupplyState(SupplyState)

    public enum SupplyState: String, Codable, Sendable, Hashable {
        case connected, disconnected
    }

    private enum CodingKeys: String, CodingKey {
        case type, objects, profile, from, to, maximumDeviationSeconds, state
    }

    private enum Kind: String, Codable {
        case readObjects = "read-objects", readProfile = "read-profile"
        case synchronizeClock = "synchronize-clock", setSupplyState = "set-supply-state"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        switch try container.decode(Kind.self, forKey: .type) {
        case .readObjects:
            self = .readObjects(try container.decode([ObjectReference].self, forKey: .objects))
        case .readProfile:
            let from = try container.decode(Date.self, forKey: .from)
            let to = try container.decode(Date.self, forKey: .to)
            guard from <= to else {
                throw DecodingError.dataCorruptedError(forKey: .to, in: container, debugDescription: "'to' is before 'from'")
            }
            self = .readProfile(profile: try container.decode(ObjectReference.self, forKey: .profile), from: from, to: to)
        case .synchronizeClock:
            self = .synchronizeClock(maximumDeviation: try container.decode(Double.self, forKey: .maximumDeviationSeconds))
        case .setSupplyState:
            self = .setSupplyState(try container.decode(SupplyState.self, forKey: .state))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .readObjects(let objects):
            try container.encode(Kind.readObjects, forKey: .type)
            try container.encode(objects, forKey: .objects)
        case .readProfile(let profile, let from, let to):
            try container.encode(Kind.readProfile, forKey: .type)
            try container.encode(profile, forKey: .profile)
            try container.encode(from, forKey: .from)
            try container.encode(to, forKey: .to)
        case .synchronizeClock(let maximumDeviation):
            try container.encode(Kind.synchronizeClock, forKey: .type)
            try container.encode(maximumDeviation, forKey: .maximumDeviationSeconds)
        case .setSupplyState(let state):
            try container.encode(Kind.setSupplyState, forKey: .type)
            try container.encode(state, forKey: .state)
        }
    }
}

/// A COSEM attribute by logical name: class id, OBIS code (`1.0.1.8.0.255`), attribute index.
public struct ObjectReference: Codable, Sendable, Hashable {
    public var classID: Int
    public var obis: String
    public var attribute: Int

    public init(classID: Int, obis: String, attribute: Int) {
        self.classID = classID
        self.obis = obis
        self.attribute = attribute
    }
}
