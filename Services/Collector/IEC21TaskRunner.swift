import COSEM
import Contracts
import DLMSClient
import DLMSLink
import Foundation

/// Runs a task's actions on an IEC 62056-21 mode C meter: one programming-mode session (sign-on,
/// the P1 password) in which every action is done, then `B0`.
///
/// - Objects: the meter's time from `0.9.1` (hhmmss) and `0.9.2` (YYMMDD) first, the capture
///   time of every value of the action; registers (class 3/4, attribute 2) by their reduced
///   address `C.D.E` with `R1` (`1.0.1.8.0.255` → `1.8.0`), their value and unit as the meter
///   writes them (`001234.567*kWh` → `1234.567` kWh: decimal text, never a float); the clock
///   object itself as a date-time reading.
/// - Profiles: `A.B.99.n.0.255` is the load profile `P.0n`, read with the manufacturer's
///   command (`R5 P.01(from;to)` for EMH) and time format; a channel `1.5.0` becomes the reading
///   `1.0.1.5.0.255` at each row's time, with the row's status; rows outside the range,
///   repeated or out of order are handled by the reader (`IEC21LoadProfile.restricted`) and
///   counted in the result's details.
/// - Clock setting and the disconnect control are not part of mode C: such an action fails
///   alone with `task.unsupported` (the other actions still run).
///
/// Meter times are read as UTC (the mode C answer carries no deviation): meters read this
/// way must keep UTC or standard time, as the simulator's do.
struct IEC21TaskRunner {
    let meter: MeterSessionPlan.IEC21ModeC
    let session: TaskExecutor.SessionState
    let now: @Sendable () -> Date

    func run(_ actions: [TaskAction], over transport: any DLMSTransport) async throws {
        try await IEC21Reader.withProgrammingSession(over: transport, configuration: meter.configuration, password: meter.password) { programming in
            for action in actions {
                switch action {
                case .readObjects(let objects):
                    session.currentAction = "read-objects"
                    try await readObjects(objects, programming)
                case .readProfile(let profile, let from, let to):
                    session.currentAction = "read-profile \(profile.obis)"
                    try await readProfile(profile, from: from, to: to, programming)
                case .synchronizeClock:
                    session.objectFailures.append(CollectorError(code: .taskUnsupported, reason: "IEC 62056-21 mode C meters are not clock-synchronised by this collector",
                                                                 retriable: false, step: "synchronize-clock"))
                    continue
                case .setSupplyState(let target):
                    session.objectFailures.append(CollectorError(code: .taskUnsupported, reason: "an IEC 62056-21 mode C meter has no disconnect control to set \(target.rawValue)",
                                                                 retriable: false, step: "set-supply-state"))
                    continue
                }
                session.anyActionSucceeded = true
            }
        }
    }

    // MARK: - Objects

    private func readObjects(_ objects: [ObjectReference], _ programming: IEC21ProgrammingSession) async throws {
        let meterTime = try await readClock(programming)
        for object in objects {
            guard let code = OBISCode(object.obis) else {
                session.objectFailures.append(CollectorError(code: .taskInvalid, reason: "'\(object.obis)' is not an OBIS code", retriable: false, step: "get \(object.obis)"))
                continue
            }
            if object.classID == 8 && object.attribute == 2 {
                session.readings.append(Reading(obis: "\(code)", classID: 8, attribute: 2, captureTime: meterTime,
                                                valueType: .dateTime, value: ContractDate.format(meterTime)))
                continue
            }
            guard object.attribute == 2, [1, 3, 4].contains(object.classID) else {
                session.objectFailures.append(CollectorError(code: .taskUnsupported, reason: "\(object.obis) attribute \(object.attribute) of class \(object.classID) has no IEC 62056-21 data set",
                                                             retriable: false, step: "get \(object.obis)"))
                continue
            }
            let address = Self.address(of: code)
            let sets: [IEC21DataSet]
            do {
                sets = try await programming.read(address)
            } catch let error as DLMSClientError where error.code == .dataAccessFailed {
                session.objectFailures.append(CollectorError(code: .objectUnavailable, reason: "\(object.obis) (\(address)): \(error.reason)", retriable: false, step: "get \(object.obis)"))
                continue
            }
            guard let value = sets.first(where: { Self.sameAddress($0.address, address) })?.values.first ?? sets.first?.values.first else {
                session.objectFailures.append(CollectorError(code: .malformedResponse, reason: "\(address) was answered without a value", retriable: false, step: "get \(object.obis)"))
                continue
            }
            session.readings.append(Self.reading(obis: "\(code)", classID: object.classID, text: value.value, unit: value.unit, captureTime: meterTime))
        }
    }

    /// The meter's time: `0.9.2` (YYMMDD) and `0.9.1` (hhmmss), read as UTC.
    private func readClock(_ programming: IEC21ProgrammingSession) async throws -> Date {
        let time = try await programming.read("0.9.1").first?.values.first?.value ?? ""
        let date = try await programming.read("0.9.2").first?.values.first?.value ?? ""
        guard let stamp = IEC21Timestamp(Self.digits(date) + Self.digits(time)) else {
            throw CollectorError(code: .malformedResponse, reason: "the meter's time 0.9.2(\(date)) 0.9.1(\(time)) is not a date and time",
                                 retriable: false, step: "get 0.9.1")
        }
        return Date(timeIntervalSince1970: TimeInterval(stamp.secondsSince1970))
    }

    // MARK: - Profiles

