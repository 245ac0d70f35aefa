import Foundation

/// A hand-written reader for the high-volume contracts (`reading-batch/v1` and the IMS's
/// `ims-readings/v1` request that carries them), beside Foundation's `JSONDecoder`, which was
/// 83–86% of the uploader's and ims-sim's CPU while delivering a backlog (`docs/performance.md`).
///
/// It only takes the plain shape our writer produces — known keys once each, integers without
/// fraction or exponent, the exact current schema — and answers `nil`
/// for anything else: ``ContractCoder/decode(_:from:)`` then decodes with `JSONDecoder`, so every
/// refusal and its wording, and every unusual but valid document, are exactly as before. What it
/// does accept it reads to the same value `JSONDecoder` would (checked by FuzzContracts and
/// `ContractJSONReaderTests`).
struct ContractJSONReader {
    private let bytes: UnsafeRawBufferPointer
    private var position = 0

    private init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// The batch, or `nil` when the fast path does not take `bytes`.
    static func readingBatch(_ bytes: UnsafeRawBufferPointer) -> ReadingBatch? {
        var reader = ContractJSONReader(bytes)
        guard let batch = reader.readingBatch(), reader.atEnd() else { return nil }
        return batch
    }

    /// The request with every batch valid, or `nil` when the fast path does not take `bytes`.
    static func readingsRequest(_ bytes: UnsafeRawBufferPointer) -> IMSReadingsRequest? {
        var reader = ContractJSONReader(bytes)
        guard let request = reader.readingsRequest(), reader.atEnd() else { return nil }
        return request
    }

    // MARK: - Contracts

    private mutating func readingsRequest() -> IMSReadingsRequest? {
        var schema: String?, requestID: String?, batches: [ReadingBatch]?
        let complete = object { key, reader in
            switch key {
            case "schema" where schema == nil: schema = reader.string(); return schema != nil
            case "requestID" where requestID == nil: requestID = reader.string(); return requestID != nil
            case "batches" where batches == nil: batches = reader.array { $0.readingBatch() }; return batches != nil
            default: return false
            }
        }
        guard complete, schema == IMSReadingsRequest.currentSchema, let requestID, let batches else { return nil }
        return IMSReadingsRequest(requestID: requestID, batches: batches)
    }

    private mutating func readingBatch() -> ReadingBatch? {
        var schema: String?, batchID: String?, taskID: String?, region: String?, meterID: String?
        var collectedAt: Date?, readings: [Reading]?
        let complete = object { key, reader in
            switch key {
            case "schema" where schema == nil: schema = reader.string(); return schema != nil
            case "batchID" where batchID == nil: batchID = reader.string(); return batchID != nil
            case "taskID" where taskID == nil: taskID = reader.string(); return taskID != nil
            case "region" where region == nil: region = reader.string(); return region != nil
            case "meterID" where meterID == nil: meterID = reader.string(); return meterID != nil
            case "collectedAt" where collectedAt == nil: collectedAt = reader.date(); return collectedAt != nil
            case "readings" where readings == nil: readings = reader.array { $0.reading() }; return readings != nil
            default: return false
            }
        }
        guard complete, schema == ReadingBatch.currentSchema, let batchID, let taskID, let region, let meterID, let collectedAt, let readings
        else { return nil }
        return ReadingBatch(batchID: batchID, taskID: taskID, region: region, meterID: meterID, collectedAt: collectedAt, readings: readings)
    }

    private mutating func reading() -> Reading? {
        var obis: String?, classID: Int?, attribute: Int?, captureTime: Date?, valueType: Reading.ValueType?, value: String?
        var unit: String??, status: Int??, profile: String??
        let complete = object { key, reader in
            switch key {
            case "obis" where obis == nil: obis = reader.string(); return obis != nil
            case "classID" where classID == nil: classID = reader.integer(); return classID != nil
            case "attribute" where attribute == nil: attribute = reader.integer(); return attribute != nil
            case "captureTime" where captureTime == nil: captureTime = reader.date(); return captureTime != nil
            case "valueType" where valueType == nil: valueType = reader.string().flatMap(Reading.ValueType.init(rawValue:)); return valueType != nil
            case "value" where value == nil: value = reader.string(); return value != nil
            case "unit" where unit == nil: unit = reader.optional { $0.string() }; return unit != nil
            case "status" where status == nil: status = reader.optional { $0.integer() }; return status != nil
            case "profile" where profile == nil: profile = reader.optional { $0.string() }; return profile != nil
            default: return false
            }
        }
        guard complete, let obis, let classID, let attribute, let captureTime, let valueType, let value else { return nil }
        return Reading(obis: obis, classID: classID, attribute: attribute, captureTime: captureTime, valueType: valueType, value: value,
                       unit: unit ?? nil, status: status ?? nil, profile: profile ?? nil)
    }

    // MARK: - JSON

    private static let quote = UInt8(ascii: "\"")
    private static let backslash = UInt8(ascii: "\\")

    private mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    private mutating func consume(_ byte: UInt8) -> Bool {
        skipWhitespace()
        guard position < bytes.count, bytes[position] == byte else { return false }
        position += 1
        return true
    }

