import COSEM
import DLMSCodec

/// The client roles a simulated meter knows, one per client SAP (Green Book 4.3.3).
enum ClientRole: Sendable, Hashable, CaseIterable {
    /// SAP 16: no authentication, reads a restricted set of objects.
    case publicClient
    /// SAP 17: LLS; reads everything, sets the clock, operates the disconnector.
    case reader
    /// SAP 1: LLS; like the reader, and may also change the disconnector's control mode.
    case management

    init?(sap: UInt16) {
        switch sap {
        case 16: self = .publicClient
        case 17: self = .reader
        case 1: self = .management
        default: return nil
        }
    }

    var requiresAuthentication: Bool { self != .publicClient }
}

/// Attribute access modes (Blue Book 4.4.4, class 15 v1 `attribute_access_mode`).
enum AttributeAccess: UInt8, Sendable {
    case none = 0, read = 1, write = 2, readWrite = 3

    var canRead: Bool { self == .read || self == .readWrite }
    var canWrite: Bool { self == .write || self == .readWrite }
}

/// The COSEM objects every simulated meter has. The table is shared by all meters; values come
/// from the meter when an attribute is read.
enum SimulatedObject: CaseIterable, Sendable {
    case logicalDeviceName, serialNumber, clock
    case importTotal, importTariff1, importTariff2, exportTotal
    case loadProfile, dailyProfile, eventLog, status, eventCode
    case disconnectControl, securitySetup, invocationCounter, currentAssociation

    var obis: OBISCode {
        switch self {
        case .logicalDeviceName: .logicalDeviceName
        case .serialNumber: .serialNumber
        case .clock: .clock
        case .importTotal: EnergyRegister.importTotal.obis
        case .importTariff1: EnergyRegister.importTariff1.obis
        case .importTariff2: EnergyRegister.importTariff2.obis
        case .exportTotal: EnergyRegister.exportTotal.obis
        case .loadProfile: SimulatedProfile.load.obis
        case .dailyProfile: SimulatedProfile.daily.obis
        case .eventLog: SimulatedProfile.events.obis
        case .status: SimulatedProfile.statusObject
        case .eventCode: SimulatedProfile.eventCodeObject
        case .disconnectControl: .disconnectControl
        case .securitySetup: .securitySetup
        case .invocationCounter: OBISCode(0, 0, 43, 1, 0, 255)
        case .currentAssociation: .currentAssociation
        }
    }

    var classID: COSEMClassID {
        switch self {
        case .logicalDeviceName, .serialNumber, .status, .eventCode, .invocationCounter: .data
        case .clock: .clock
        case .importTotal, .importTariff1, .importTariff2, .exportTotal: .register
        case .loadProfile, .dailyProfile, .eventLog: .profileGeneric
        case .disconnectControl: .disconnectControl
        case .securitySetup: .securitySetup
        case .currentAssociation: .associationLN
        }
    }

    var version: UInt8 {
        switch classID {
        case .profileGeneric, .associationLN: 1
        default: 0
        }
    }

    var attributeCount: Int8 {
        switch classID {
        case .data: 2
        case .register: 3
        case .clock: 9
        case .profileGeneric: 8
        case .disconnectControl: 4
        case .securitySetup: 5
        case .associationLN: 9
        default: 1
        }
    }

    var methodCount: Int8 {
        switch classID {
        case .register: 1
        case .clock: 6
        case .profileGeneric: 2
        case .disconnectControl: 2
        case .securitySetup: 2
        case .associationLN: 4
        default: 0
        }
    }

    var register: EnergyRegister? {
        switch self {
        case .importTotal: .importTotal
        case .importTariff1: .importTariff1
        case .importTariff2: .importTariff2
        case .exportTotal: .exportTotal
        default: nil
        }
    }

    var profile: SimulatedProfile? {
        switch self {
        case .loadProfile: .load
        case .dailyProfile: .daily
        case .eventLog: .events
        default: nil
        }
    }

    static let byOBIS: [OBISCode: SimulatedObject] = Dictionary(uniqueKeysWithValues: allCases.map { ($0.obis, $0) })

    /// Objects the public client may read.
    var isPublic: Bool {
        switch self {
        case .logicalDeviceName, .clock, .currentAssociation, .importTotal, .importTariff1, .importTariff2, .exportTotal: true
        // The client's invocation counter is read by the public client before a ciphered association.
        case .invocationCounter: true
        default: false
        }
    }

    func access(attribute: Int8, role: ClientRole) -> AttributeAccess {
        guard attribute >= 1, attribute <= attributeCount else { return .none }
        if role == .publicClient { return isPublic ? .read : .none }
        switch (self, attribute) {
        case (.currentAssociation, 7): return .none              // secret
        case (.clock, 2): return .readWrite
        case (.disconnectControl, 4): return role == .management ? .readWrite : .read
        default: return .read
        }
    }

    func canInvoke(method: Int8, role: ClientRole) -> Bool {
        guard role != .publicClient else { return false }
        switch (self, method) {
        case (.disconnectControl, 1), (.disconnectControl, 2): return true
        case (.clock, 1), (.clock, 6): return true               // adjust_to_quarter, shift_time
        default: return false
        }
    }

    /// Attributes that accept selective access (profile buffers: range and entry).
    func accessSelectors(attribute: Int8) -> [UInt8]? {
        profile != nil && attribute == 2 ? [1, 2] : nil
    }

    // MARK: - Object list (class 15 attribute 2)

    /// object_list as the given client sees it: every object with that client's access rights.
    static func objectList(for role: ClientRole) -> DLMSData {
        switch role {
        case .publicClient: publicObjectList
        case .reader: readerObjectList
        case .management: managementObjectList
        }
    }

    private static let publicObjectList = buildObjectList(.publicClient)
    private static let readerObjectList = buildObjectList(.reader)
    private static let managementObjectList = buildObjectList(.management)

    private static func buildObjectList(_ role: ClientRole) -> DLMSData {
        .array(DLMSDataList(allCases.map { object -> DLMSData in
            let attributes = DLMSDataList((1...object.attributeCount).map { a -> DLMSData in
                .structure([.int8(a), .enumerated(object.access(attribute: a, role: role).rawValue),
                            object.accessSelectors(attribute: a).map { .array(DLMSDataList($0.map { .int8(Int8($0)) })) } ?? .null])
            })
            let methods: DLMSDataList = object.methodCount == 0 ? [] : DLMSDataList((1...object.methodCount).map { m -> DLMSData in
                .structure([.int8(m), .enumerated(object.canInvoke(method: m, role: role) ? 1 : 0)])
            })
            return .structure([.uint16(object.classID.rawValue), .uint8(object.version), .octetString(obis: object.obis),
                               .structure([.array(attributes), .array(methods)])])
        }))
    }
}

/// What a simulated meter supports of the xDLMS conformance block (Green Book 9.4.6.1).
extension Conformance {
    static let simulatedMeter: Conformance = [.get, .set, .action, .selectiveAccess, .blockTransferWithGetOrRead, .multipleReferences]
}