    private func readProfile(_ profile: ObjectReference, from: Date, to: Date, _ programming: IEC21ProgrammingSession) async throws {
        guard let code = OBISCode(profile.obis) else {
            session.objectFailures.append(CollectorError(code: .taskInvalid, reason: "'\(profile.obis)' is not an OBIS code", retriable: false, step: "read-profile"))
            return
        }
        let address = Self.loadProfileAddress(of: code) ?? meter.loadProfile.address
        let answer = try await programming.readLoadProfile(address: address, from: from, to: to, format: meter.loadProfile.timestampFormat,
                                                           commandType: meter.loadProfile.commandType)
        let channels = answer.channels.map { channel in (obis: Self.obis(ofChannel: channel.address), unit: channel.unit) }
        var readings: [Reading] = []
        readings.reserveCapacity(answer.rows.count * channels.count)
        // The reader keeps only rows inside the range, in order, each interval once.
        for row in answer.rows {
            let captureTime = Date(timeIntervalSince1970: TimeInterval(row.time.secondsSince1970))
            let status = row.status.flatMap { Int($0, radix: 16) }
            for (channel, text) in zip(channels, row.values) {
                var reading = Self.reading(obis: channel.obis, classID: 3, text: text, unit: channel.unit, captureTime: captureTime)
                reading.status = status
                reading.profile = profile.obis
                readings.append(reading)
            }
        }
        session.readings.append(contentsOf: readings)
        session.details["profileRows.\(profile.obis)"] = "\(answer.rows.count)"
        let discarded = answer.discarded
        if discarded.total + discarded.reordered > 0 {
            session.details["profileRowsDiscarded.\(profile.obis)"] =
                "outside-range \(discarded.outsideRange), duplicates \(discarded.duplicates), reordered \(discarded.reordered)"
        }
    }

    // MARK: - Addresses and values

    /// The reduced address `C.D.E` of an OBIS code (what mode C meters name their data sets by).
    static func address(of code: OBISCode) -> String {
        "\(Self.group(code.c)).\(Self.group(code.d)).\(code.e)"
    }

    /// `A.B.99.n.0.255` (n = 1…9) → `P.0n`; other codes have no standard load-profile address.
    static func loadProfileAddress(of code: OBISCode) -> String? {
        guard code.c == 99, (1...9).contains(code.d), code.e == 0 else { return nil }
        return "P.0\(code.d)"
    }

    /// A profile channel `1.5.0` (or `1-0:1.5.0*255`) as the OBIS code of its readings, `1.0.1.5.0.255`
    /// (electricity, channel 0, F = 255); an address that is not `C.D.E` is kept as it is.
    static func obis(ofChannel address: String) -> String {
        let (groups, reduced) = split(address)
        var medium = "1", channel = "0"
        if let prefix = groups?.split(separator: "-"), prefix.count == 2 { medium = String(prefix[0]); channel = String(prefix[1]) }
        let parts = reduced.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isNumber) }) else { return address }
        return "\(medium).\(channel).\(parts[0]).\(parts[1]).\(parts[2]).255"
    }

    /// Mode C writes the letter groups of C and D (C = 96 'C', 97 'F', 98 'L', 99 'P').
    private static func group(_ value: UInt8) -> String {
        switch value {
        case 96: "C"
        case 97: "F"
        case 98: "L"
        case 99: "P"
        default: "\(value)"
        }
    }

    private static func sameAddress(_ answered: String, _ asked: String) -> Bool {
        split(answered).reduced == asked
    }

    /// `1-0:1.8.0*255` as its `A-B` groups (before `:`, if any) and the reduced `C.D.E` (without `*F`).
    private static func split(_ address: String) -> (groups: Substring?, reduced: Substring) {
        var reduced = Substring(address)
        var groups: Substring?
        if let colon = reduced.firstIndex(of: ":") {
            groups = reduced[..<colon]
            reduced = reduced[reduced.index(after: colon)...]
        }
        if let star = reduced.firstIndex(of: "*") { reduced = reduced[..<star] }
        return (groups, reduced)
    }

    private static func digits(_ text: String) -> String { String(text.filter(\.isNumber)) }

    /// A data set's value as a reading: a decimal number when it is one, else text.
    static func reading(obis: String, classID: Int, text: String, unit: String?, captureTime: Date) -> Reading {
        if let number = decimal(text) {
            return Reading(obis: obis, classID: classID, attribute: 2, captureTime: captureTime, valueType: .number, value: number,
                           unit: unit.flatMap { $0.isEmpty ? nil : $0 })
        }
        return Reading(obis: obis, classID: classID, attribute: 2, captureTime: captureTime, valueType: .text, value: text)
    }

    /// A mode C number in the canonical form of readings: `001234.500` → `1234.5`, `-0.010` →
    /// `-0.01`, `000.000` → `0`; `nil` when the text is not a decimal number.
    static func decimal(_ text: String) -> String? {
        var magnitude = Substring(text.trimmingCharacters(in: .whitespaces))
        var negative = false
        if magnitude.first == "-" || magnitude.first == "+" {
            negative = magnitude.first == "-"
            magnitude = magnitude.dropFirst()
        }
        let parts = magnitude.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let integerPart = parts.first, !integerPart.isEmpty || parts.count == 2,
              integerPart.allSatisfy({ $0.isASCII && $0.isNumber }),
              parts.count == 1 || (!parts[1].isEmpty && parts[1].allSatisfy({ $0.isASCII && $0.isNumber })) else { return nil }
        var integer = integerPart.drop { $0 == "0" }
        if integer.isEmpty { integer = "0" }
        var fraction = parts.count == 2 ? parts[1] : ""
        while fraction.last == "0" { fraction = fraction.dropLast() }
        let body = fraction.isEmpty ? String(integer) : "\(integer).\(fraction)"
        return negative && body != "0" ? "-" + body : body
    }
}
