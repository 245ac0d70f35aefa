import COSEM
import Contracts
import Foundation
import NIOCore

/// Turns what a meter returned into `reading-batch/v1` readings: the scaler applied exactly (as
/// decimal text, never through a binary float for integers), the unit symbol, the capture time
/// in UTC (from the meter's own deviation) and the value's kind.
enum ReadingConverter {
    /// A register's or data object's value read at `readAt` (no capture time of its own).
    static func reading(
        obis: OBISCode, classID: Int, attribute: Int, value: DLMSData, scalerUnit: ScalerUnit?, captureTime: Date
    ) -> Reading {
        let (type, text) = render(value, scaler: scalerUnit?.scaler)
        return Reading(obis: "\(obis)", classID: classID, attribute: attribute, captureTime: captureTime,
                       valueType: type, value: text, unit: type == .number ? scalerUnit?.unit.symbol : nil)
    }

    /// The readings of profile rows: one per captured value that is not the clock column, at the
    /// row's capture time; rows without a usable time are counted and skipped.
    /// - Parameter scalers: the scaler and unit of each captured register, by logical name.
    /// - Parameter profile: the profile the rows came from; each reading names it.
    static func readings(profileRows rows: [ProfileRow], scalers: [OBISCode: ScalerUnit], profile: String? = nil) -> (readings: [Reading], rowsWithoutTime: Int) {
        var readings: [Reading] = []
        var skipped = 0
        // What is the same for every row of a column is worked out once per column.
        struct Column { var obis: String; var classID: Int; var attribute: Int; var scaler: ScalerUnit?; var unit: String?; var isClock: Bool }
        var columns: [[CaptureObjectDefinition]: [Column]] = [:]
        readings.reserveCapacity(rows.count * max(1, (rows.first?.columns.count ?? 1) - 1))
        for row in rows {
            guard let time = row.captureTime?.unixTime else {
                skipped += 1
                continue
            }
            let captureTime = Date(timeIntervalSince1970: TimeInterval(time))
            let described = columns[row.columns] ?? {
                let described = row.columns.map { column in
                    let scaler = scalers[column.logicalName]
                    return Column(obis: "\(column.logicalName)", classID: Int(column.classID.rawValue), attribute: Int(column.attributeIndex),
                                  scaler: scaler, unit: scaler?.unit.symbol, isClock: column.classID == .clock && column.attributeIndex == 2)
                }
                columns[row.columns] = described
                return described
            }()
            for (index, column) in described.enumerated() where index < row.values.count && !column.isClock {
                let (type, text) = render(row.values[index], scaler: column.scaler?.scaler)
                readings.append(Reading(
                    obis: column.obis, classID: column.classID, attribute: column.attribute,
                    captureTime: captureTime, valueType: type, value: text, unit: type == .number ? column.unit : nil, profile: profile))
            }
        }
        return (readings, skipped)
    }

    /// The value as text of its kind; numbers scaled by `10^scaler`.
    static func render(_ value: DLMSData, scaler: Int8?) -> (Reading.ValueType, String) {
        switch value {
        case .int8, .int16, .int32, .int64, .uint8, .uint16, .uint32, .uint64, .enumerated, .bcd:
            let digits: String = switch value {
            case .uint64(let v): String(v)
            default: value.integerValue.map { String($0) } ?? "0"
            }
            return (.number, scaled(integer: digits, scaler: Int(scaler ?? 0)))
        case .float32(let v):
            return (.number, scaled(double: Double(v), scaler: Int(scaler ?? 0)))
        case .float64(let v):
            return (.number, scaled(double: v, scaler: Int(scaler ?? 0)))
        case .boolean(let v):
            return (.boolean, v ? "true" : "false")
        case .dateTime(let time):
            if let unix = time.unixTime {
                return (.dateTime, ContractDate.format(Date(timeIntervalSince1970: TimeInterval(unix))))
            }
            return (.text, time.description)
        case .visibleString, .utf8String:
            return (.text, value.stringValue ?? "")
        case .octetString(let buffer):
            if let time = try? CosemDateTime(octetString: buffer), let unix = time.unixTime {
                return (.dateTime, ContractDate.format(Date(timeIntervalSince1970: TimeInterval(unix))))
            }
            return (.octets, Hex.encode(buffer.readableBytesView))
        default:
            return (.text, "\(value.plainJSON)")
        }
    }

    /// `digits × 10^scaler` exactly: `"12345"` with −3 is `"12.345"`, with 2 `"1234500"`;
    /// trailing zeros after the point are dropped (`"1.500"` → `"1.5"`).
    static func scaled(integer digits: String, scaler: Int) -> String {
        if scaler == 0 { return digits }
        var negative = false
        var magnitude = Substring(digits)
        if magnitude.hasPrefix("-") {
            negative = true
            magnitude = magnitude.dropFirst()
        }
        var text: String
        if magnitude == "0" {
            text = "0"
            negative = false
        } else if scaler >= 0 {
            text = String(magnitude) + String(repeating: "0", count: scaler)
        } else {
            let places = -scaler
            let padded = String(repeating: "0", count: max(0, places + 1 - magnitude.count)) + magnitude
            let split = padded.index(padded.endIndex, offsetBy: -places)
            var fraction = padded[split...]
            while fraction.last == "0" { fraction = fraction.dropLast() }
            text = fraction.isEmpty ? String(padded[..<split]) : "\(padded[..<split]).\(fraction)"
        }
        return negative ? "-" + text : text
    }

    /// A float meter value scaled by one multiplication or division by an exact power of ten.
    static func scaled(double value: Double, scaler: Int) -> String {
        guard value.isFinite else { return "\(value)" }
        let power = (0..<abs(scaler)).reduce(1.0) { result, _ in result * 10 }
        let scaled = scaler >= 0 ? value * power : value / power
        return scaled == scaled.rounded() && abs(scaled) < 1e15 ? String(Int64(scaled)) : "\(scaled)"
    }
}
