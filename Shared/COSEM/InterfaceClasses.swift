import NIOCore

/// A typed view of one COSEM interface class: its class id and attribute/method numbering
/// (Blue Book §4.3–4.5), with helpers that turn A-XDR attribute values into Swift values.
public protocol COSEMInterfaceClass {
    associatedtype Attribute: RawRepresentable where Attribute.RawValue == Int8
    static var classID: COSEMClassID { get }
}

extension COSEMInterfaceClass {
    /// The descriptor of `attribute` of the object `logicalName`.
    public static func descriptor(_ logicalName: OBISCode, _ attribute: Attribute) -> CosemAttributeDescriptor {
        CosemAttributeDescriptor(classID: classID, instance: logicalName, attribute: attribute.rawValue)
    }
}

func expect<T>(_ value: T?, _ what: @autoclosure () -> String) throws -> T {
    guard let value else { throw DLMSError.invalidValue("expected \(what())") }
    return value
}

// MARK: - IC 1 Data

/// Data (class id 1): a value of any type.
public enum DataClass: COSEMInterfaceClass {
    public enum Attribute: Int8 { case logicalName = 1, value = 2 }
    public static let classID = COSEMClassID.data
}

// MARK: - IC 3 Register

/// Register (class id 3): a value with a scaler and unit.
public struct RegisterValue: Hashable, Sendable {
    public enum Attribute: Int8 { case logicalName = 1, value = 2, scalerUnit = 3 }
    public enum Method: Int8 { case reset = 1 }

    public var value: DLMSData
    public var scalerUnit: ScalerUnit

    public init(value: DLMSData, scalerUnit: ScalerUnit) {
        self.value = value
        self.scalerUnit = scalerUnit
    }

    /// - Parameters:
    ///   - value: attribute 2.
    ///   - scalerUnit: attribute 3, `structure { integer scaler, enum unit }`.
    public init(value: DLMSData, scalerUnit: DLMSData) throws {
        self.init(value: value, scalerUnit: try ScalerUnit(data: scalerUnit))
    }

    /// The physical value, `value × 10^scaler`, for numeric values.
    public var scaledValue: Double? { value.doubleValue.map(scalerUnit.scale) }
}

extension RegisterValue: COSEMInterfaceClass { public static let classID = COSEMClassID.register }

extension ScalerUnit {
    /// Reads `structure { integer, enum }`.
    public init(data: DLMSData) throws {
        guard case .structure(let e) = data, e.count == 2, case .int8(let scaler) = e[0], case .enumerated(let unit) = e[1] else {
            throw DLMSError.invalidValue("scaler_unit is structure { integer, enum }")
        }
        self.init(scaler: scaler, unit: DLMSUnit(unit))
    }

    public var data: DLMSData { .structure([.int8(scaler), .enumerated(unit.rawValue)]) }
}

// MARK: - IC 4 Extended register

/// Extended register (class id 4): a register with a status and the time it was captured.
public struct ExtendedRegisterValue: Hashable, Sendable, COSEMInterfaceClass {
    public enum Attribute: Int8 { case logicalName = 1, value = 2, scalerUnit = 3, status = 4, captureTime = 5 }
    public static let classID = COSEMClassID.extendedRegister

    public var register: RegisterValue
    public var status: DLMSData
    public var captureTime: CosemDateTime?

    public init(value: DLMSData, scalerUnit: DLMSData, status: DLMSData, captureTime: DLMSData) throws {
        register = try RegisterValue(value: value, scalerUnit: scalerUnit)
        self.status = status
        self.captureTime = captureTime.dateTimeValue
    }
}

// MARK: - IC 5 Demand register

/// Demand register (class id 5).
public struct DemandRegisterValue: Hashable, Sendable, COSEMInterfaceClass {
    public enum Attribute: Int8 {
        case logicalName = 1, currentAverageValue = 2, lastAverageValue = 3, scalerUnit = 4, status = 5
        case captureTime = 6, startTimeCurrent = 7, period = 8, numberOfPeriods = 9
    }
    public enum Method: Int8 { case reset = 1, nextPeriod = 2 }
    public static let classID = COSEMClassID.demandRegister

    public var currentAverage: DLMSData
    public var lastAverage: DLMSData
    public var scalerUnit: ScalerUnit
    public var status: DLMSData
    public var captureTime: CosemDateTime?
    public var startTimeCurrent: CosemDateTime?
    /// Seconds.
    public var period: UInt32
    public var numberOfPeriods: UInt16

