import NIOCore

/// The clock status byte of a date-time (Blue Book §4.1.6.1).
public struct ClockStatus: OptionSet, Hashable, Sendable, Codable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let invalidValue = ClockStatus(rawValue: 0x01)
    public static let doubtfulValue = ClockStatus(rawValue: 0x02)
    public static let differentClockBase = ClockStatus(rawValue: 0x04)
    public static let invalidClockStatus = ClockStatus(rawValue: 0x08)
    public static let daylightSavingActive = ClockStatus(rawValue: 0x80)
    /// 0xFF: the status is not specified.
    public static let notSpecified = ClockStatus(rawValue: 0xFF)
}

/// A COSEM date: year, month, day of month, day of week (Blue Book §4.1.6.1, 5 bytes).
///
/// Fields keep their wire values so odd encodings round-trip unchanged; the optional
/// accessors map the "not specified" markers to nil.
public struct CosemDate: Hashable, Sendable, Codable {
    /// 0xFFFF = not specified.
    public var year: UInt16
    /// 1...12; 0xFD daylight-saving end, 0xFE daylight-saving begin, 0xFF not specified.
    public var month: UInt8
    /// 1...31; 0xFD second-to-last day, 0xFE last day of month, 0xFF not specified.
    public var dayOfMonth: UInt8
    /// 1 (Monday) ... 7 (Sunday); 0xFF not specified.
    public var dayOfWeek: UInt8

    public init(year: UInt16, month: UInt8, dayOfMonth: UInt8, dayOfWeek: UInt8 = 0xFF) {
        self.year = year
        self.month = month
        self.dayOfMonth = dayOfMonth
        self.dayOfWeek = dayOfWeek
    }

    public static let notSpecified = CosemDate(year: 0xFFFF, month: 0xFF, dayOfMonth: 0xFF, dayOfWeek: 0xFF)

    public var yearValue: Int? { year == 0xFFFF ? nil : Int(year) }
    public var monthValue: Int? { (1...12).contains(month) ? Int(month) : nil }
    public var dayValue: Int? { (1...31).contains(dayOfMonth) ? Int(dayOfMonth) : nil }
    public var dayOfWeekValue: Int? { (1...7).contains(dayOfWeek) ? Int(dayOfWeek) : nil }

    static let encodedSize = 5

    public static func decode(from buffer: inout ByteBuffer) throws -> CosemDate {
        guard buffer.readableBytes >= 5 else { throw DLMSError.truncated("date needs 5 bytes, have \(buffer.readableBytes)") }
        let year = buffer.readInteger(as: UInt16.self)!
        let month = buffer.readInteger(as: UInt8.self)!
        let day = buffer.readInteger(as: UInt8.self)!
        let dow = buffer.readInteger(as: UInt8.self)!
        return CosemDate(year: year, month: month, dayOfMonth: day, dayOfWeek: dow)
    }

    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(year)
        buffer.writeInteger(month)
        buffer.writeInteger(dayOfMonth)
        buffer.writeInteger(dayOfWeek)
    }
}

/// A COSEM time: hour, minute, second, hundredths (Blue Book §4.1.6.1, 4 bytes; 0xFF = not specified).
public struct CosemTime: Hashable, Sendable, Codable {
    public var hour: UInt8
    public var minute: UInt8
    public var second: UInt8
    public var hundredths: UInt8

    public init(hour: UInt8, minute: UInt8, second: UInt8, hundredths: UInt8 = 0xFF) {
        self.hour = hour
        self.minute = minute
        self.second = second
        self.hundredths = hundredths
    }

    public static let notSpecified = CosemTime(hour: 0xFF, minute: 0xFF, second: 0xFF, hundredths: 0xFF)

    public var hourValue: Int? { hour < 24 ? Int(hour) : nil }
    public var minuteValue: Int? { minute < 60 ? Int(minute) : nil }
    public var secondValue: Int? { second < 60 ? Int(second) : nil }
    public var hundredthsValue: Int? { hundredths < 100 ? Int(hundredths) : nil }

