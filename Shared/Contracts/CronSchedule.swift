import Foundation

/// Why a cron expression or time zone is refused; `reason` is readable and names the bad field.
public struct CronScheduleError: Error, Hashable, CustomStringConvertible {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// A cron-like schedule in a time zone (5 fields: minute hour day-of-month month day-of-week).
///
/// Syntax and day rule follow Vixie cron: `*`, `n`, `a-b`, lists, `*/n`, `a-b/n`, `a/n`; month
/// and weekday names (case-insensitive); weekday 0 and 7 are Sunday; macros `@yearly`,
/// `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`. When both day fields are
/// restricted a day matches if *either* matches; a day field whose text begins with `*`
/// (`*`, `*/2`) counts as unrestricted, as in Vixie cron, so `0 0 */10 * 5` needs both.
///
/// Fields are matched against wall-clock time in `timeZone` (proleptic Gregorian calendar).
/// Daylight saving — every wall-clock slot fires at most once:
/// - a slot that does not exist (spring-forward gap) fires at the first instant after the gap
///   (the transition, e.g. 03:00 CEST); slots that land on the same instant fire once;
/// - a slot that exists twice (fall-back) fires at its first occurrence only. Minute-granular
///   schedules therefore fire through the first pass of the repeated hour and stay silent
///   during the second pass (`*/15 * * * *` fires 96 times on a 25-hour day, 92 on a 23-hour day).
public struct CronSchedule: Sendable, Hashable, CustomStringConvertible {
    public let expression: String
    public let timeZone: TimeZone
    // Bit sets of allowed values: bit n set ⇔ value n allowed (weekday 7 is folded onto 0).
    private let minutes: UInt64, hours: UInt64, days: UInt64, months: UInt64, weekdays: UInt64
    /// Both day fields restricted: the Vixie OR rule applies.
    private let dayOr: Bool

    /// Parses; throws CronScheduleError for a bad field or a schedule that can never fire
    /// (e.g. `0 0 30 2 *` — Feb 30, or `0 0 31 4,6,9,11 *`).
    public init(_ expression: String, timeZone: TimeZone) throws(CronScheduleError) {
        let text = expression.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { throw CronScheduleError("expression is empty") }
        var body = text
        if text.hasPrefix("@") {
            guard let expanded = Self.macros[text.lowercased()] else {
                throw CronScheduleError("unknown macro \(text) (expected @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly)")
            }
            body = expanded
        }
        let parts = body.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard parts.count == 5 else {
            throw CronScheduleError("expected 5 fields (minute hour day-of-month month day-of-week), got \(parts.count)")
        }
        minutes = try Self.parseField(parts[0], Self.fields[0])
        hours = try Self.parseField(parts[1], Self.fields[1])
        days = try Self.parseField(parts[2], Self.fields[2])
        months = try Self.parseField(parts[3], Self.fields[3])
        weekdays = try Self.parseField(parts[4], Self.fields[4])
        dayOr = !parts[2].hasPrefix("*") && !parts[4].hasPrefix("*")
        self.expression = text
        self.timeZone = timeZone
        // Unless the weekday rule can rescue it (OR), some listed day must exist in some listed
        // month (February counted with 29 days; 29 Feb recurs at most 8 years apart).
        if !dayOr {
            let maxDays = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
            let possible = (1...12).contains { m in months & (1 << m) != 0 && days & ((2 << maxDays[m]) - 2) != 0 }
            if !possible {
                throw CronScheduleError("day-of-month: never fires, no day in '\(parts[2])' exists in month '\(parts[3])'")
            }
        }
    }

    /// Same, the zone by IANA identifier ("Europe/Berlin", "UTC"); unknown identifier throws.
    public init(_ expression: String, timeZoneIdentifier: String) throws(CronScheduleError) {
        guard let zone = TimeZone(identifier: timeZoneIdentifier) else {
            throw CronScheduleError("time zone: unknown identifier '\(timeZoneIdentifier)'")
        }
        try self.init(expression, timeZone: zone)
    }

    public var description: String { "\(expression) (\(timeZone.identifier))" }

    /// The first firing instant strictly after `date`, or nil if none within 10 years.
    public func nextFire(after date: Date) -> Date? {
        var found: Date?
        scanForward(after: date, days: Self.horizonDays) { found = $0; return false }
        return found
    }

    /// Every firing instant in (start, end], at most `limit` of them, ascending.
    public func fires(after start: Date, through end: Date, limit: Int = 10_000) -> [Date] {
        guard limit > 0, end > start else { return [] }
        let span = end.timeIntervalSince(start) / 86_400
        var out: [Date] = []
        scanForward(after: start, days: span < 10_000_000 ? Int(span) + 2 : 10_000_000) { fire in
            guard fire <= end else { return false }
            out.append(fire)
            return out.count < limit
        }
        return out
    }