    /// - Parameter attributes: attributes 2…9 in order.
    public init(attributes: [DLMSData]) throws {
        guard attributes.count == 8 else { throw DLMSError.invalidValue("demand register needs attributes 2…9") }
        currentAverage = attributes[0]
        lastAverage = attributes[1]
        scalerUnit = try ScalerUnit(data: attributes[2])
        status = attributes[3]
        captureTime = attributes[4].dateTimeValue
        startTimeCurrent = attributes[5].dateTimeValue
        period = UInt32(clamping: try expect(attributes[6].integerValue, "period as double-long-unsigned"))
        numberOfPeriods = UInt16(clamping: try expect(attributes[7].integerValue, "number_of_periods as long-unsigned"))
    }

    public var scaledLastAverage: Double? { lastAverage.doubleValue.map(scalerUnit.scale) }
}

// MARK: - IC 7 Profile generic

/// Profile generic (class id 7): a buffer of captured rows, e.g. load profiles and event logs.
public enum ProfileGeneric: COSEMInterfaceClass {
    public enum Attribute: Int8 {
        case logicalName = 1, buffer = 2, captureObjects = 3, capturePeriod = 4, sortMethod = 5
        case sortObject = 6, entriesInUse = 7, profileEntries = 8
    }
    public enum Method: Int8 { case reset = 1, capture = 2 }
    public static let classID = COSEMClassID.profileGeneric

    /// Attribute 5.
    public enum SortMethod: UInt8, Hashable, Sendable, Codable {
        case fifo = 1, lifo = 2, largest = 3, smallest = 4, nearestToZero = 5, farthestFromZero = 6
    }

    /// Reads attribute 3, `array of capture_object_definition`.
    public static func captureObjects(from data: DLMSData) throws -> [CaptureObjectDefinition] {
        guard case .array(let items) = data else { throw DLMSError.invalidValue("capture_objects is an array") }
        return try items.map(CaptureObjectDefinition.init(data:))
    }

    /// Decodes attribute 2 against the capture objects (attribute 3, or the selected columns of
    /// a range descriptor). A `null-data` cell is kept as `.null`; the Blue Book lets meters send
    /// null for a value equal to the previous row's, and `fillingNulls()` resolves those.
    public static func rows(buffer: DLMSData, captureObjects: [CaptureObjectDefinition]) throws -> [ProfileRow] {
        guard let entries = buffer.elements else { throw DLMSError.invalidValue("buffer is an array") }
        for index in entries.indices {
            let count = entries.elementCount(at: index)
            guard count == captureObjects.count else {
                throw DLMSError.invalidValue("buffer row \(index) has \(count ?? 0) values, expected \(captureObjects.count)")
            }
        }
        // The rows share one reference to the capture objects and the buffer: copying a row
        // retains one object, and a decoded row's values stay a window into the node table.
        let shared = ProfileRowsStorage(columns: captureObjects, entries: entries)
        return entries.indices.map { ProfileRow(shared, row: $0) }
    }

    /// Event-log rows (e.g. 0.0.99.98.x.255): the capture time and the event code of each row.
    /// - Parameter eventCodeObject: the capture object holding the event code; by default the first
    ///   non-clock column.
    public static func events(buffer: DLMSData, captureObjects: [CaptureObjectDefinition], eventCodeObject: CaptureObjectDefinition? = nil) throws -> [EventLogEntry] {
        let codeColumn = try expect(eventCodeObject.flatMap { captureObjects.firstIndex(of: $0) }
                                    ?? captureObjects.firstIndex { !($0.classID == .clock && $0.attributeIndex == 2) }, "an event code column")
        return try rows(buffer: buffer, captureObjects: captureObjects).map { row in
            EventLogEntry(time: row.captureTime, code: try expect(row.values[codeColumn].integerValue, "an integer event code"), values: row.values)
        }
    }
}

/// One row of a profile buffer.
///
/// A row is a reference to what the rows of its buffer share (capture objects, clock column,
/// the buffer's values) and its index: copying one retains a single object, and a decoded row's
/// values stay a window into the decoded node table. A row built from its parts, or changed,
/// holds a storage of its own.
public struct ProfileRow: Hashable, Sendable {
    private var rows: ProfileRowsStorage
    private var row: Int

    public var columns: [CaptureObjectDefinition] {
        get { rows.columns }
        set { self = ProfileRow(columns: newValue, values: values) }
    }

    public var values: DLMSDataList {
        get { rows.entries.elementList(at: row)! }
        set { self = ProfileRow(columns: columns, values: newValue) }
    }

    public init(columns: [CaptureObjectDefinition], values: DLMSDataList) {
        self.init(ProfileRowsStorage(columns: columns, entries: [.structure(values)]), row: 0)
    }