    public static func decode(from buffer: inout ByteBuffer) throws -> CosemTime {
        guard buffer.readableBytes >= 4 else { throw DLMSError.truncated("time needs 4 bytes, have \(buffer.readableBytes)") }
        let v = buffer.readInteger(as: UInt32.self)!
        return CosemTime(hour: UInt8(v >> 24), minute: UInt8((v >> 16) & 0xFF), second: UInt8((v >> 8) & 0xFF), hundredths: UInt8(v & 0xFF))
    }

    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt32(hour) << 24 | UInt32(minute) << 16 | UInt32(second) << 8 | UInt32(hundredths))
    }
}

/// A COSEM date-time (Blue Book §4.1.6.1, 12 bytes): date, time, deviation and clock status.
///
/// `deviation` is the wire value: minutes from local time to UTC, i.e. UTC = local + deviation
/// (so Central European Time is −60); 0x8000 means not specified. Some meters use the opposite
/// sign; `utcOffsetMinutes` follows the standard.
public struct CosemDateTime: Hashable, Sendable, Codable, CustomStringConvertible {
    public var date: CosemDate
    public var time: CosemTime
    public var deviation: Int16
    public var clockStatus: ClockStatus

    public static let deviationNotSpecified: Int16 = Int16(bitPattern: 0x8000)

    public init(date: CosemDate, time: CosemTime, deviation: Int16 = CosemDateTime.deviationNotSpecified, clockStatus: ClockStatus = .notSpecified) {
        self.date = date
        self.time = time
        self.deviation = deviation
        self.clockStatus = clockStatus
    }

    /// The 12 wire bytes read as two big-endian integers: year, month, day of month, day of week,
    /// hour, minute and second (`packedDate`), then hundredths, deviation and clock status (`trailer`).
    @inlinable
    public init(packedDate d: UInt64, trailer: UInt32) {
        self.init(
            date: CosemDate(year: UInt16(d >> 48), month: UInt8((d >> 40) & 0xFF), dayOfMonth: UInt8((d >> 32) & 0xFF), dayOfWeek: UInt8((d >> 24) & 0xFF)),
            time: CosemTime(hour: UInt8((d >> 16) & 0xFF), minute: UInt8((d >> 8) & 0xFF), second: UInt8(d & 0xFF), hundredths: UInt8(trailer >> 24)),
            deviation: Int16(bitPattern: UInt16(truncatingIfNeeded: trailer >> 8)),
            clockStatus: ClockStatus(rawValue: UInt8(truncatingIfNeeded: trailer)))
    }

    public init(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int, hundredths: Int? = nil,
                dayOfWeek: Int? = nil, deviation: Int16? = nil, clockStatus: ClockStatus? = nil) {
        self.init(
            date: CosemDate(year: UInt16(year), month: UInt8(month), dayOfMonth: UInt8(day), dayOfWeek: dayOfWeek.map { UInt8($0) } ?? 0xFF),
            time: CosemTime(hour: UInt8(hour), minute: UInt8(minute), second: UInt8(second), hundredths: hundredths.map { UInt8($0) } ?? 0xFF),
            deviation: deviation ?? CosemDateTime.deviationNotSpecified,
            clockStatus: clockStatus ?? .notSpecified)
    }

    /// Everything not specified (all 0xFF, deviation 0x8000).
    public static let notSpecified = CosemDateTime(date: .notSpecified, time: .notSpecified)

    /// The deviation, or nil when it is not specified.
    public var deviationValue: Int? { deviation == CosemDateTime.deviationNotSpecified ? nil : Int(deviation) }
    /// The offset of local time from UTC in minutes (CET = +60), or nil when not specified.
    public var utcOffsetMinutes: Int? { deviationValue.map { -$0 } }
    /// The clock status, or nil when it is not specified.
    public var clockStatusValue: ClockStatus? { clockStatus == .notSpecified ? nil : clockStatus }

    /// Seconds since 1970-01-01T00:00:00Z when date, time and deviation are all specified and
    /// plain (no wildcards or daylight-saving markers); otherwise nil.
    public var unixTime: Int64? {
        guard let y = date.yearValue, let m = date.monthValue, let d = date.dayValue,
              let h = time.hourValue, let mi = time.minuteValue, let s = time.secondValue,
              let dev = deviationValue else { return nil }
        let days = Self.daysFromCivil(year: y, month: m, day: d)
        let local = Int64(days) * 86_400 + Int64(h * 3600 + mi * 60 + s)
        return local + Int64(dev) * 60
    }

