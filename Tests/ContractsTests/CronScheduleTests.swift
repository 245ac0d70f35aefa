import Foundation
import Testing
@testable import Contracts

@Suite
struct CronScheduleTests {
    /// An instant written as ISO-8601 ("2026-03-29T01:00:00Z").
    static func iso(_ text: String) throws -> Date { try Date(text, strategy: .iso8601) }
    static func isos(_ texts: [String]) throws -> [Date] { try texts.map(iso) }
    static func schedule(_ expression: String, _ zone: String = "UTC") throws -> CronSchedule {
        try CronSchedule(expression, timeZoneIdentifier: zone)
    }

    @Test("bad expressions throw with a reason naming the field", arguments: [
        ("", "expression is empty"),
        ("* * * *", "expected 5 fields"),
        ("* * * * * *", "expected 5 fields"),
        ("60 * * * *", "minute: 60 is outside 0…59"),
        ("* 24 * * *", "hour: 24 is outside 0…23"),
        ("* * 0 * *", "day-of-month: 0 is outside 1…31"),
        ("* * * 13 *", "month: 13 is outside 1…12"),
        ("* * * * 8", "day-of-week: 8 is outside 0…7"),
        ("5-2 * * * *", "minute: range 5-2 is reversed"),
        ("*/0 * * * *", "minute: step 0"),
        ("*/x * * * *", "minute: step 'x'"),
        ("1,,2 * * * *", "minute: empty list element"),
        ("abc * * * *", "minute: 'abc' is not a number"),
        ("* * * FOO *", "month: 'FOO' is not"),
        ("* * * * MON-FOO", "day-of-week: 'FOO' is not"),
        ("-5 * * * *", "minute: missing number"),
        ("@every5m", "unknown macro @every5m"),
        ("0 0 30 2 *", "day-of-month: never fires"),
        ("0 0 31 4,6,9,11 *", "day-of-month: never fires"),
    ])
    func rejects(expression: String, reason: String) throws {
        let error = #expect(throws: CronScheduleError.self) { try CronSchedule(expression, timeZone: .gmt) }
        #expect(error?.reason.contains(reason) == true, "\(expression): \(error?.reason ?? "no error")")
    }

    @Test func rejectsUnknownTimeZone() {
        let error = #expect(throws: CronScheduleError.self) { try CronSchedule("* * * * *", timeZoneIdentifier: "Mars/Olympus") }
        #expect(error?.reason == "time zone: unknown identifier 'Mars/Olympus'")
    }

    @Test func acceptsEdgeForms() throws {
        #expect(try Self.schedule("0 0 31 1-12 *").nextFire(after: Self.iso("2026-04-01T00:00:00Z")) == Self.iso("2026-05-31T00:00:00Z"))
        #expect(try Self.schedule("0 0 30 2 1").nextFire(after: Self.iso("2026-04-01T00:00:00Z")) == Self.iso("2027-02-01T00:00:00Z"))
        #expect(try Self.schedule("0 2 * * *", "Europe/Berlin").description == "0 2 * * * (Europe/Berlin)")
    }

