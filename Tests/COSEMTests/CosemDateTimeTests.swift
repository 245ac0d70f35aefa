import COSEM
import NIOCore
import Testing

@Suite struct CosemDateTimeTests {
    // Blue Book §4.1.6.1: 2024-11-26 (Tuesday) 16:57:00.00, deviation −60 (CET), DST not active.
    static let bytes: [UInt8] = [0x07, 0xE8, 0x0B, 0x1A, 0x02, 0x10, 0x39, 0x00, 0x00, 0xFF, 0xC4, 0x00]

    @Test func decodesFields() throws {
        var buffer = ByteBuffer(dlmsBytes: Self.bytes)
        let dt = try CosemDateTime.decode(from: &buffer)
        #expect(dt.date.yearValue == 2024)
        #expect(dt.date.monthValue == 11)
        #expect(dt.date.dayValue == 26)
        #expect(dt.date.dayOfWeekValue == 2)
        #expect(dt.time.hourValue == 16)
        #expect(dt.time.minuteValue == 57)
        #expect(dt.time.secondValue == 0)
        #expect(dt.time.hundredthsValue == 0)
        #expect(dt.deviationValue == -60)
        #expect(dt.utcOffsetMinutes == 60)
        #expect(dt.clockStatusValue == [])
        #expect(dt.description == "2024-11-26T16:57:00.00+01:00")
        var out = ByteBuffer()
        dt.encode(into: &out)
        #expect(Array(out.readableBytesView) == Self.bytes)
    }

    @Test func notSpecifiedFields() throws {
        let bytes: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFE, 0xFF, 0x02, 0x00, 0xFF, 0xFF, 0x80, 0x00, 0xFF]
        var buffer = ByteBuffer(dlmsBytes: bytes)
        let dt = try CosemDateTime.decode(from: &buffer)
        #expect(dt.date.yearValue == nil)
        #expect(dt.date.monthValue == nil)
        #expect(dt.date.dayOfMonth == 0xFE) // last day of month
        #expect(dt.time.hourValue == 2)
        #expect(dt.time.secondValue == nil)
        #expect(dt.deviationValue == nil)
        #expect(dt.clockStatusValue == nil)
        #expect(dt.unixTime == nil)
        #expect(dt.description == "****-**-**T02:00:**")
        #expect(Array(dt.octetString.readableBytesView) == bytes)
    }

    @Test func clockStatus() throws {
        let bytes: [UInt8] = [0x07, 0xE8, 0x07, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0xFF, 0x88, 0x81]
        let dt = try CosemDateTime(octetString: ByteBuffer(dlmsBytes: bytes))
        #expect(dt.clockStatus.contains(.daylightSavingActive))
        #expect(dt.clockStatus.contains(.invalidValue))
        #expect(!dt.clockStatus.contains(.doubtfulValue))
        #expect(dt.utcOffsetMinutes == 120)
    }

    @Test func unixTimeRoundTrip() throws {
        // 2024-11-26T15:57:00Z
        let dt = CosemDateTime(unixTime: 1_732_636_620, utcOffsetMinutes: 60)
        #expect(dt.date.year == 2024 && dt.date.month == 11 && dt.date.dayOfMonth == 26)
        #expect(dt.date.dayOfWeek == 2)
        #expect(dt.time.hour == 16 && dt.time.minute == 57)
        #expect(dt.deviation == -60)
        #expect(dt.unixTime == 1_732_636_620)
        #expect(CosemDateTime(unixTime: 0).description == "1970-01-01T00:00:00.00+00:00")
        #expect(CosemDateTime(unixTime: 0).date.dayOfWeek == 4)
    }

    @Test func truncated() {
        var buffer = ByteBuffer(dlmsBytes: Self.bytes.prefix(11))
        #expect(throws: DLMSError.truncated("")) { try CosemDateTime.decode(from: &buffer) }
        #expect(throws: DLMSError.invalidValue("")) { try CosemDateTime(octetString: ByteBuffer(dlmsBytes: Self.bytes + [0])) }
    }
}

@Suite struct CosemDateTimeEdgeTests {
    @Test func farFutureClampsInsteadOfTrapping() {
        let dt = CosemDateTime(unixTime: Int64(Int32.max) * 1000)
        #expect(dt.date.year == 65_534)
        let past = CosemDateTime(unixTime: -100_000_000_000)
        #expect(past.date.year == 0)
    }

    @Test func fillingNullsNearTheEndOfTime() throws {
        let columns = [CaptureObjectDefinition(classID: .clock, logicalName: .clock, attributeIndex: 2)]
        let late = CosemDateTime(year: 65_534, month: 12, day: 31, hour: 23, minute: 59, second: 0, hundredths: 0, dayOfWeek: 1, deviation: 0, clockStatus: [])
        let rows = try ProfileGeneric.rows(buffer: .array([.structure([.octetString(dateTime: late)]), .structure([.null])]), captureObjects: columns)
            .fillingNulls(capturePeriod: .max)
        #expect(rows[1].captureTime?.date.year == 65_534)
    }
}