    /// Row `row` of `rows.entries`, which must be an array or a structure.
    init(_ rows: ProfileRowsStorage, row: Int) {
        self.rows = rows
        self.row = row
    }

    static func clockColumn(in columns: [CaptureObjectDefinition]) -> Int? {
        columns.firstIndex { $0.classID == .clock && $0.attributeIndex == 2 }
    }

    /// The value captured from `logicalName` (first matching column, optionally a given attribute).
    public func value(for logicalName: OBISCode, attribute: Int8? = nil) -> DLMSData? {
        columns.firstIndex { $0.logicalName == logicalName && (attribute == nil || $0.attributeIndex == attribute) }.map { values[$0] }
    }

    /// The time of the clock column (class 8, attribute 2), when present and specified: a
    /// date-time, or a 12-byte octet string read in place.
    public var captureTime: CosemDateTime? {
        guard let clockColumn = rows.clockColumn else { return nil }
        return rows.entries.dateTimeValue(row: row, column: clockColumn)
    }

    public static func == (lhs: ProfileRow, rhs: ProfileRow) -> Bool {
        lhs.columns == rhs.columns && lhs.values == rhs.values
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(columns)
        hasher.combine(values)
    }
}

/// What the rows of one profile buffer share: the capture objects, their clock column and the
/// buffer's entries, each an array or a structure (of a value per capture object when read by
/// `ProfileGeneric.rows`).
final class ProfileRowsStorage: Sendable {
    let columns: [CaptureObjectDefinition]
    let clockColumn: Int?
    let entries: DLMSDataList

    init(columns: [CaptureObjectDefinition], entries: DLMSDataList) {
        self.columns = columns
        self.clockColumn = ProfileRow.clockColumn(in: columns)
        self.entries = entries
    }
}

extension Array where Element == ProfileRow {
    /// Replaces null cells with the previous row's value in the same column (Blue Book §4.3.6
    /// "compressed" buffers). Clock cells are advanced by `capturePeriod` seconds instead.
    public func fillingNulls(capturePeriod: UInt32 = 0) -> [ProfileRow] {
        var out = self
        for i in out.indices.dropFirst() {
            // A row's values are changed as one list and stored back once: a row shares its
            // storage with the others until it is changed.
            var values = out[i].values
            let columns = out[i].columns
            var changed = false
            for c in values.indices where values[c] == .null {
                let previous = out[i - 1].values[c]
                let column = columns[c]
                if column.classID == .clock, column.attributeIndex == 2, capturePeriod > 0,
                   let t = previous.dateTimeValue, let unix = t.unixTime {
                    let next = CosemDateTime(unixTime: unix + Int64(capturePeriod), utcOffsetMinutes: t.utcOffsetMinutes ?? 0, clockStatus: t.clockStatus)
                    values[c] = .octetString(dateTime: next)
                } else {
                    values[c] = previous
                }
                changed = true
            }
            if changed { out[i].values = values }
        }
        return out
    }
}

/// One entry of an event log.
public struct EventLogEntry: Hashable, Sendable {
    public var time: CosemDateTime?
    public var code: Int64
    /// All captured values of the row.
    public var values: DLMSDataList

    public init(time: CosemDateTime?, code: Int64, values: DLMSDataList) {
        self.time = time
        self.code = code
        self.values = values
    }
}

// MARK: - IC 8 Clock

/// Clock (class id 8).
public struct ClockValue: Hashable, Sendable, COSEMInterfaceClass {
    public enum Attribute: Int8 {
        case logicalName = 1, time = 2, timeZone = 3, status = 4, daylightSavingsBegin = 5, daylightSavingsEnd = 6
        case daylightSavingsDeviation = 7, daylightSavingsEnabled = 8, clockBase = 9
    }
    public enum Method: Int8 { case adjustToQuarter = 1, adjustToMeasuringPeriod = 2, adjustToMinute = 3, adjustToPresetTime = 4, presetAdjustingTime = 5, shiftTime = 6 }
    public static let classID = COSEMClassID.clock

    public var time: CosemDateTime
    /// Minutes from local time to UTC (attribute 3, same convention as the date-time deviation).
    public var timeZone: Int16?
    public var status: ClockStatus?
    public var daylightSavingsBegin: CosemDateTime?
    public var daylightSavingsEnd: CosemDateTime?
    public var daylightSavingsDeviation: Int8?
    public var daylightSavingsEnabled: Bool?
    /// 0 not defined, 1 internal crystal, 2 mains 50 Hz, 3 mains 60 Hz, 4 GPS, 5 radio controlled.
    public var clockBase: UInt8?

