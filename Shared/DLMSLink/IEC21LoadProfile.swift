import COSEM
import NIOCore

/// A device time in IEC 62056-21 load-profile messages: `YYMMDDhhmm[ss]`, optionally prefixed
/// by a season digit `Z` (0 normal/winter time, 1 summer time, 2 UTC), as EMH and
/// Landis+Gyr meters write it. Kept as the device's wall-clock fields; `secondsSince1970`
/// reads them as UTC, which is what the device's clock means when it runs UTC.
public struct IEC21Timestamp: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The season digit, when the device sent one.
    public var season: UInt8?
    public var year: Int
    public var month: Int
    public var day: Int
    public var hour: Int
    public var minute: Int
    public var second: Int

    /// How a timestamp is written in a request.
    public enum Format: String, Hashable, Sendable, Codable {
        /// `YYMMDDhhmm`.
        case compact
        /// `ZYYMMDDhhmmss` with the season digit (EMH, Landis+Gyr).
        case seasonPrefixed
    }

    public init(season: UInt8? = nil, year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int = 0) {
        self.season = season
        self.year = year
        self.month = month
        self.day = day
        self.hour = hour
        self.minute = minute
        self.second = second
    }

    /// The UTC fields of a moment.
    public init(secondsSince1970 seconds: Int64, season: UInt8? = nil) {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let rest = Int(seconds - days * 86_400)
        let (y, m, d) = CosemDateTime.civilFromDays(Int(days))
        self.init(season: season, year: y, month: m, day: d, hour: rest / 3600, minute: rest / 60 % 60, second: rest % 60)
    }

    /// Parses 10 to 13 digits: `YYMMDDhhmm`, `ZYYMMDDhhmm`, `YYMMDDhhmmss`, `ZYYMMDDhhmmss`.
    public init?(_ text: some StringProtocol) {
        let digits = Array(text.utf8)
        guard (10...13).contains(digits.count), digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        let values = digits.map { Int($0 - 0x30) }
        let seasonal = digits.count == 11 || digits.count == 13
        let fields = seasonal ? Array(values.dropFirst()) : values
        func pair(_ i: Int) -> Int { fields[i] * 10 + fields[i + 1] }
        self.init(season: seasonal ? UInt8(values[0]) : nil, year: 2000 + pair(0), month: pair(2), day: pair(4),
                  hour: pair(6), minute: pair(8), second: fields.count >= 12 ? pair(10) : 0)
        // A calendar date maps to a day and back unchanged; 30 February would come back as 2 March:
        // such a date is refused, never normalised into the next month.
        guard (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 60,
              CosemDateTime.civilFromDays(CosemDateTime.daysFromCivil(year: year, month: month, day: day)) == (year, month, day) else { return nil }
    }

    /// The fields read as UTC, in seconds since 1970-01-01.
    public var secondsSince1970: Int64 {
        Int64(CosemDateTime.daysFromCivil(year: year, month: month, day: day)) * 86_400 + Int64(hour * 3600 + minute * 60 + second)
    }

    public func formatted(_ format: Format) -> String {
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v % 100)" }
        let base = two(year % 100) + two(month) + two(day) + two(hour) + two(minute)
        switch format {
        case .compact: return base
        case .seasonPrefixed: return "\(season ?? 0)" + base + two(second)
        }
    }

    public var description: String { formatted(.seasonPrefixed) }

    public static func < (lhs: IEC21Timestamp, rhs: IEC21Timestamp) -> Bool { lhs.secondsSince1970 < rhs.secondsSince1970 }
}

/// A load profile read in IEC 62056-21 programming mode, in the `P.01` form that EMH,
/// Landis+Gyr and others use (a manufacturer extension of IEC 62056-21): a header data set
/// `P.01(ZYYMMDDhhmm)(status)(period)(n)(id1)(unit1)…(idn)(unitn)` followed by one line of `n`
/// values per interval, `(v1)…(vn)`; a new header starts a new block (after a gap or a status
/// change).
public struct IEC21LoadProfile: Hashable, Sendable {
    public struct Channel: Hashable, Sendable {
        /// The register address, e.g. `1.5.0`.
        public var address: String
        public var unit: String

        public init(address: String, unit: String) {
            self.address = address
            self.unit = unit
        }
    }

    public struct Row: Hashable, Sendable {
        /// The end of the interval (the header's time plus the row's index × period).
        public var time: IEC21Timestamp
        /// The header's status word, on the first row of each block.
        public var status: String?
        public var values: [String]

        public init(time: IEC21Timestamp, status: String? = nil, values: [String]) {
            self.time = time
            self.status = status
            self.values = values
        }
    }

    public var channels: [Channel]
    /// The capture period in minutes of the last block.
    public var periodMinutes: Int
    public var rows: [Row]

    /// Rows of the answer that ``restricted(from:to:)`` left out.
    public struct Discarded: Hashable, Sendable {
        /// Rows whose interval lies outside the asked range.
        public var outsideRange = 0
        /// Rows for an interval already delivered (the first one received is kept).
        public var duplicates = 0
        /// Rows that came after a later interval (kept, put in their place).
        public var reordered = 0

        public init() {}

        public var total: Int { outsideRange + duplicates }
    }

