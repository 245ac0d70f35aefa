import Foundation
import Logging
import Synchronization

/// A `LogHandler` writing one line per record to a file handle (standard error by default), in
/// either log format:
/// - text: `2026-11-26T16:54:25.123Z info collector: message key=value`;
/// - JSON: one object with `ts` (ISO 8601, UTC, milliseconds), `level`, `logger`, `msg`,
///   `source`, then every metadata key at the top level; nested metadata becomes nested JSON.
public struct LineLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?

    private let label: String
    private let format: LogFormat
    private let sink: LogSink

    public init(label: String, format: LogFormat, sink: LogSink = .standardError) {
        self.label = label
        self.format = format
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        // Handler metadata, then the provider's, then the record's: later sources win.
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        sink.write(format == .json ? jsonLine(event, merged) : textLine(event, merged))
    }

    private func textLine(_ event: LogEvent, _ merged: Logger.Metadata) -> String {
        var line = "\(LogTimestamp.now()) \(event.level) \(label): \(event.message)"
        for key in merged.keys.sorted() {
            line += " \(key)=\(merged[key]!)"
        }
        return line + "\n"
    }

    private func jsonLine(_ event: LogEvent, _ merged: Logger.Metadata) -> String {
        var line = "{\"ts\":\"\(LogTimestamp.now())\",\"level\":\"\(event.level)\",\"logger\":"
        JSONText.appendString(label, to: &line)
        line += ",\"msg\":"
        JSONText.appendString(event.message.description, to: &line)
        line += ",\"source\":"
        JSONText.appendString("\(event.file):\(event.line)", to: &line)
        for key in merged.keys.sorted() {
            line += ","
            JSONText.appendString(key, to: &line)
            line += ":"
            JSONText.append(merged[key]!, to: &line)
        }
        return line + "}\n"
    }
}

/// Where log lines go. Writes are serialized so lines from concurrent tasks never interleave.
public final class LogSink: Sendable {
    private let handle: Mutex<FileHandle>

    public init(_ handle: FileHandle) { self.handle = Mutex(handle) }

    public static let standardError = LogSink(FileHandle.standardError)

    func write(_ line: String) {
        let data = Data(line.utf8)
        handle.withLock { $0.write(data) }
    }
}

enum LogTimestamp {
    static func now() -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        var seconds = spec.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let millis = Int(spec.tv_nsec / 1_000_000)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(millis), 3))Z"
    }
}

enum JSONText {
    static func appendString(_ value: String, to output: inout String) {
        output += "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: output.unicodeScalars.append(scalar)
            }
        }
        output += "\""
    }

    static func append(_ value: Logger.Metadata.Value, to output: inout String) {
        switch value {
        case .string(let text): appendString(text, to: &output)
        case .stringConvertible(let convertible): appendString(convertible.description, to: &output)
        case .array(let values):
            output += "["
            for (index, element) in values.enumerated() {
                if index > 0 { output += "," }
                append(element, to: &output)
            }
            output += "]"
        case .dictionary(let dictionary):
            output += "{"
            for (index, key) in dictionary.keys.sorted().enumerated() {
                if index > 0 { output += "," }
                appendString(key, to: &output)
                output += ":"
                append(dictionary[key]!, to: &output)
            }
            output += "}"
        }
    }
}
