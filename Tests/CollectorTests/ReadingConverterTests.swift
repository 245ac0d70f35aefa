import COSEM
import Contracts
import Foundation
import NIOCore
import Testing
@testable import Collector

@Suite
struct ReadingConverterTests {
    @Test(arguments: [
        ("12345", 0, "12345"), ("12345", -3, "12.345"), ("12345", 2, "1234500"), ("5", -3, "0.005"),
        ("1500", -3, "1.5"), ("1000", -3, "1"), ("-12345", -2, "-123.45"), ("0", -3, "0"), ("0", 3, "0"),
        ("18446744073709551615", -4, "1844674407370955.1615"), ("-5", -1, "-0.5"),
    ])
    func scalersAreAppliedExactly(digits: String, scaler: Int, expected: String) {
        #expect(ReadingConverter.scaled(integer: digits, scaler: scaler) == expected)
    }

    @Test
    func valuesKeepTheirKind() {
        #expect(ReadingConverter.render(.uint32(5985744), scaler: -3) == (.number, "5985.744"))
        #expect(ReadingConverter.render(.uint64(UInt64.max), scaler: 0) == (.number, "18446744073709551615"))
        #expect(ReadingConverter.render(.int16(-7), scaler: 1) == (.number, "-70"))
        #expect(ReadingConverter.render(.boolean(true), scaler: nil) == (.boolean, "true"))
        #expect(ReadingConverter.render(.octetString(ByteBuffer(bytes: [0xDE, 0xAD])), scaler: nil) == (.octets, "DEAD"))
        #expect(ReadingConverter.render(.visibleString(ByteBuffer(string: "EMH")), scaler: nil) == (.text, "EMH"))
        let time = CosemDateTime(unixTime: 1_764_115_200, utcOffsetMinutes: 60)
        #expect(ReadingConverter.render(.dateTime(time), scaler: nil) == (.dateTime, "2025-11-26T00:00:00.000Z"))
        #expect(ReadingConverter.render(.octetString(time.octetString), scaler: nil) == (.dateTime, "2025-11-26T00:00:00.000Z"))
    }

    @Test
    func profileRowsBecomeReadingsAtTheirCaptureTimeInUTC() {
        let clock = CaptureObjectDefinition(classID: .clock, logicalName: .clock, attributeIndex: 2)
        let energy = CaptureObjectDefinition(classID: .register, logicalName: OBISCode(1, 0, 1, 8, 0, 255), attributeIndex: 2)
        let columns = [clock, energy]
        // 01:15 local at UTC+1 is 00:15 UTC.
        let local = CosemDateTime(unixTime: 1_764_115_200 + 900, utcOffsetMinutes: 60)
        let rows = [
            ProfileRow(columns: columns, values: DLMSDataList([.dateTime(local), .uint32(123456)])),
            ProfileRow(columns: columns, values: DLMSDataList([.null, .uint32(1)])),
        ]
        let (readings, skipped) = ReadingConverter.readings(profileRows: rows, scalers: [OBISCode(1, 0, 1, 8, 0, 255): ScalerUnit(scaler: -3, unit: .wattHour)],
                                                            profile: "1.0.99.1.0.255")
        #expect(skipped == 1)
        #expect(readings == [Reading(obis: "1.0.1.8.0.255", classID: 3, attribute: 2, captureTime: Date(timeIntervalSince1970: 1_764_115_200 + 900),
                                     valueType: .number, value: "123.456", unit: "Wh", profile: "1.0.99.1.0.255")])
    }
}
