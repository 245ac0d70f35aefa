import COSEM
import Foundation

// MARK: - IEC 62056-21 view of a simulated meter

/// The same deterministic values as the DLMS objects, written as IEC 62056-21 data sets
/// (reduced OBIS addresses, kWh with three decimals: exactly the Wh registers / 1000).
extension SimulatedMeter {
    /// The registers of a readout and of `R1`, by reduced OBIS address.
    static let iec21Registers: [(address: String, register: EnergyRegister)] = [
        ("1.8.0", .importTotal), ("1.8.1", .importTariff1), ("1.8.2", .importTariff2), ("2.8.0", .exportTotal),
    ]

    /// The data lines of a mode C readout at real time `now`: error register, serial number,
    /// meter time (0.9.1 hhmmss) and date (0.9.2 YYMMDD), then the energy registers at that
    /// same second of meter time.
    public func iec21ReadoutLines(at now: Date) -> [String] {
        let time = Int64(meterTime(at: now).timeIntervalSince1970.rounded(.down))
        var lines = ["F.F(00000000)", "C.1.0(\(configuration.serialNumber))"]
        lines.append("0.9.1(\(Self.iec21Time(time)))")
        lines.append("0.9.2(\(Self.iec21Date(time)))")
        for (address, register) in Self.iec21Registers {
            lines.append("\(address)(\(Self.kWh(model.value(register, at: time)))*kWh)")
        }
        return lines
    }

    /// The data set `address(value*unit)` for an `R1` read at real time `now`, or `nil` for an
    /// address the meter does not have. Accepts `1.8.0`, `1.8.0*255` and `1-0:1.8.0*255`.
    public func iec21DataSet(_ address: String, at now: Date) -> String? {
        var reduced = Substring(address)
        if let colon = reduced.firstIndex(of: ":") { reduced = reduced[reduced.index(after: colon)...] }
        if let star = reduced.firstIndex(of: "*") { reduced = reduced[..<star] }
        let time = Int64(meterTime(at: now).timeIntervalSince1970.rounded(.down))
        switch reduced {
        case "F.F": return "F.F(00000000)"
        case "C.1.0", "0.0.0": return "\(reduced)(\(configuration.serialNumber))"
        case "0.9.1": return "0.9.1(\(Self.iec21Time(time)))"
        case "0.9.2": return "0.9.2(\(Self.iec21Date(time)))"
        default:
            guard let register = Self.iec21Registers.first(where: { $0.address == reduced })?.register else { return nil }
            return "\(reduced)(\(Self.kWh(model.value(register, at: time)))*kWh)"
        }
    }

    /// The EMH-style load profile answer to `R5 P.01(from;to)` (times `YYMMDDhhmm`, optionally
    /// with a leading season digit and trailing seconds; an empty end means now): a header line
    /// `P.01(0YYMMDDhhmmss)(00)(15)(2)(1.5.0)(kW)(2.5.0)(kW)` with the time of the first row,
    /// then one line per 15-minute capture time t in from…to, `(P+)(P-)`: the average import
    /// and export power of the interval ending at t, i.e. 4 × (register(t) − register(t−15 min))
    /// in W, written in kW with three decimals. `nil` for a malformed request or an empty range.
    public func iec21LoadProfile(_ request: String, at now: Date) -> [String]? {
        guard request.hasPrefix("P.01("), request.hasSuffix(")") else { return nil }
        let range = request.dropFirst(5).dropLast()
        let parts = range.split(separator: ";", omittingEmptySubsequences: false)
        guard parts.count == 2, let from = Self.iec21Timestamp(parts[0]) else { return nil }
        let meterNow = Int64(meterTime(at: now).timeIntervalSince1970.rounded(.down))
        guard let to = parts[1].isEmpty ? meterNow : Self.iec21Timestamp(parts[1]) else { return nil }
        let period = SimulatedProfile.load.capturePeriod
        let oldest = meterNow.floorDivided(by: period) - Int64(SimulatedProfile.load.profileEntries) + 1
        let first = max(from.ceilDivided(by: period), oldest)
        let last = min(to, meterNow).floorDivided(by: period)
        guard first <= last else { return nil }
        var lines = ["P.01(0\(Self.iec21Date(first * period))\(Self.iec21Time(first * period)))(00)(15)(2)(1.5.0)(kW)(2.5.0)(kW)"]
        lines.reserveCapacity(Int(last - first) + 2)
        for n in first...last {
            let t = n * period
            func power(_ register: EnergyRegister) -> String {
                let energy = model.value(register, at: t) &- model.value(register, at: t - period)
                return Self.kWh(UInt64(energy) * UInt64(3600 / period), padded: false)
            }
            lines.append("(\(power(.importTotal)))(\(power(.exportTotal)))")
        }
        return lines
    }

    // MARK: - Formatting

    /// Wh as kWh with three decimals; `padded` writes six integer digits (readout style).
    static func kWh<T: BinaryInteger>(_ wattHours: T, padded: Bool = true) -> String {
        let value = UInt64(wattHours)
        let integer = String(value / 1000), fraction = String(value % 1000)
        return String(repeating: "0", count: padded ? max(0, 6 - integer.count) : 0) + integer + "." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }

    static func utc(_ unixTime: Int64) -> DateComponents {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: Date(timeIntervalSince1970: TimeInterval(unixTime)))
    }

    static func twoDigits(_ value: Int?) -> String {
        let value = (value ?? 0) % 100
        return value < 10 ? "0\(value)" : "\(value)"
    }

    /// hhmmss (UTC: simulated meters keep no daylight saving time).
    static func iec21Time(_ unixTime: Int64) -> String {
        let c = utc(unixTime)
        return twoDigits(c.hour) + twoDigits(c.minute) + twoDigits(c.second)
    }

    /// YYMMDD.
    static func iec21Date(_ unixTime: Int64) -> String {
        let c = utc(unixTime)
        return twoDigits(c.year) + twoDigits(c.month) + twoDigits(c.day)
    }

    /// `YYMMDDhhmm`, `sYYMMDDhhmm` (season digit), `YYMMDDhhmmss` or `sYYMMDDhhmmss` as unix time (UTC, 20YY).
    static func iec21Timestamp(_ text: Substring) -> Int64? {
        var digits = Array(text.utf8)
        guard digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        if digits.count == 11 || digits.count == 13 { digits.removeFirst() }
        guard digits.count == 10 || digits.count == 12 else { return nil }
        func field(_ index: Int) -> Int { Int(digits[index] - 0x30) * 10 + Int(digits[index + 1] - 0x30) }
        var components = DateComponents()
        components.year = 2000 + field(0)
        components.month = field(2)
        components.day = field(4)
        components.hour = field(6)
        components.minute = field(8)
        components.second = digits.count == 12 ? field(10) : 0
        guard (1...12).contains(field(2)), (1...31).contains(field(4)), field(6) < 24, field(8) < 60 else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar.date(from: components).map { Int64($0.timeIntervalSince1970) }
    }
}
