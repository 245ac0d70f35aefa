import COSEM
import DLMSCodec
import Foundation
import NIOConcurrencyHelpers

/// What a session knows about its association, for attributes that describe it (class 15).
struct AssociationContext: Sendable {
    var role: ClientRole
    var clientSAP: UInt16
    var conformance: Conformance
    /// The negotiated PDU size: the largest APDU either side sends.
    var pduSize: Int
    var mechanism: AuthenticationMechanism
    var dlmsVersion: UInt8
}

/// The value read for an attribute: data, a lazily encoded profile selection, or a refusal.
enum AttributeReadResult: Sendable {
    case data(DLMSData)
    case rows(ProfileRows)
    case failure(DataAccessResult)
}

extension SimulatedMeter {
    /// The most rows one profile read may return; the virtual buffers hold at most 5760.
    static let maximumRowsPerRead = 10_000

    enum Resolved {
        case success(SimulatedObject)
        case failure(DataAccessResult)
    }

    /// Finds the object addressed by a descriptor and checks its class.
    static func resolve(_ classID: COSEMClassID, _ instance: OBISCode) -> Resolved {
        guard let object = SimulatedObject.byOBIS[instance] else { return .failure(.objectUndefined) }
        guard object.classID == classID else { return .failure(.objectClassInconsistent) }
        return .success(object)
    }

    // MARK: - GET

    func read(_ descriptor: CosemAttributeDescriptor, selection: AccessSelection?, association: AssociationContext, now: Date) -> AttributeReadResult {
        let object: SimulatedObject
        switch Self.resolve(descriptor.classID, descriptor.instance) {
        case .success(let o): object = o
        case .failure(let r): return .failure(r)
        }
        guard object.access(attribute: descriptor.attribute, role: association.role).canRead else { return .failure(.readWriteDenied) }
        let meterNow = meterTime(at: now)
        let unixNow = Int64(meterNow.timeIntervalSince1970.rounded(.down))
        if let profile = object.profile, descriptor.attribute == 2 {
            guard selection == nil || association.conformance.contains(.selectiveAccess) else { return .failure(.otherReason) }
            return selectRows(profile, selection: selection, now: unixNow)
        }
        guard selection == nil else { return .failure(.otherReason) }
        if descriptor.attribute == 1 { return .data(.octetString(obis: object.obis)) }
        return value(of: object, attribute: descriptor.attribute, association: association, now: unixNow).map(AttributeReadResult.data) ?? .failure(.readWriteDenied)
    }

    private func value(of object: SimulatedObject, attribute: Int8, association: AssociationContext, now: Int64) -> DLMSData? {
        if let register = object.register {
            switch attribute {
            case 2: return .uint32(model.value(register, at: now))
            case 3: return ScalerUnit(scaler: 0, unit: .wattHour).data
            default: return nil
            }
        }
        if let profile = object.profile {
            switch attribute {
            case 3: return .array(DLMSDataList(profile.captureObjects.map(\.data)))
            case 4: return .uint32(UInt32(profile.capturePeriod))
            case 5: return .enumerated(1)                                                  // fifo
            case 6: return CaptureObjectDefinition(classID: COSEMClassID(0), logicalName: OBISCode(0, 0, 0, 0, 0, 0), attributeIndex: 0).data
            case 7: return .uint32(UInt32(profile.entries(model: model, now: now).count))
            case 8: return .uint32(UInt32(profile.profileEntries))
            default: return nil
            }
        }
        switch (object, attribute) {
        case (.logicalDeviceName, 2): return .octetString(bytes: Array(("SWH" + configuration.serialNumber).utf8))
        case (.serialNumber, 2): return .visibleString(text: configuration.serialNumber)
        case (.status, 2): return .uint8(0)
        case (.eventCode, 2):
            guard case .listed(let events) = SimulatedProfile.events.entries(model: model, now: now) else { return .uint8(0) }
            return .uint8(events.last?.code ?? 0)
        case (.invocationCounter, 2): return .uint32(reportedClientInvocationCounter)
        case (.clock, _): return clockAttribute(attribute, now: now)
        case (.disconnectControl, _):
            let (disconnect, mode) = state.withLockedValue { ($0.disconnectState, $0.controlMode) }
            switch attribute {
            case 2: return .boolean(disconnect == .connected)
            case 3: return .enumerated(disconnect.rawValue)
            case 4: return .enumerated(mode)
            default: return nil
            }
        case (.securitySetup, _):
            switch attribute {
            case 2: return .enumerated(configuration.security == nil ? 0 : 3)                 // security_policy (v0): authenticated and encrypted offered
            case 3: return .enumerated(0)                                                  // security_suite 0
            case 4: return .octetString(bytes: [])                                         // client_system_title: none yet
            case 5: return .octetString(bytes: serverSystemTitle)
            default: return nil
            }
        case (.currentAssociation, _): return associationAttribute(attribute, association)
        default: return nil
        }
    }

