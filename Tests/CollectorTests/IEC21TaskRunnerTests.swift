import COSEM
import Contracts
import Foundation
import Testing
@testable import Collector

/// How a mode C meter's addresses and values become readings.
@Suite
struct IEC21TaskRunnerTests {
    @Test("a register's OBIS code is asked for by its reduced address, with mode C's letters for C = 96…99")
    func reducedAddresses() {
        #expect(IEC21TaskRunner.address(of: OBISCode(1, 0, 1, 8, 0, 255)) == "1.8.0")
        #expect(IEC21TaskRunner.address(of: OBISCode(1, 0, 2, 8, 1, 255)) == "2.8.1")
        #expect(IEC21TaskRunner.address(of: OBISCode(0, 0, 96, 1, 0, 255)) == "C.1.0")
        #expect(IEC21TaskRunner.address(of: OBISCode(1, 0, 97, 97, 0, 255)) == "F.F.0")
    }

    @Test("A.B.99.n.0.255 is the load profile P.0n; other codes have none")
    func loadProfileAddresses() {
        #expect(IEC21TaskRunner.loadProfileAddress(of: OBISCode(1, 0, 99, 1, 0, 255)) == "P.01")
        #expect(IEC21TaskRunner.loadProfileAddress(of: OBISCode(1, 0, 99, 2, 0, 255)) == "P.02")
        #expect(IEC21TaskRunner.loadProfileAddress(of: OBISCode(1, 0, 99, 98, 0, 255)) == nil)
        #expect(IEC21TaskRunner.loadProfileAddress(of: OBISCode(0, 0, 98, 1, 0, 255)) == nil)
    }

    @Test("a profile channel becomes a full OBIS code (electricity, channel 0, F = 255 unless it says otherwise)")
    func channelCodes() {
        #expect(IEC21TaskRunner.obis(ofChannel: "1.5.0") == "1.0.1.5.0.255")
        #expect(IEC21TaskRunner.obis(ofChannel: "1-1:2.5.0*255") == "1.1.2.5.0.255")
        #expect(IEC21TaskRunner.obis(ofChannel: "P.01") == "P.01", "not C.D.E: kept as the meter wrote it")
        #expect(IEC21TaskRunner.obis(ofChannel: "1.x.0") == "1.x.0")
    }

    @Test("numbers keep their exact decimal value in the readings' canonical form; anything else is not a number")
    func decimals() {
        let cases: [(String, String?)] = [
            ("001234.567", "1234.567"), ("000012.500", "12.5"), ("000.000", "0"), ("-0.010", "-0.01"), ("+7", "7"),
            ("-000.000", "0"), ("42", "42"), (".5", "0.5"),
            ("12.", nil), ("1e3", nil), ("", nil), ("-", nil), ("ERROR", nil), ("1.2.3", nil), ("٣", nil),
        ]
        for (text, expected) in cases {
            #expect(IEC21TaskRunner.decimal(text) == expected, "\(text)")
        }
    }

    @Test("a data set becomes a number reading with its unit, or a text reading")
    func readings() {
        let time = Date(timeIntervalSince1970: 1_780_000_000)
        let number = IEC21TaskRunner.reading(obis: "1.0.1.8.0.255", classID: 3, text: "001234.567", unit: "kWh", captureTime: time)
        #expect(number.valueType == .number && number.value == "1234.567" && number.unit == "kWh" && number.captureTime == time)
        let text = IEC21TaskRunner.reading(obis: "0.0.96.1.0.255", classID: 1, text: "SIM0001", unit: nil, captureTime: time)
        #expect(text.valueType == .text && text.value == "SIM0001" && text.unit == nil)
    }
}
