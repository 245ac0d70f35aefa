import Foundation

/// Writes the two contracts a collector produces per task, `ReadingBatch` and `TaskResult`,
/// straight into bytes: the same bytes `JSONEncoder` writes for them with `ContractCoder`'s
/// settings (sorted keys, escaped slashes, dates as ``ContractDate``), which the tests check,
/// at a fraction of the cost. `JSONEncoder` builds a tree of boxed values and sorts every
/// object's keys; for a batch of a few hundred readings that was 60 % of a collector's CPU.
struct ContractJSONWriter {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int) {
        bytes.reserveCapacity(capacity)
    }

    /// Appends bytes that are JSON already (a member name with its quotes, a whole contract).
    mutating func raw(_ json: some Sequence<UInt8>) {
        bytes.append(contentsOf: json)
    }

    // MARK: - Values

    mutating func string(_ text: String) {
        bytes.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { utf8 in
            // Most values (OBIS codes, numbers, ids) need no escaping: copy them whole.
            if !utf8.contains(where: Self.needsEscape) {
                bytes.append(contentsOf: utf8)
                return
            }
            for byte in utf8 { appendEscaped(byte) }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    @inline(__always)
    private static func needsEscape(_ byte: UInt8) -> Bool {
        byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte == UInt8(ascii: "/")
    }

    private mutating func appendEscaped(_ byte: UInt8) {
        switch byte {
        case UInt8(ascii: "\""): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
        case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
        case UInt8(ascii: "/"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "/")])
        case 0x08: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
        case 0x0C: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
        case 0x0A: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
        case 0x0D: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
        case 0x09: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
        case 0x00..<0x20:
            let hex = Array("0123456789abcdef".utf8)
            bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
        default: bytes.append(byte)
        }
    }

    mutating func int(_ value: Int) {
        bytes.append(contentsOf: String(value).utf8)
    }

    mutating func bool(_ value: Bool) {
        bytes.append(contentsOf: (value ? "true" : "false").utf8)
    }

    mutating func date(_ value: Date) {
        bytes.append(UInt8(ascii: "\""))
        ContractDate.write(value, into: &bytes)
        bytes.append(UInt8(ascii: "\""))
    }

    // MARK: - Structure

    /// Writes an object whose members `body` writes through `member(_:_:)` in sorted key order.
    mutating func object(_ body: (inout ContractJSONWriter) -> Void) {
        bytes.append(UInt8(ascii: "{"))
        let start = bytes.count
        body(&self)
        if bytes.count > start, bytes.last == UInt8(ascii: ",") { bytes.removeLast() }
        bytes.append(UInt8(ascii: "}"))
    }

    /// A member of the object being written; call in sorted key order.
    mutating func member(_ key: StaticString, _ value: (inout ContractJSONWriter) -> Void) {
        bytes.append(UInt8(ascii: "\""))
        key.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
        value(&self)
        bytes.append(UInt8(ascii: ","))
    }

    mutating func array<Element>(_ elements: [Element], _ write: (inout ContractJSONWriter, Element) -> Void) {
        bytes.append(UInt8(ascii: "["))
        for (index, element) in elements.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            write(&self, element)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    /// A `[String: String]` with its keys sorted as `JSONEncoder` sorts them.
    mutating func dictionary(_ values: [String: String]) {
        bytes.append(UInt8(ascii: "{"))
        for (index, key) in values.keys.sorted(by: Self.encoderOrder).enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            string(key)
            bytes.append(UInt8(ascii: ":"))
            string(values[key]!)
        }
        bytes.append(UInt8(ascii: "}"))
    }

    /// `JSONEncoder.OutputFormatting.sortedKeys` compares keys by their UTF-8 bytes.
    static func encoderOrder(_ lhs: String, _ rhs: String) -> Bool {
        lhs.utf8.lexicographicallyPrecedes(rhs.utf8)
    }
}

// MARK: - The contracts

extension Reading {
    func write(into writer: inout ContractJSONWriter) {
        writer.object { w in
            w.member("attribute") { $0.int(attribute) }
            w.member("captureTime") { $0.date(captureTime) }
            w.member("classID") { $0.int(classID) }
            w.member("obis") { $0.string(obis) }
            if let profile { w.member("profile") { $0.string(profile) } }
            if let status { w.member("status") { $0.int(status) } }
            if let unit { w.member("unit") { $0.string(unit) } }
            w.member("value") { $0.string(value) }
            w.member("valueType") { $0.string(valueType.rawValue) }
        }
    }
}

extension ReadingBatch {
    /// The JSON `ContractCoder.encode` writes for this batch.
    func writeJSON() -> [UInt8] {
        var writer = ContractJSONWriter(capacity: 256 + readings.count * 160)
        writer.object { w in
            w.member("batchID") { $0.string(batchID) }
            w.member("collectedAt") { $0.date(collectedAt) }
            w.member("meterID") { $0.string(meterID) }
            w.member("readings") { $0.array(readings) { writer, reading in reading.write(into: &writer) } }
            w.member("region") { $0.string(region) }
            w.member("schema") { $0.string(schema) }
            w.member("taskID") { $0.string(taskID) }
        }
        return writer.bytes
    }
}

extension TaskResult {
    /// The JSON `ContractCoder.encode` writes for this result.
    func writeJSON() -> [UInt8] {
        var writer = ContractJSONWriter(capacity: 512)
        writer.object { w in
            if let commandID { w.member("commandID") { $0.string(commandID) } }
            w.member("details") { $0.dictionary(details) }
            if let failure {
                w.member("failure") { writer in
                    writer.object { f in
                        f.member("code") { $0.string(failure.code) }
                        f.member("reason") { $0.string(failure.reason) }
                        f.member("retriable") { $0.bool(failure.retriable) }
                        if let step = failure.step { f.member("step") { $0.string(step) } }
                    }
                }
            }
            w.member("finishedAt") { $0.date(finishedAt) }
            w.member("lineID") { $0.string(lineID) }
            w.member("meterID") { $0.string(meterID) }
            w.member("outcome") { $0.string(outcome.rawValue) }
            w.member("readingCount") { $0.int(readingCount) }
            w.member("region") { $0.string(region) }
            w.member("schema") { $0.string(schema) }
            w.member("startedAt") { $0.date(startedAt) }
            w.member("taskID") { $0.string(taskID) }
        }
        return writer.bytes
    }
}