    /// "SWH" and the low 40 bits of the meter's key: 8 bytes, like a manufacturer system title.
    var serverSystemTitle: [UInt8] { Array("SWH".utf8) + (0..<5).map { UInt8(truncatingIfNeeded: model.key >> (8 * (4 - $0))) } }

    private func clockAttribute(_ attribute: Int8, now: Int64) -> DLMSData? {
        switch attribute {
        case 2: return .octetString(dateTime: CosemDateTime(unixTime: now))
        case 3: return .int16(0)                                                           // time_zone: the meter runs UTC
        case 4: return .uint8(0)                                                           // status: ok
        case 5: return .octetString(dateTime: CosemDateTime(date: CosemDate(year: 0xFFFF, month: 3, dayOfMonth: 0xFE, dayOfWeek: 7),
                                                            time: CosemTime(hour: 2, minute: 0, second: 0, hundredths: 0)))
        case 6: return .octetString(dateTime: CosemDateTime(date: CosemDate(year: 0xFFFF, month: 10, dayOfMonth: 0xFE, dayOfWeek: 7),
                                                            time: CosemTime(hour: 3, minute: 0, second: 0, hundredths: 0)))
        case 7: return .int8(60)
        case 8: return .boolean(false)
        case 9: return .enumerated(1)                                                      // clock_base: internal crystal
        default: return nil
        }
    }

    private func associationAttribute(_ attribute: Int8, _ a: AssociationContext) -> DLMSData? {
        /// The structured object identifier form of class 15 v1 (joint-iso-ccitt(2) country(16) country-name(756) ...).
        func dlmsUA(_ kind: UInt8, _ id: UInt8) -> DLMSData { .structure([.uint8(2), .uint8(16), .uint16(756), .uint8(5), .uint8(8), .uint8(kind), .uint8(id)]) }
        switch attribute {
        case 2: return SimulatedObject.objectList(for: a.role)
        case 3: return .structure([.int8(Int8(truncatingIfNeeded: a.clientSAP)), .uint16(1)])
        case 4: return dlmsUA(1, 1)
        case 5:
            let c = a.conformance.rawValue
            return .structure([.bitString(DLMSBitString(bitCount: 24, bytes: [UInt8(c >> 16 & 0xFF), UInt8(c >> 8 & 0xFF), UInt8(c & 0xFF)])),
                               .uint16(UInt16(clamping: a.pduSize)), .uint16(UInt16(clamping: a.pduSize)), .uint8(a.dlmsVersion), .int8(0), .octetString(bytes: [])])
        case 6: return dlmsUA(2, a.mechanism.id ?? 0)
        case 8: return .enumerated(2)                                                      // associated
        case 9: return .octetString(obis: .securitySetup)
        default: return nil
        }
    }

    // MARK: - Profiles and selective access

