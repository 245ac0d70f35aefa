import Foundation

/// A message type exchanged between processes, identified on the wire by `"schema": "<name>/v<major>"`.
///
/// Minor, additive changes keep the major version (decoders ignore unknown fields); a change that
/// old consumers would misread bumps it, and old consumers then refuse the message loudly.
public protocol VersionedContract: Codable, Sendable {
    /// The contract's name, e.g. `collection-task`.
    static var schemaName: String { get }
    /// The major versions this build can decode.
    static var supportedMajorVersions: ClosedRange<Int> { get }
    /// The version this build writes.
    static var currentMajorVersion: Int { get }
}

extension VersionedContract {
    /// The `schema` value this build writes, e.g. `collection-task/v2`.
    public static var currentSchema: String { "\(schemaName)/v\(currentMajorVersion)" }
}

/// Encodes and decodes contracts as JSON, checking the `schema` field before anything else.
public enum ContractCoder {
    public static func encode<Message: VersionedContract>(_ message: Message) throws -> [UInt8] {
        // The collector's per-task messages take the hand-written path (same bytes, see
        // ContractJSONWriter); everything else goes through JSONEncoder.
        if let batch = message as? ReadingBatch { return batch.writeJSON() }
        if let result = message as? TaskResult { return result.writeJSON() }
        return try encodeWithFoundation(message)
    }

    /// `JSONEncoder` with the contracts' settings: what the hand-written paths must equal.
    static func encodeWithFoundation<Message: VersionedContract>(_ message: Message) throws -> [UInt8] {
        Array(try makeEncoder().encode(message))
    }

    /// Decodes `Message`, refusing other contracts and unknown major versions.
    /// - Throws: `ContractError` with `.malformed`, `.missingSchema`, `.wrongSchema` or `.unsupportedVersion`.
    public static func decode<Message: VersionedContract>(_ type: Message.Type, from bytes: some Collection<UInt8>) throws -> Message {
        if let fast = fastPath(type, bytes) { return fast }
        let data = Data(bytes)
        let decoder = makeDecoder()
        let header: SchemaHeader
        do {
            header = try decoder.decode(SchemaHeader.self, from: data)
        } catch {
            throw ContractError(.malformed, "not a JSON object: \(error)")
        }
        guard let schema = header.schema else {
            throw ContractError(.missingSchema, "no \"schema\" field; expected \(Message.currentSchema)")
        }
        let (name, major) = try parse(schema)
        guard name == Message.schemaName else {
            throw ContractError(.wrongSchema, "got \(schema), expected \(Message.currentSchema)")
        }
        guard Message.supportedMajorVersions.contains(major) else {
            throw ContractError(.unsupportedVersion,
                "\(schema) is not supported by this build (supports \(Message.schemaName)/v\(Message.supportedMajorVersions.lowerBound)…v\(Message.supportedMajorVersions.upperBound))")
        }
        do {
            return try decoder.decode(Message.self, from: data)
        } catch let error as ContractError {
            throw error
        } catch let DecodingError.keyNotFound(key, context) {
            throw ContractError(.malformed, "\(schema): missing field '\(path(context.codingPath + [key]))'")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            throw ContractError(.malformed, "\(schema): wrong type at '\(path(context.codingPath))': \(context.debugDescription)")
        } catch let DecodingError.dataCorrupted(context) {
            throw ContractError(.malformed, "\(schema): invalid value at '\(path(context.codingPath))': \(context.debugDescription)")
        } catch {
            throw ContractError(.malformed, "\(schema): \(error)")
        }
    }

    /// Reading batches and the IMS request that carries them, read by ``ContractJSONReader`` when
    /// they have the plain shape our writer produces; `nil` otherwise (and for other contracts).
    static func fastPath<Message: VersionedContract>(_ type: Message.Type, _ bytes: some Collection<UInt8>) -> Message? {
        guard type == ReadingBatch.self || type == IMSReadingsRequest.self else { return nil }
        func read(_ raw: UnsafeRawBufferPointer) -> Message? {
            type == ReadingBatch.self ? ContractJSONReader.readingBatch(raw) as? Message : ContractJSONReader.readingsRequest(raw) as? Message
        }
        if let result = bytes.withContiguousStorageIfAvailable({ read(UnsafeRawBufferPointer($0)) }) { return result }
        return Array(bytes).withUnsafeBytes(read)
    }

    /// Splits `name/vN`.
    static func parse(_ schema: String) throws -> (name: String, major: Int) {
        guard let slash = schema.lastIndex(of: "/"),
              schema[schema.index(after: slash)...].hasPrefix("v"),
              let major = Int(schema[schema.index(slash, offsetBy: 2)...]), major >= 0
        else {
            throw ContractError(.malformed, "schema '\(schema)' is not of the form <name>/v<major>")
        }
        return (String(schema[..<slash]), major)
    }

