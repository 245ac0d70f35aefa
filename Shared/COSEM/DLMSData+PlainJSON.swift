import NIOCore

/// A DLMS value as plain JSON, the way operators and the IMS read values: numbers as numbers,
/// date-times as ISO 8601, strings as strings, octet strings as hex, structures as arrays.
/// (The typed, round-trippable form is `DLMSData`'s `Codable` conformance.)
public enum PlainJSONValue: Hashable, Sendable, Encodable {
    case null
    case bool(Bool)
    case integer(Int64)
    case unsigned(UInt64)
    case number(Double)
    case string(String)
    case array([PlainJSONValue])

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let v): try container.encode(v)
        case .integer(let v): try container.encode(v)
        case .unsigned(let v): try container.encode(v)
        case .number(let v): try container.encode(v)
        case .string(let v): try container.encode(v)
        case .array(let v): try container.encode(v)
        }
    }
}

extension DLMSData {
    /// The value as plain JSON. A 12-byte octet string is shown as a date-time when it is a
    /// valid one (that is how meters send clock values).
    public var plainJSON: PlainJSONValue {
        switch self {
        case .null, .dontCare: .null
        case .array(let e), .structure(let e): .array(e.map(\.plainJSON))
        case .compactArray(let c): .array(c.elements.map(\.plainJSON))
        case .boolean(let b): .bool(b)
        case .bitString(let b): .string(b.description)
        case .int8(let v): .integer(Int64(v))
        case .int16(let v): .integer(Int64(v))
        case .int32(let v): .integer(Int64(v))
        case .int64(let v): .integer(v)
        case .uint8(let v): .unsigned(UInt64(v))
        case .uint16(let v): .unsigned(UInt64(v))
        case .uint32(let v): .unsigned(UInt64(v))
        case .uint64(let v): .unsigned(v)
        case .bcd(let v): .integer(Int64(v))
        case .enumerated(let v): .unsigned(UInt64(v))
        case .float32(let v): .number(Double(v))
        case .float64(let v): .number(v)
        case .dateTime(let d): d.iso8601.map(PlainJSONValue.string) ?? .string(d.description)
        case .date(let d): .string(CosemDateTime(date: d, time: .notSpecified).description)
        case .time(let t): .string(CosemDateTime(date: .notSpecified, time: t).description)
        case .octetString(let b):
            if b.readableBytes == 12, let d = try? CosemDateTime(octetString: b), let iso = d.iso8601 {
                .string(iso)
            } else {
                .string(DLMSBytes(b.readableBytesView).hex)
            }
        case .visibleString(let b), .utf8String(let b): .string(String(decoding: b.readableBytesView, as: UTF8.self))
        }
    }
}

extension CosemDateTime {
    /// ISO 8601: UTC (`…Z`) when the deviation is given, local time without a zone when it is
    /// not; `nil` when a date or time field is not specified.
    public var iso8601: String? {
        guard let y = date.yearValue, let m = date.monthValue, let d = date.dayValue,
              let h = time.hourValue, let mi = time.minuteValue, let s = time.secondValue else { return nil }
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        if let utc = unixTime {
            let days = Int(utc.floorDiv(86_400))
            let secs = Int(utc - Int64(days) * 86_400)
            let (uy, um, ud) = Self.civilFromDays(days)
            return "\(uy)-\(two(um))-\(two(ud))T\(two(secs / 3600)):\(two(secs / 60 % 60)):\(two(secs % 60))Z"
        }
        return "\(y)-\(two(m))-\(two(d))T\(two(h)):\(two(mi)):\(two(s))"
    }
}