    @Test func everyFifteenMinutesOverADay() throws {
        let fires = try Self.schedule("*/15 * * * *").fires(after: Self.iso("2026-01-10T00:00:00Z"), through: Self.iso("2026-01-11T00:00:00Z"))
        #expect(fires.count == 96)
        #expect(try fires.first == Self.iso("2026-01-10T00:15:00Z"))
        #expect(try fires.last == Self.iso("2026-01-11T00:00:00Z"))
        #expect(fires.allSatisfy { $0.timeIntervalSince1970.truncatingRemainder(dividingBy: 900) == 0 })
        #expect(try Self.schedule("*/15 * * * *").fires(after: Self.iso("2026-01-10T00:00:00Z"), through: Self.iso("2026-01-11T00:00:00Z"), limit: 3)
            == Self.isos(["2026-01-10T00:15:00Z", "2026-01-10T00:30:00Z", "2026-01-10T00:45:00Z"]))
    }

    @Test("Berlin spring-forward: 02:00 does not exist, fires once at 03:00 CEST")
    func berlinSpringForward() throws {
        let s = try Self.schedule("0 2 * * *", "Europe/Berlin")
        #expect(try s.fires(after: Self.iso("2026-03-28T12:00:00Z"), through: Self.iso("2026-03-30T12:00:00Z"))
            == Self.isos(["2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z"]))
        // 02:00 (skipped) and 03:00 land on the same instant: one fire.
        let twoAndThree = try Self.schedule("0 2,3 * * *", "Europe/Berlin")
        #expect(try twoAndThree.fires(after: Self.iso("2026-03-28T12:00:00Z"), through: Self.iso("2026-03-30T12:00:00Z"))
            == Self.isos(["2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z", "2026-03-30T01:00:00Z"]))
        // 23-hour day: the four quarter-hours of the gap collapse onto 03:00.
        let quarter = try Self.schedule("*/15 * * * *", "Europe/Berlin")
        #expect(try quarter.fires(after: Self.iso("2026-03-28T23:00:00Z"), through: Self.iso("2026-03-29T22:00:00Z")).count == 92)
    }

    @Test("Berlin fall-back: 02:00 occurs twice, fires once at the first (CEST)")
    func berlinFallBack() throws {
        let s = try Self.schedule("0 2 * * *", "Europe/Berlin")
        #expect(try s.fires(after: Self.iso("2026-10-24T12:00:00Z"), through: Self.iso("2026-10-26T12:00:00Z"))
            == Self.isos(["2026-10-25T00:00:00Z", "2026-10-26T01:00:00Z"]))
        // Minute-granular schedules fire through the first pass only, silent in the second.
        let quarter = try Self.schedule("*/15 * * * *", "Europe/Berlin")
        #expect(try quarter.fires(after: Self.iso("2026-10-24T22:00:00Z"), through: Self.iso("2026-10-25T23:00:00Z")).count == 96)
        #expect(try quarter.nextFire(after: Self.iso("2026-10-25T00:45:00Z")) == Self.iso("2026-10-25T02:00:00Z"))
        #expect(try quarter.previousFire(atOrBefore: Self.iso("2026-10-25T01:30:00Z")) == Self.iso("2026-10-25T00:45:00Z"))
    }

    @Test func newYorkTransitions() throws {
        let s = try Self.schedule("30 1 * * *", "America/New_York")
        #expect(try s.fires(after: Self.iso("2026-03-07T12:00:00Z"), through: Self.iso("2026-03-09T12:00:00Z"))
            == Self.isos(["2026-03-08T06:30:00Z", "2026-03-09T05:30:00Z"]))
        #expect(try s.fires(after: Self.iso("2026-10-31T12:00:00Z"), through: Self.iso("2026-11-02T12:00:00Z"))
            == Self.isos(["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]))
        #expect(try Self.schedule("30 2 * * *", "America/New_York").nextFire(after: Self.iso("2026-03-08T00:00:00Z"))
            == Self.iso("2026-03-08T07:00:00Z"))
    }

    @Test("both day fields restricted: either matches (Vixie)")
    func dayOfMonthOrDayOfWeek() throws {
        #expect(try Self.schedule("0 0 13 * 5").fires(after: Self.iso("2026-04-01T00:00:00Z"), through: Self.iso("2026-04-30T00:00:00Z"))
            == Self.isos(["2026-04-03T00:00:00Z", "2026-04-10T00:00:00Z", "2026-04-13T00:00:00Z", "2026-04-17T00:00:00Z", "2026-04-24T00:00:00Z"]))
        #expect(try Self.schedule("0 0 13 * *").nextFire(after: Self.iso("2026-04-01T00:00:00Z")) == Self.iso("2026-04-13T00:00:00Z"))
        #expect(try Self.schedule("0 0 1,11,21,31 * 5").nextFire(after: Self.iso("2026-04-01T00:00:00Z")) == Self.iso("2026-04-03T00:00:00Z"))
        // A field starting with `*` counts as unrestricted: then both must match (1st of May is a Friday).
        #expect(try Self.schedule("0 0 */10 * 5").nextFire(after: Self.iso("2026-04-01T00:00:00Z")) == Self.iso("2026-05-01T00:00:00Z"))
    }

    @Test func leapDay() throws {
        let s = try Self.schedule("0 0 29 2 *")
        #expect(try s.nextFire(after: Self.iso("2026-03-01T00:00:00Z")) == Self.iso("2028-02-29T00:00:00Z"))
        #expect(try s.previousFire(atOrBefore: Self.iso("2026-03-01T00:00:00Z")) == Self.iso("2024-02-29T00:00:00Z"))
    }

    @Test func exactSlots() throws {
        let s = try Self.schedule("0 * * * *")
        #expect(try s.nextFire(after: Self.iso("2026-04-01T10:00:00Z")) == Self.iso("2026-04-01T11:00:00Z"))
        #expect(try s.nextFire(after: Self.iso("2026-04-01T09:59:59Z").addingTimeInterval(0.5)) == Self.iso("2026-04-01T10:00:00Z"))
        #expect(try s.previousFire(atOrBefore: Self.iso("2026-04-01T10:00:00Z")) == Self.iso("2026-04-01T10:00:00Z"))
        #expect(try s.previousFire(atOrBefore: Self.iso("2026-04-01T09:59:59Z")) == Self.iso("2026-04-01T09:00:00Z"))
        #expect(try s.fires(after: Self.iso("2026-04-01T10:00:00Z"), through: Self.iso("2026-04-01T12:00:00Z"))
            == Self.isos(["2026-04-01T11:00:00Z", "2026-04-01T12:00:00Z"]))
    }

    @Test func monthAndDayNames() throws {
        let named = try Self.schedule("0 9 * JAN,jul mon-FRI")
        #expect(try named.nextFire(after: Self.iso("2026-04-01T00:00:00Z")) == Self.iso("2026-07-01T09:00:00Z"))
        let numeric = try Self.schedule("0 9 * 1,7 1-5")
        let (from, to) = try (Self.iso("2026-01-01T00:00:00Z"), Self.iso("2027-01-01T00:00:00Z"))
        #expect(named.fires(after: from, through: to) == numeric.fires(after: from, through: to))
        #expect(named.fires(after: from, through: to).count == 22 + 23)
    }

    @Test func macros() throws {
        #expect(try Self.schedule("@hourly").nextFire(after: Self.iso("2026-04-01T10:20:00Z")) == Self.iso("2026-04-01T11:00:00Z"))
        #expect(try Self.schedule("@daily", "Europe/Berlin").nextFire(after: Self.iso("2026-06-10T12:00:00Z")) == Self.iso("2026-06-10T22:00:00Z"))
        #expect(try Self.schedule("@midnight").nextFire(after: Self.iso("2026-06-10T12:00:00Z")) == Self.iso("2026-06-11T00:00:00Z"))
        #expect(try Self.schedule("@weekly").nextFire(after: Self.iso("2026-04-01T00:00:00Z")) == Self.iso("2026-04-05T00:00:00Z"))
        #expect(try Self.schedule("@monthly").nextFire(after: Self.iso("2026-04-01T00:00:00Z")) == Self.iso("2026-05-01T00:00:00Z"))
        #expect(try Self.schedule("@yearly").nextFire(after: Self.iso("2026-04-01T00:00:00Z")) == Self.iso("2027-01-01T00:00:00Z"))
    }

    @Test("weekday 7 is Sunday like 0")
    func sundayAsSeven() throws {
        let (from, to) = try (Self.iso("2026-01-01T00:00:00Z"), Self.iso("2027-01-01T00:00:00Z"))
        let seven = try Self.schedule("0 12 * * 7"), zero = try Self.schedule("0 12 * * 0")
        #expect(seven.fires(after: from, through: to) == zero.fires(after: from, through: to))
        #expect(seven.fires(after: from, through: to).count == 52)
        #expect(try seven.nextFire(after: Self.iso("2026-04-01T00:00:00Z")) == Self.iso("2026-04-05T12:00:00Z"))
        #expect(try Self.schedule("0 12 * * 5-7").fires(after: Self.iso("2026-04-01T00:00:00Z"), through: Self.iso("2026-04-06T00:00:00Z"))
            == Self.isos(["2026-04-03T12:00:00Z", "2026-04-04T12:00:00Z", "2026-04-05T12:00:00Z"]))
    }
}