    /// The last firing instant at or before `date` (nil if none within 10 years back).
    public func previousFire(atOrBefore date: Date) -> Date? {
        var found: Date?
        scanBackward(atOrBefore: date, days: Self.horizonDays) { found = $0; return false }
        return found
    }

    // MARK: - Evaluation

    private static let horizonDays = 3_654

    /// Calls `visit` with each distinct firing instant > `date`, ascending, until it returns false
    /// or `days` local days have been searched. Wall-clock slots are walked in ascending order;
    /// their instants never decrease (see `Day.instant`), so the first hit is the next fire and
    /// slots before the wall-clock time of `date` can be skipped.
    private func scanForward(after date: Date, days limit: Int, _ visit: (Date) -> Bool) {
        guard let (startDay, startMinute) = wallClock(of: date) else { return }
        let after = date.timeIntervalSince1970
        var last = Int.min, day = startDay
        while day <= startDay + limit {
            let (y, m, _) = Self.civil(fromDays: day)
            guard months & (1 << m) != 0 else { // skip to the 1st of the next month
                day = Self.days(fromCivil: m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1)
                continue
            }
            if matches(day: day) {
                let resolver = Day(zone: timeZone, day: day)
                for minute in slots(from: day == startDay ? startMinute : 0, through: 1439) {
                    guard let t = resolver.instant(minuteOfDay: minute), Double(t) > after, t > last else { continue }
                    last = t
                    if !visit(Date(timeIntervalSince1970: Double(t))) { return }
                }
            }
            day += 1
        }
    }

    /// Mirror of `scanForward`: distinct instants ≤ `date`, descending. Starts 3 hours of wall
    /// clock past `date`, because after a fall-back the first pass of the repeated hour has
    /// later wall-clock times than `date` but earlier instants.
    private func scanBackward(atOrBefore date: Date, days limit: Int, _ visit: (Date) -> Bool) {
        guard let (dateDay, dateMinute) = wallClock(of: date) else { return }
        let startDay = dateDay + (dateMinute + 180) / 1440, startMinute = (dateMinute + 180) % 1440
        let upTo = date.timeIntervalSince1970
        var last = Int.max, day = startDay
        while day >= startDay - limit {
            let (y, m, _) = Self.civil(fromDays: day)
            guard months & (1 << m) != 0 else { // skip to the last day of the previous month
                day = Self.days(fromCivil: y, m, 1) - 1
                continue
            }
            if matches(day: day) {
                let resolver = Day(zone: timeZone, day: day)
                for minute in slots(from: 0, through: day == startDay ? startMinute : 1439).reversed() {
                    guard let t = resolver.instant(minuteOfDay: minute), Double(t) <= upTo, t < last else { continue }
                    last = t
                    if !visit(Date(timeIntervalSince1970: Double(t))) { return }
                }
            }
            day -= 1
        }
    }

    /// Local day number (days since 1970-01-01) and minute of day of `date` in `timeZone`.
    private func wallClock(of date: Date) -> (day: Int, minute: Int)? {
        let seconds = date.timeIntervalSince1970.rounded(.down)
        guard abs(seconds) < 1e14 else { return nil }
        let local = Int(seconds) + timeZone.secondsFromGMT(for: date)
        return (Self.floorDiv(local, 86_400), (local - Self.floorDiv(local, 86_400) * 86_400) / 60)
    }

    /// Allowed minutes of the day (hour * 60 + minute) within `lower...upper`, ascending.
    private func slots(from lower: Int, through upper: Int) -> [Int] {
        var out: [Int] = []
        for h in lower / 60...upper / 60 where hours & (1 << h) != 0 {
            for mi in 0..<60 where minutes & (1 << mi) != 0 {
                let slot = h * 60 + mi
                if slot >= lower && slot <= upper { out.append(slot) }
            }
        }
        return out
    }

    private func matches(day: Int) -> Bool {
        let (_, _, d) = Self.civil(fromDays: day)
        let dom = days & (1 << d) != 0
        let dow = weekdays & (1 << ((day % 7 + 11) % 7)) != 0 // 1970-01-01 was a Thursday (4)
        return dayOr ? dom || dow : dom && dow
    }

    /// Maps the wall-clock minutes of one local day to instants (whole seconds since 1970).
    private struct Day {
        let zone: TimeZone
        let midnight: Int // local seconds of 00:00 of the day
        /// The zone's offset if it is constant from a day before to two days after; else nil.
        let steadyOffset: Int?

        init(zone: TimeZone, day: Int) {
            self.zone = zone
            midnight = day * 86_400
            let o = Self.offset(zone, midnight - 86_400)
            let steady = Self.offset(zone, midnight + 2 * 86_400) == o && Self.offset(zone, midnight + 43_200 - o) == o
            steadyOffset = steady ? o : nil
        }