    private mutating func atEnd() -> Bool {
        skipWhitespace()
        return position == bytes.count
    }

    /// `{ "key": value, … }`; `member` reads the value of each key and answers whether it did.
    private mutating func object(_ member: (String, inout ContractJSONReader) -> Bool) -> Bool {
        guard consume(UInt8(ascii: "{")) else { return false }
        if consume(UInt8(ascii: "}")) { return true }
        repeat {
            skipWhitespace()
            guard let key = string(), consume(UInt8(ascii: ":")), member(key, &self) else { return false }
        } while consume(UInt8(ascii: ","))
        return consume(UInt8(ascii: "}"))
    }

    private mutating func array<Element>(_ element: (inout ContractJSONReader) -> Element?) -> [Element]? {
        guard consume(UInt8(ascii: "[")) else { return nil }
        var elements: [Element] = []
        if consume(UInt8(ascii: "]")) { return elements }
        repeat {
            guard let next = element(&self) else { return nil }
            elements.append(next)
        } while consume(UInt8(ascii: ","))
        return consume(UInt8(ascii: "]")) ? elements : nil
    }

    /// `null` as `.some(nil)`, a value as `.some(value)`, anything else `nil`.
    private mutating func optional<Value>(_ value: (inout ContractJSONReader) -> Value?) -> Value?? {
        skipWhitespace()
        if position + 4 <= bytes.count, bytes[position] == UInt8(ascii: "n"), bytes[position + 1] == UInt8(ascii: "u"),
           bytes[position + 2] == UInt8(ascii: "l"), bytes[position + 3] == UInt8(ascii: "l") {
            position += 4
            return .some(nil)
        }
        return value(&self).map { .some($0) }
    }

    /// A string: valid UTF-8 without control characters; the escapes of JSON (our writer
    /// escapes `/` as `\/`, as `JSONEncoder` does) decoded, a lone surrogate left to JSONDecoder.
    private mutating func string() -> String? {
        guard consume(Self.quote) else { return nil }
        let start = position
        while position < bytes.count {
            let byte = bytes[position]
            if byte == Self.quote {
                let text = String(validating: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
                position += 1
                return text
            }
            if byte == Self.backslash { return escapedString(from: start) }
            guard byte >= 0x20 else { return nil }
            position += 1
        }
        return nil
    }

    /// The rest of a string that holds an escape, from its first byte at `start`.
    private mutating func escapedString(from start: Int) -> String? {
        var text = Array(bytes[start..<position])
        while position < bytes.count {
            let byte = bytes[position]
            position += 1
            switch byte {
            case Self.quote:
                return String(validating: text, as: UTF8.self)
            case Self.backslash:
                guard position < bytes.count else { return nil }
                let escape = bytes[position]
                position += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): text.append(escape)
                case UInt8(ascii: "b"): text.append(0x08)
                case UInt8(ascii: "f"): text.append(0x0C)
                case UInt8(ascii: "n"): text.append(0x0A)
                case UInt8(ascii: "r"): text.append(0x0D)
                case UInt8(ascii: "t"): text.append(0x09)
                case UInt8(ascii: "u"):
                    guard let unit = hex4() else { return nil }
                    var scalar: Unicode.Scalar?
                    if (0xD800...0xDBFF).contains(unit) {
                        guard position + 2 <= bytes.count, bytes[position] == Self.backslash, bytes[position + 1] == UInt8(ascii: "u") else { return nil }
                        position += 2
                        guard let low = hex4(), (0xDC00...0xDFFF).contains(low) else { return nil }
                        scalar = Unicode.Scalar(0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00))
                    } else {
                        scalar = Unicode.Scalar(unit)
                    }
                    guard let scalar else { return nil }
                    text.append(contentsOf: String(scalar).utf8)
                default:
                    return nil
                }
            default:
                guard byte >= 0x20 else { return nil }
                text.append(byte)
            }
        }
        return nil
    }

    /// Four hexadecimal digits of a `\u` escape.
    private mutating func hex4() -> UInt16? {
        guard position + 4 <= bytes.count else { return nil }
        var value: UInt16 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt16(digit)
            position += 1
        }
        return value
    }

    /// An integer as JSON writes one (`0`, `-12`; no leading zeros, fraction or exponent) that fits `Int`.
    private mutating func integer() -> Int? {
        skipWhitespace()
        var negative = false
        if position < bytes.count, bytes[position] == UInt8(ascii: "-") {
            negative = true
            position += 1
        }
        let start = position
        var value = 0
        while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) {
            let digit = Int(bytes[position] - UInt8(ascii: "0"))
            let (times, overflowA) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflowB) = negative ? times.subtractingReportingOverflow(digit) : times.addingReportingOverflow(digit)
            guard !overflowA, !overflowB else { return nil }
            value = sum
            position += 1
        }
        let digits = position - start
        guard digits > 0, digits == 1 || bytes[start] != UInt8(ascii: "0") else { return nil }
        if position < bytes.count {
            switch bytes[position] {
            case UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"): return nil
            default: break
            }
        }
        return value
    }

    private mutating func date() -> Date? {
        string().flatMap(ContractDate.parse)
    }
}