    /// - Parameter attributes: attribute 2 and, optionally, attributes 3…9 in order.
    public init(attributes: [DLMSData]) throws {
        guard let first = attributes.first else { throw DLMSError.invalidValue("clock needs at least attribute 2") }
        time = try expect(first.dateTimeValue, "clock time as a date-time")
        func at(_ i: Int) -> DLMSData? { i < attributes.count ? attributes[i] : nil }
        timeZone = at(1)?.integerValue.map { Int16(clamping: $0) }
        status = at(2)?.integerValue.map { ClockStatus(rawValue: UInt8(truncatingIfNeeded: $0)) }
        daylightSavingsBegin = at(3)?.dateTimeValue
        daylightSavingsEnd = at(4)?.dateTimeValue
        daylightSavingsDeviation = at(5)?.integerValue.map { Int8(clamping: $0) }
        daylightSavingsEnabled = at(6)?.boolValue
        clockBase = at(7)?.integerValue.map { UInt8(clamping: $0) }
    }

    /// Method 6 `shift_time` parameter: seconds, −900…900.
    public static func shiftTimeParameter(seconds: Int16) -> DLMSData { .int16(seconds) }
}

// MARK: - IC 15 Association LN

/// Association LN (class id 15): the object list and access rights of the current association.
public enum AssociationLN: COSEMInterfaceClass {
    public enum Attribute: Int8 {
        case logicalName = 1, objectList = 2, associatedPartnersID = 3, applicationContextName = 4, xDLMSContextInfo = 5
        case authenticationMechanismName = 6, secret = 7, associationStatus = 8, securitySetupReference = 9
    }
    public enum Method: Int8 { case replyToHLSAuthentication = 1, changeHLSSecret = 2, addObject = 3, removeObject = 4 }
    public static let classID = COSEMClassID.associationLN

    /// Reads attribute 2, `object_list`.
    public static func objectList(from data: DLMSData) throws -> [ObjectListElement] {
        guard case .array(let items) = data else { throw DLMSError.invalidValue("object_list is an array") }
        return try items.map(ObjectListElement.init(data:))
    }
}

/// One element of an Association LN object list.
public struct ObjectListElement: Hashable, Sendable {
    public var classID: COSEMClassID
    public var version: UInt8
    public var logicalName: OBISCode
    public var attributeAccess: [AttributeAccess]
    public var methodAccess: [MethodAccess]

    /// `access_mode` of an attribute: 0 no-access, 1 read, 2 write, 3 read-write, 4–6 authenticated variants.
    public struct AttributeAccess: Hashable, Sendable {
        public var attribute: Int8
        public var accessMode: UInt8
        /// nil when the meter sent null-data (no selective access).
        public var accessSelectors: [Int8]?
        public var canRead: Bool { accessMode & 1 != 0 || accessMode == 4 || accessMode == 6 }
        public var canWrite: Bool { accessMode & 2 != 0 || accessMode == 5 || accessMode == 6 }
    }

    /// `access_mode` of a method: 0 no-access, 1 access, 2 authenticated-access (version 0 used a boolean).
    public struct MethodAccess: Hashable, Sendable {
        public var method: Int8
        public var accessMode: UInt8
    }

    public init(data: DLMSData) throws {
        guard case .structure(let e) = data, e.count == 4, case .uint16(let cid) = e[0], case .uint8(let version) = e[1],
              let ln = e[2].obisValue, case .structure(let rights) = e[3], rights.count == 2,
              case .array(let attrs) = rights[0], case .array(let methods) = rights[1] else {
            throw DLMSError.invalidValue("object_list_element is structure { class_id, version, logical_name, access_rights }")
        }
        classID = COSEMClassID(cid)
        self.version = version
        logicalName = ln
        attributeAccess = try attrs.map { item in
            guard case .structure(let a) = item, a.count == 3, case .int8(let id) = a[0], case .enumerated(let mode) = a[1] else {
                throw DLMSError.invalidValue("attribute_access_item is structure { integer, enum, access_selectors }")
            }
            let selectors: [Int8]? = a[2].elements.map { $0.compactMap { $0.integerValue.map { Int8(clamping: $0) } } }
            return AttributeAccess(attribute: id, accessMode: mode, accessSelectors: selectors)
        }
        methodAccess = try methods.map { item in
            guard case .structure(let m) = item, m.count == 2, case .int8(let id) = m[0] else {
                throw DLMSError.invalidValue("method_access_item is structure { integer, enum|boolean }")
            }
            switch m[1] {
            case .enumerated(let mode): return MethodAccess(method: id, accessMode: mode)
            case .boolean(let allowed): return MethodAccess(method: id, accessMode: allowed ? 1 : 0)
            default: throw DLMSError.invalidValue("method access_mode is enum or boolean")
            }
        }
    }
}