        static func offset(_ zone: TimeZone, _ t: Int) -> Int {
            zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(t)))
        }

        /// The instant of a wall-clock time: its first occurrence if it exists (twice after a
        /// fall-back), else the end of the spring-forward gap it falls in, rounded up to a minute.
        /// Non-decreasing in `minuteOfDay`.
        func instant(minuteOfDay: Int) -> Int? {
            let local = midnight + minuteOfDay * 60
            if let o = steadyOffset { return local - o }
            let before = Self.offset(zone, local - 86_400), after = Self.offset(zone, local + 86_400)
            let candidates = [before, after, Self.offset(zone, local - before)]
            let valid = candidates.filter { Self.offset(zone, local - $0) == $0 }.map { local - $0 }
            if let first = valid.min() { return first }
            guard after > before else { return nil }
            // In the gap: find the transition T, offset(T - 1) == before and offset(T) != before.
            var low = local - after, high = local - before
            while high - low > 1 {
                let mid = low + (high - low) / 2
                if Self.offset(zone, mid) == before { low = mid } else { high = mid }
            }
            return -CronSchedule.floorDiv(-high, 60) * 60
        }
    }

    // MARK: - Parsing

    private struct Field: Sendable {
        let name: String, min: Int, max: Int, names: [String], firstNamed: Int
    }

    private static let fields = [
        Field(name: "minute", min: 0, max: 59, names: [], firstNamed: 0),
        Field(name: "hour", min: 0, max: 23, names: [], firstNamed: 0),
        Field(name: "day-of-month", min: 1, max: 31, names: [], firstNamed: 1),
        Field(name: "month", min: 1, max: 12, names: ["JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                      "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], firstNamed: 1),
        Field(name: "day-of-week", min: 0, max: 7, names: ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], firstNamed: 0),
    ]

    private static let macros = [
        "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
        "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
    ]

    /// One field (a comma list of `*`, `n`, `a-b`, each optionally `/step`) as a bit set.
    private static func parseField(_ text: Substring, _ field: Field) throws(CronScheduleError) -> UInt64 {
        func fail(_ why: String) -> CronScheduleError { CronScheduleError("\(field.name): \(why)") }
        func value(_ s: Substring, in item: Substring) throws(CronScheduleError) -> Int {
            guard !s.isEmpty else { throw fail("missing number in '\(item)'") }
            if s.allSatisfy({ $0.isASCII && $0.isNumber }) {
                guard let n = Int(s), n >= field.min, n <= field.max else {
                    throw fail("\(s) is outside \(field.min)…\(field.max)")
                }
                return n
            }
            guard let i = field.names.firstIndex(of: s.uppercased()) else {
                let kind = field.names.isEmpty ? "a number" : "a number or name (\(field.names.joined(separator: ",")))"
                throw fail("'\(s)' is not \(kind)")
            }
            return field.firstNamed + i
        }
        var bits: UInt64 = 0
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard !item.isEmpty else { throw fail("empty list element in '\(text)'") }
            let parts = item.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            var step = 1
            if parts.count == 2 {
                guard !parts[1].isEmpty, parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(parts[1]) else {
                    throw fail("step '\(parts[1])' in '\(item)' is not a number")
                }
                guard n >= 1 else { throw fail("step 0 in '\(item)' must be at least 1") }
                step = n
            }
            let base = parts[0]
            let low: Int, high: Int
            if base == "*" {
                (low, high) = (field.min, field.max)
            } else if let dash = base.firstIndex(of: "-") {
                low = try value(base[..<dash], in: item)
                high = try value(base[base.index(after: dash)...], in: item)
                guard low <= high else { throw fail("range \(base) is reversed") }
            } else {
                low = try value(base, in: item)
                high = parts.count == 2 ? field.max : low
            }
            for v in stride(from: low, through: high, by: step) {
                bits |= 1 << (field.name == "day-of-week" ? v % 7 : v)
            }
        }
        return bits
    }

    // MARK: - Proleptic Gregorian calendar arithmetic (H. Hinnant's civil-date algorithms)

    static func floorDiv(_ a: Int, _ b: Int) -> Int { a >= 0 ? a / b : -((-a + b - 1) / b) }

    /// Days since 1970-01-01 of a civil date.
    static func days(fromCivil year: Int, _ month: Int, _ day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = floorDiv(y, 400), yoe = y - era * 400
        let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1
        return era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
    }

    /// Civil date (year, month 1-12, day 1-31) of a day number since 1970-01-01.
    static func civil(fromDays n: Int) -> (year: Int, month: Int, day: Int) {
        let z = n + 719_468
        let era = floorDiv(z, 146_097), doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, doy - (153 * mp + 2) / 5 + 1)
    }
}