    private static func path(_ keys: [any CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }

    /// `JSONEncoder` with the contracts' settings (sorted keys, dates as ``ContractDate``), for
    /// other JSON that should read the same (ims-sim's API bodies).
    public static func makeEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(ContractDate.format(date))
        }
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }

    /// `JSONDecoder` reading dates as ``ContractDate`` writes them.
    public static func makeDecoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = ContractDate.parse(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "'\(text)' is not an ISO 8601 date-time")
            }
            return date
        }
        return decoder
    }

    private struct SchemaHeader: Decodable {
        let schema: String?
    }
}

/// ISO 8601 date-times in UTC with optional milliseconds, as all contracts write them.
///
/// Formatting is by hand (a reading batch formats hundreds of capture times, and Foundation's
/// format styles cost microseconds each); parsing takes the exact form written here directly and
/// anything else ISO 8601 through Foundation.
public enum ContractDate {
    /// `2025-11-26T00:15:00.000Z`: UTC, to the nearest millisecond (Foundation's style truncates
    /// the binary fraction, so an instant made from 832 ms could print as .831).
    public static func format(_ date: Date) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        write(date, into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends what ``format(_:)`` returns to `bytes` (no quotes; nothing needs escaping).
    static func write(_ date: Date, into bytes: inout [UInt8]) {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded())
        let days = milliseconds >= 0 ? milliseconds / 86_400_000 : (milliseconds - 86_399_999) / 86_400_000
        var rest = milliseconds - days * 86_400_000
        let (year, month, day) = civil(fromDays: days)
        guard year >= 0, year <= 9999 else {
            bytes.append(contentsOf: date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt)).utf8)
            return
        }
        let hour = rest / 3_600_000; rest -= hour * 3_600_000
        let minute = rest / 60_000; rest -= minute * 60_000
        let second = rest / 1000, millisecond = rest - second * 1000
        func digits(_ value: Int64, _ count: Int) {
            var divisor: Int64 = 1
            for _ in 1..<count { divisor *= 10 }
            while divisor > 0 {
                bytes.append(UInt8(ascii: "0") + UInt8(value / divisor % 10))
                divisor /= 10
            }
        }
        digits(year, 4); bytes.append(UInt8(ascii: "-"))
        digits(month, 2); bytes.append(UInt8(ascii: "-"))
        digits(day, 2); bytes.append(UInt8(ascii: "T"))
        digits(hour, 2); bytes.append(UInt8(ascii: ":"))
        digits(minute, 2); bytes.append(UInt8(ascii: ":"))
        digits(second, 2); bytes.append(UInt8(ascii: "."))
        digits(millisecond, 3); bytes.append(UInt8(ascii: "Z"))
    }

    /// The date of an ISO 8601 date-time in years 0001…9999 (what ``write(_:into:)`` writes
    /// exactly); `nil` for anything else. Foundation also reads five-digit years, which no
    /// contract means and which would not survive being written again (found by FuzzContracts).
    public static func parse(_ text: String) -> Date? {
        if let date = parseExact(text) { return date }
        let date = (try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text)) ?? (try? Date.ISO8601FormatStyle().parse(text))
        guard let date, validRange.contains(date.timeIntervalSince1970) else { return nil }
        return date
    }

    /// 0001-01-01T00:00:00Z up to (not including) 10000-01-01T00:00:00Z, in seconds since 1970.
    static let validRange: Range<TimeInterval> = -62_135_596_800 ..< 253_402_300_800

    /// `YYYY-MM-DDTHH:MM:SS[.mmm]Z` without Foundation.
    static func parseExact(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count == 20 || bytes.count == 24, bytes.last == UInt8(ascii: "Z"),
              bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"), bytes[10] == UInt8(ascii: "T"),
              bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":") else { return nil }
        func number(_ range: Range<Int>) -> Int64? {
            var value: Int64 = 0
            for index in range {
                let byte = bytes[index]
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int64(byte - UInt8(ascii: "0"))
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
              let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61 else { return nil }
        var milliseconds: Int64 = 0
        if bytes.count == 24 {
            guard bytes[19] == UInt8(ascii: "."), let fraction = number(20..<23) else { return nil }
            milliseconds = fraction
        }
        let days = self.days(fromCivil: year, month, day)
        let total = ((days * 24 + hour) * 60 + minute) * 60 + second
        return Date(timeIntervalSince1970: Double(total) + Double(milliseconds) / 1000)
    }

    /// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's civil_from_days).
    static func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// A proleptic Gregorian date to days since 1970-01-01 (days_from_civil).
    static func days(fromCivil year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
