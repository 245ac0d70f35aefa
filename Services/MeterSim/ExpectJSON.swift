import COSEM
import Foundation

/// JSON rendering of simulated values for `meter-sim expect`: numbers raw, date-times as
/// ISO 8601 UTC, strings and octet strings as text or hex.
enum ExpectJSON {
    static func string(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    static func value(_ data: DLMSData) -> String {
        switch data {
        case .null, .dontCare: return "null"
        case .boolean(let value): return value ? "true" : "false"
        case .int8(let v): return "\(v)"
        case .int16(let v): return "\(v)"
        case .int32(let v): return "\(v)"
        case .int64(let v): return "\(v)"
        case .uint8(let v): return "\(v)"
        case .uint16(let v): return "\(v)"
        case .uint32(let v): return "\(v)"
        case .uint64(let v): return "\(v)"
        case .enumerated(let v): return "\(v)"
        case .bcd(let v): return "\(v)"
        case .float32(let v): return "\(v)"
        case .float64(let v): return "\(v)"
        case .dateTime(let dateTime):
            guard let unix = dateTime.unixTime else { return string("\(dateTime)") }
            let formatter = ISO8601DateFormatter()
            formatter.timeZone = TimeZone(identifier: "UTC")
            return string(formatter.string(from: Date(timeIntervalSince1970: TimeInterval(unix))))
        case .visibleString(let bytes), .utf8String(let bytes):
            return string(String(decoding: bytes.readableBytesView, as: UTF8.self))
        case .octetString(let bytes) where bytes.readableBytes == CosemDateTime.encodedSize:
            var copy = bytes
            if let dateTime = try? CosemDateTime.decode(from: &copy) { return value(.dateTime(dateTime)) }
            return string(bytes.readableBytesView.map { String(format: "%02X", $0) }.joined())
        case .octetString(let bytes):
            return string(bytes.readableBytesView.map { String(format: "%02X", $0) }.joined())
        case .array(let items), .structure(let items):
            return "[" + items.map(value).joined(separator: ",") + "]"
        default:
            return string("\(data)")
        }
    }
}