// MARK: - IC 17 SAP assignment

/// SAP assignment (class id 17): which logical devices answer on which SAP.
public enum SAPAssignment: COSEMInterfaceClass {
    public enum Attribute: Int8 { case logicalName = 1, sapAssignmentList = 2 }
    public enum Method: Int8 { case connectLogicalDevice = 1 }
    public static let classID = COSEMClassID.sapAssignment

    /// Reads attribute 2: `array of structure { long-unsigned SAP, octet-string logical_device_name }`.
    public static func assignments(from data: DLMSData) throws -> [(sap: UInt16, logicalDeviceName: String)] {
        guard case .array(let items) = data else { throw DLMSError.invalidValue("SAP_assignment_list is an array") }
        return try items.map { item in
            guard case .structure(let e) = item, e.count == 2, case .uint16(let sap) = e[0], let name = e[1].stringValue else {
                throw DLMSError.invalidValue("SAP assignment is structure { long-unsigned, octet-string }")
            }
            return (sap, name)
        }
    }
}

// MARK: - IC 64 Security setup

/// Security setup (class id 64).
public struct SecuritySetupValue: Hashable, Sendable, COSEMInterfaceClass {
    public enum Attribute: Int8 {
        case logicalName = 1, securityPolicy = 2, securitySuite = 3, clientSystemTitle = 4, serverSystemTitle = 5, certificates = 6
    }
    public enum Method: Int8 { case securityActivate = 1, keyTransfer = 2, keyAgreement = 3, generateKeyPair = 4, generateCertificateRequest = 5, importCertificate = 6, exportCertificate = 7, removeCertificate = 8 }
    public static let classID = COSEMClassID.securitySetup

    /// Version 0: 0 none, 1 authenticated, 2 encrypted, 3 both; version 1: a bit set.
    public var securityPolicy: UInt8
    /// 0 AES-GCM-128, 1 ECDH-ECDSA-AES-GCM-128-SHA-256, 2 ECDH-ECDSA-AES-GCM-256-SHA-384.
    public var securitySuite: UInt8
    public var clientSystemTitle: [UInt8]
    public var serverSystemTitle: [UInt8]

    /// - Parameter attributes: attributes 2…5 in order.
    public init(attributes: [DLMSData]) throws {
        guard attributes.count == 4, case .enumerated(let policy) = attributes[0], case .enumerated(let suite) = attributes[1],
              let client = attributes[2].bytes, let server = attributes[3].bytes else {
            throw DLMSError.invalidValue("security setup attributes 2…5 are enum, enum, octet-string, octet-string")
        }
        securityPolicy = policy
        securitySuite = suite
        clientSystemTitle = client
        serverSystemTitle = server
    }
}

// MARK: - IC 70 Disconnect control

/// Disconnect control (class id 70): the supply breaker.
public struct DisconnectControlValue: Hashable, Sendable, COSEMInterfaceClass {
    public enum Attribute: Int8 { case logicalName = 1, outputState = 2, controlState = 3, controlMode = 4 }
    public enum Method: Int8 { case remoteDisconnect = 1, remoteReconnect = 2 }
    public static let classID = COSEMClassID.disconnectControl

    /// Attribute 3.
    public enum ControlState: UInt8, Hashable, Sendable, Codable {
        case disconnected = 0, connected = 1, readyForReconnection = 2
    }

    /// Attribute 2: true when the supply is connected.
    public var outputState: Bool
    public var controlState: ControlState
    /// Attribute 4, 0…6 (which of local/remote/manual operations are allowed).
    public var controlMode: UInt8?

    public init(outputState: DLMSData, controlState: DLMSData, controlMode: DLMSData? = nil) throws {
        guard case .boolean(let output) = outputState, case .enumerated(let raw) = controlState, let state = ControlState(rawValue: raw) else {
            throw DLMSError.invalidValue("disconnect control output_state is boolean and control_state is enum 0…2")
        }
        self.outputState = output
        self.controlState = state
        if let controlMode {
            guard case .enumerated(let mode) = controlMode else { throw DLMSError.invalidValue("control_mode is enum") }
            self.controlMode = mode
        }
    }

    /// The method descriptor for remote disconnect or reconnect; both take `integer(0)`.
    public static func method(_ method: Method, on logicalName: OBISCode = .disconnectControl) -> CosemMethodDescriptor {
        CosemMethodDescriptor(classID: classID, instance: logicalName, method: method.rawValue)
    }

    public static let methodParameter = DLMSData.int8(0)
}