    func selectRows(_ profile: SimulatedProfile, selection: AccessSelection?, now: Int64) -> AttributeReadResult {
        let entries = profile.entries(model: model, now: now)
        let columnCount = profile.captureObjects.count
        var rows = 0..<entries.count
        var columns = Array(0..<columnCount)
        if let selection {
            switch selection.selector {
            case 1:
                guard let range = try? RangeDescriptor(data: selection.parameters),
                      Self.matches(range.restrictingObject, SimulatedProfile.clockColumn),
                      let from = Self.timeBound(range.from, upper: false, now: now),
                      let to = Self.timeBound(range.to, upper: true, now: now) else { return .failure(.otherReason) }
                rows = entries.indices(from: from, to: to)
                if !range.selectedValues.isEmpty {
                    var picked: [Int] = []
                    for value in range.selectedValues {
                        guard let i = profile.captureObjects.firstIndex(where: { Self.matches(value, $0) }) else { return .failure(.otherReason) }
                        picked.append(i)
                    }
                    columns = picked
                }
            case 2:
                guard let entry = try? EntryDescriptor(data: selection.parameters) else { return .failure(.otherReason) }
                let from = Int(max(entry.fromEntry, 1)) - 1
                let to = entry.toEntry == 0 ? entries.count : min(Int(entry.toEntry), entries.count)
                rows = from < to ? from..<to : 0..<0
                let firstColumn = Int(max(entry.fromSelectedValue, 1)) - 1
                let lastColumn = entry.toSelectedValue == 0 ? columnCount : min(Int(entry.toSelectedValue), columnCount)
                guard firstColumn < lastColumn else { return .failure(.otherReason) }
                columns = Array(firstColumn..<lastColumn)
            default:
                return .failure(.otherReason)
            }
        }
        guard rows.count <= Self.maximumRowsPerRead else { return .failure(.otherReason) }
        return .rows(ProfileRows(profile: profile, model: model, entries: entries, rows: rows, columns: columns))
    }

    static func matches(_ a: CaptureObjectDefinition, _ b: CaptureObjectDefinition) -> Bool {
        a.classID == b.classID && a.logicalName == b.logicalName && a.attributeIndex == b.attributeIndex
    }

    /// A range-descriptor bound in unix seconds. Fields left unspecified widen the bound: an
    /// unspecified year is the meter's current year, other fields take their lowest value for
    /// `from` and their highest for `to`; an unspecified deviation means meter time (UTC); a
    /// fully unspecified date-time is no bound. Nil when the value is no date-time.
    static func timeBound(_ data: DLMSData, upper: Bool, now: Int64) -> Int64? {
        let dt: CosemDateTime
        switch data {
        case .octetString(let bytes): guard let d = try? CosemDateTime(octetString: bytes) else { return nil }; dt = d
        case .dateTime(let d): dt = d
        default: return nil
        }
        let d = dt.date, t = dt.time
        if d.yearValue == nil, d.monthValue == nil, d.dayValue == nil, t.hourValue == nil, t.minuteValue == nil, t.secondValue == nil {
            return upper ? Int64.max : Int64.min
        }
        let current = CosemDateTime(unixTime: now)
        let year = d.yearValue ?? Int(current.date.year)
        let month = d.monthValue ?? (upper ? 12 : 1)
        let deviation = Int16(dt.deviationValue ?? 0)
        func unix(_ y: Int, _ m: Int, _ day: Int, _ h: Int, _ mi: Int, _ s: Int) -> Int64? {
            CosemDateTime(year: y, month: m, day: day, hour: h, minute: mi, second: s, deviation: deviation).unixTime
        }
        guard var bound = unix(year, month, d.dayValue ?? 1, t.hourValue ?? 0, t.minuteValue ?? 0, t.secondValue ?? 0) else { return nil }
        if upper {
            if t.secondValue == nil { bound += 59 }
            if t.minuteValue == nil { bound += 59 * 60 }
            if t.hourValue == nil { bound += 23 * 3600 }
            if d.dayValue == nil, let first = unix(year, month, 1, 0, 0, 0),
               let next = month == 12 ? unix(year + 1, 1, 1, 0, 0, 0) : unix(year, month + 1, 1, 0, 0, 0) {
                bound += next - first - 86_400
            }
        }
        return bound
    }

    // MARK: - SET

