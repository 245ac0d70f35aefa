import COSEM
import Foundation
import MeterSimulation
import NIOCore
import Testing

/// The IEC 62056-21 view of a simulated meter reports the same numbers as its DLMS objects.
@Suite("IEC 62056-21 view of a simulated meter")
struct IEC21ViewTests {
    let meter = makeMeter("SIM00000002", seed: 7)
    /// 2026-11-26T10:07:31Z.
    let now = Date(timeIntervalSince1970: 1_795_687_651)

    static func kWh(_ data: DLMSData?) -> String {
        guard case .uint32(let wh)? = data else { return "?" }
        let integer = String(wh / 1000), fraction = String(wh % 1000)
        return String(repeating: "0", count: max(0, 6 - integer.count)) + integer + "." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }

    @Test func readoutHoldsTheRegistersAtTheReadoutSecond() {
        let lines = meter.iec21ReadoutLines(at: now)
        #expect(lines.prefix(4) == ["F.F(00000000)", "C.1.0(SIM00000002)", "0.9.1(100731)", "0.9.2(261126)"])
        let expected = [("1.8.0", OBISCode(1, 0, 1, 8, 0, 255)), ("1.8.1", OBISCode(1, 0, 1, 8, 1, 255)),
                        ("1.8.2", OBISCode(1, 0, 1, 8, 2, 255)), ("2.8.0", OBISCode(1, 0, 2, 8, 0, 255))]
        #expect(Array(lines.dropFirst(4)) == expected.map { "\($0.0)(\(Self.kWh(meter.expectedRegisterValue($0.1, at: now)))*kWh)" })
    }

    @Test func dataSetsByAddress() {
        let value = Self.kWh(meter.expectedRegisterValue(OBISCode(1, 0, 1, 8, 0, 255), at: now))
        #expect(meter.iec21DataSet("1.8.0", at: now) == "1.8.0(\(value)*kWh)")
        #expect(meter.iec21DataSet("1-0:1.8.0*255", at: now) == "1.8.0(\(value)*kWh)")
        #expect(meter.iec21DataSet("C.1.0", at: now) == "C.1.0(SIM00000002)")
        #expect(meter.iec21DataSet("9.9.9", at: now) == nil)
    }

    @Test func clockDriftMovesTheReadoutTime() {
        let drifting = makeMeter("SIM00000002", seed: 7) { $0.clockOffset = .seconds(90) }
        #expect(drifting.iec21ReadoutLines(at: now)[2] == "0.9.1(100901)")
    }

    @Test func loadProfileIsFourTimesTheQuarterHourEnergy() throws {
        let lines = try #require(meter.iec21LoadProfile("P.01(2611260000;2611260100)", at: now))
        #expect(lines.first == "P.01(0261126000000)(00)(15)(2)(1.5.0)(kW)(2.5.0)(kW)")
        #expect(lines.count == 1 + 5)
        // One row more before the range gives each row's starting value.
        let rows = meter.expectedProfileRows(from: Date(timeIntervalSince1970: 1_795_650_300), to: Date(timeIntervalSince1970: 1_795_654_800))
        #expect(rows.count == 6)
        func wh(_ value: DLMSData) -> UInt64 { if case .uint32(let v) = value { UInt64(v) } else { 0 } }
        func kW(_ w: UInt64) -> String { "\(w / 1000).\(String(repeating: "0", count: 3 - String(w % 1000).count))\(w % 1000)" }
        for row in 1..<rows.count {
            let importW = 4 * (wh(rows[row][1]) - wh(rows[row - 1][1]))
            let exportW = 4 * (wh(rows[row][2]) - wh(rows[row - 1][2]))
            #expect(lines[row] == "(\(kW(importW)))(\(kW(exportW)))")
        }
    }

    @Test func loadProfileRequestForms() {
        #expect(meter.iec21LoadProfile("P.01(02611260000;02611260015)", at: now)?.count == 3)
        #expect(meter.iec21LoadProfile("P.01(261126000000;261126001500)", at: now)?.count == 3)
        #expect(meter.iec21LoadProfile("P.01(2611261000;)", at: now)?.count == 1 + 1)    // 10:00 only, up to now
        #expect(meter.iec21LoadProfile("P.01(2611270000;2611270100)", at: now) == nil)   // the future
        #expect(meter.iec21LoadProfile("P.01(26112600;2611260100)", at: now) == nil)
        #expect(meter.iec21LoadProfile("P.02(2611260000;2611260100)", at: now) == nil)
    }
}