    /// The date-time for a UTC instant expressed in local time with the given offset from UTC.
    public init(unixTime: Int64, utcOffsetMinutes: Int = 0, clockStatus: ClockStatus = []) {
        let local = unixTime + Int64(utcOffsetMinutes) * 60
        let days = Int(local.floorDiv(86_400))
        let secs = Int(local - Int64(days) * 86_400)
        let (y, m, d) = Self.civilFromDays(days)
        let weekday = ((days % 7) + 7 + 3) % 7 + 1 // 1970-01-01 was a Thursday (4)
        // Years outside 0…65534 cannot be expressed; they clamp (65535 would mean "not specified").
        self.init(date: CosemDate(year: UInt16(clamping: min(max(y, 0), 65_534)), month: UInt8(m), dayOfMonth: UInt8(d), dayOfWeek: UInt8(weekday)),
                  time: CosemTime(hour: UInt8(secs / 3600), minute: UInt8(secs / 60 % 60), second: UInt8(secs % 60), hundredths: 0),
                  deviation: Int16(clamping: -utcOffsetMinutes), clockStatus: clockStatus)
    }

    // Howard Hinnant's civil-date algorithms (proleptic Gregorian calendar).

    /// Days since 1970-01-01 of a calendar date.
    public static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// The calendar date (year, month, day) `z0` days after 1970-01-01.
    public static func civilFromDays(_ z0: Int) -> (Int, Int, Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    public var description: String {
        func f(_ v: Int?, _ w: Int) -> String {
            guard let v else { return String(repeating: "*", count: w) }
            let s = String(v)
            return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        var out = "\(f(date.yearValue, 4))-\(f(date.monthValue, 2))-\(f(date.dayValue, 2))T\(f(time.hourValue, 2)):\(f(time.minuteValue, 2)):\(f(time.secondValue, 2))"
        if let h = time.hundredthsValue { out += ".\(f(h, 2))" }
        if let off = utcOffsetMinutes {
            let sign = off < 0 ? "-" : "+"
            out += "\(sign)\(f(abs(off) / 60, 2)):\(f(abs(off) % 60, 2))"
        }
        if let status = clockStatusValue, status.rawValue != 0 { out += " status=0x\(Hex.encode(status.rawValue))" }
        return out
    }

    // MARK: - Wire form

    public static let encodedSize = 12

    @inlinable
    public static func decode(from buffer: inout ByteBuffer) throws -> CosemDateTime {
        guard buffer.readableBytes >= 12 else { throw DLMSError.truncated("date-time needs 12 bytes, have \(buffer.readableBytes)") }
        return CosemDateTime(packedDate: buffer.readInteger(as: UInt64.self)!, trailer: buffer.readInteger(as: UInt32.self)!)
    }

    @inlinable
    public func encode(into buffer: inout ByteBuffer) {
        let d = UInt64(date.year) << 48 | UInt64(date.month) << 40 | UInt64(date.dayOfMonth) << 32 | UInt64(date.dayOfWeek) << 24
            | UInt64(time.hour) << 16 | UInt64(time.minute) << 8 | UInt64(time.second)
        buffer.writeInteger(d)
        buffer.writeInteger(time.hundredths)
        buffer.writeInteger(deviation)
        buffer.writeInteger(clockStatus.rawValue)
    }

    /// Interprets a 12-byte octet string (how most meters carry clock values).
    public init(octetString: ByteBuffer) throws {
        var copy = octetString
        guard copy.readableBytes == 12 else { throw DLMSError.invalidValue("a date-time octet string has 12 bytes, got \(copy.readableBytes)") }
        self = try CosemDateTime.decode(from: &copy)
    }

    /// The 12-byte octet-string form.
    public var octetString: ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 12)
        encode(into: &buffer)
        return buffer
    }
}

extension Int64 {
    @usableFromInline
    func floorDiv(_ d: Int64) -> Int64 { self >= 0 ? self / d : (self - d + 1) / d }
}