    func write(_ descriptor: CosemAttributeDescriptor, selection: AccessSelection?, value: DLMSData, association: AssociationContext, now: Date) -> DataAccessResult {
        let object: SimulatedObject
        switch Self.resolve(descriptor.classID, descriptor.instance) {
        case .success(let o): object = o
        case .failure(let r): return r
        }
        guard object.access(attribute: descriptor.attribute, role: association.role).canWrite else { return .readWriteDenied }
        guard selection == nil else { return .otherReason }
        switch (object, descriptor.attribute) {
        case (.clock, 2):
            let dt: CosemDateTime
            switch value {
            case .octetString(let bytes): guard let d = try? CosemDateTime(octetString: bytes) else { return .typeUnmatched }; dt = d
            case .dateTime(let d): dt = d
            default: return .typeUnmatched
            }
            var plain = dt
            if plain.deviationValue == nil { plain.deviation = 0 }
            guard let target = plain.unixTime else { return .otherReason }
            let hundredths = Double(dt.time.hundredthsValue ?? 0) / 100
            setMeterTime(Double(target) + hundredths, now: now)
            return .success
        case (.disconnectControl, 4):
            guard case .enumerated(let mode) = value else { return .typeUnmatched }
            guard mode <= 6 else { return .otherReason }
            state.withLockedValue { $0.controlMode = mode }
            return .success
        default:
            return .readWriteDenied
        }
    }

    /// Moves the meter clock so that it reads `unixTime` at real time `now`.
    func setMeterTime(_ unixTime: Double, now: Date) {
        let wanted = unixTime - now.timeIntervalSince1970 - configuration.clockOffset.timeInterval
        state.withLockedValue { $0.clockAdjustment = .milliseconds(Int64((wanted * 1000).rounded())) }
    }

    // MARK: - ACTION

    func invoke(_ descriptor: CosemMethodDescriptor, parameters: DLMSData?, association: AssociationContext, now: Date) -> ActionResult {
        let object: SimulatedObject
        switch Self.resolve(descriptor.classID, descriptor.instance) {
        case .success(let o): object = o
        case .failure(let r): return ActionResult(rawValue: r.rawValue)
        }
        guard object.canInvoke(method: descriptor.method, role: association.role) else { return .readWriteDenied }
        switch (object, descriptor.method) {
        case (.disconnectControl, 1): return remoteDisconnect()
        case (.disconnectControl, 2): return remoteReconnect()
        case (.clock, 1):
            // adjust_to_quarter: to the nearest quarter hour.
            let t = meterTime(at: now).timeIntervalSince1970
            setMeterTime((t / 900).rounded() * 900, now: now)
            return .success
        case (.clock, 6):
            // shift_time(long seconds), −900…900.
            guard let seconds = parameters?.integerValue, (-900...900).contains(seconds) else { return .typeUnmatched }
            state.withLockedValue { $0.clockAdjustment += .seconds(seconds) }
            return .success
        default:
            return .readWriteDenied
        }
    }

    /// remote_disconnect (class 70 transitions b and c): any state → disconnected, unless control_mode is 0.
    func remoteDisconnect() -> ActionResult {
        state.withLockedValue { s in
            s.disconnectActions += 1
            guard s.controlMode != 0 else { return .temporaryFailure }
            s.disconnectState = .disconnected
            return .success
        }
    }

    /// remote_reconnect: from disconnected to ready-for-reconnection in control modes 2, 4, 6
    /// (transition a, the customer then confirms locally) or straight to connected in modes 1, 3,
    /// 5 (as a ready-to-connected transition d right after a); ready-for-reconnection → connected (d).
    func remoteReconnect() -> ActionResult {
        state.withLockedValue { s in
            s.reconnectActions += 1
            guard s.controlMode != 0 else { return .temporaryFailure }
            switch s.disconnectState {
            case .connected: break
            case .readyForReconnection: s.disconnectState = .connected
            case .disconnected: s.disconnectState = [2, 4, 6].contains(s.controlMode) ? .readyForReconnection : .connected
            }
            return .success
        }
    }
}