    /// What ``restricted(from:to:)`` left out or moved.
    public var discarded = Discarded()

    public init(channels: [Channel] = [], periodMinutes: Int = 0, rows: [Row] = []) {
        self.channels = channels
        self.periodMinutes = periodMinutes
        self.rows = rows
    }

    /// The rows a request for `from…to` may deliver, as data: only intervals inside the range
    /// (inclusive), in increasing time, each interval once — of rows with the same time the
    /// first received is kept. A meter's answer is not trusted to keep to the request: rows
    /// outside it, repeated or out of order are counted in ``discarded`` (a row out of order is
    /// kept in its place and counted as reordered).
    public func restricted(from: Int64, to: Int64) -> IEC21LoadProfile {
        var result = IEC21LoadProfile(channels: channels, periodMinutes: periodMinutes, rows: [])
        result.discarded = discarded
        var latest = Int64.min
        var inRange: [(time: Int64, order: Int, row: Row)] = []
        inRange.reserveCapacity(rows.count)
        for (order, row) in rows.enumerated() {
            let time = row.time.secondsSince1970
            guard time >= from, time <= to else {
                result.discarded.outsideRange += 1
                continue
            }
            if time < latest { result.discarded.reordered += 1 }
            latest = max(latest, time)
            inRange.append((time, order, row))
        }
        inRange.sort { ($0.time, $0.order) < ($1.time, $1.order) }
        var previous: Int64?
        for entry in inRange {
            if entry.time == previous {
                result.discarded.duplicates += 1
                continue
            }
            previous = entry.time
            result.rows.append(entry.row)
        }
        return result
    }

    /// The request `R5 P.01(from;to)` (or `R1`/`R6`: the command type the device family uses).
    ///
    /// - Throws: `DLMSLinkError.invalidParameter` for a command type that is not a digit.
    public static func request(address: String = "P.01", from: IEC21Timestamp, to: IEC21Timestamp,
                               format: IEC21Timestamp.Format = .compact, commandType: UInt8 = UInt8(ascii: "5")) throws -> IEC21Command {
        try IEC21Command(.read, type: commandType, data: "\(address)(\(from.formatted(format));\(to.formatted(format)))")
    }

    /// Parses the device's answer.
    ///
    /// - Throws: `DLMSLinkError.refused` for an `(ERROR)` answer, `malformedFrame` for a header
    ///   or row that does not fit the form.
    public static func parse(_ block: IEC21DataBlock) throws -> IEC21LoadProfile {
        var profile = IEC21LoadProfile(channels: [], periodMinutes: 0, rows: [])
        var blockStart: IEC21TimestampCursor?
        for set in try block.dataSets() {
            if set.values.contains(where: { $0.value.uppercased().hasPrefix("ERROR") }) {
                throw DLMSLinkError.refused("the device answered the load-profile read with \(set.address)(\(set.values[0].value))")
            }
            if !set.address.isEmpty {
                // An empty answer (`P.01()`) means no intervals in the range.
                if set.values.count <= 1, set.values.first?.value.isEmpty ?? true { continue }
                guard set.values.count >= 4, let time = IEC21Timestamp(set.values[0].value),
                      let period = Int(set.values[2].value), (1...1440).contains(period),
                      let count = Int(set.values[3].value), count >= 0,
                      // Bound the wire count before any arithmetic: 4 + 2 × n overflows for n near Int.max.
                      count <= (set.values.count - 4) / 2, set.values.count == 4 + 2 * count
                else {
                    throw DLMSLinkError.malformedFrame("IEC 62056-21 load-profile header \(set.address) with \(set.values.count) value(s) does not fit ZYYMMDDhhmm, status, period, n, n × (id, unit)")
                }
                let channels = stride(from: 4, to: set.values.count, by: 2).map {
                    Channel(address: set.values[$0].value, unit: set.values[$0 + 1].value)
                }
                guard profile.channels.isEmpty || profile.channels == channels else {
                    throw DLMSLinkError.unsupported("IEC 62056-21 load-profile channels change within one answer")
                }
                profile.channels = channels
                profile.periodMinutes = period
                blockStart = IEC21TimestampCursor(time: time, status: set.values[1].value, period: period)
            } else {
                guard var cursor = blockStart else {
                    throw DLMSLinkError.malformedFrame("IEC 62056-21 load-profile values before a P.01 header")
                }
                guard set.values.count == profile.channels.count else {
                    throw DLMSLinkError.malformedFrame("IEC 62056-21 load-profile row has \(set.values.count) value(s) for \(profile.channels.count) channel(s)")
                }
                profile.rows.append(Row(time: cursor.next(), status: cursor.takeStatus(), values: set.values.map(\.value)))
                blockStart = cursor
            }
        }
        return profile
    }
}

/// Walks the intervals of one load-profile block.
struct IEC21TimestampCursor {
    var time: IEC21Timestamp
    var status: String?
    let period: Int
    var index = 0

    mutating func next() -> IEC21Timestamp {
        defer { index += 1 }
        guard index > 0 else { return time }
        return IEC21Timestamp(secondsSince1970: time.secondsSince1970 + Int64(index * period * 60), season: time.season)
    }

    mutating func takeStatus() -> String? {
        defer { status = nil }
        return status
    }
}
