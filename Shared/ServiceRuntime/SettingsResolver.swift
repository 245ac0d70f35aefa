import ArgumentParser
import Foundation
import Logging
import Observability

/// Resolves one setting from its three sources, in order: command-line flag, environment
/// variable, settings file. The first source that has a value wins.
///
/// The settings file holds `HES_NAME=value` lines (the same names as the environment, `#` starts a
/// comment, values may be quoted), the format of systemd's `EnvironmentFile` and compose's
/// `env_file`, so one file serves all three ways of running a service.
public struct SettingsResolver: Sendable {
    public let environment: [String: String]
    public let file: [String: String]
    public let filePath: String?

    /// - Parameters:
    ///   - environment: the process environment (injected for tests).
    ///   - filePath: an optional settings file; a missing or malformed file is a usage error.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment, filePath: String? = nil) throws {
        self.environment = environment
        self.filePath = filePath
        if let filePath {
            guard let text = try? String(contentsOfFile: filePath, encoding: .utf8) else {
                throw ValidationError("cannot read settings file '\(filePath)'")
            }
            self.file = try Self.parse(text, path: filePath)
        } else {
            self.file = [:]
        }
    }

    /// Parses `KEY=value` lines. Blank lines and `#` comments are skipped; `export ` is allowed.
    static func parse(_ text: String, path: String) throws -> [String: String] {
        var values: [String: String] = [:]
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line.removeFirst("export ".count) }
            guard let equals = line.firstIndex(of: "="), equals != line.startIndex else {
                throw ValidationError("\(path):\(index + 1): expected KEY=value, found '\(line)'")
            }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            var value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = String(value.dropFirst().dropLast())
            }
            values[key] = value
        }
        return values
    }

    /// A setting's raw text and where it came from, for error messages.
    public struct Value: Sendable {
        public let text: String
        public let source: String
    }

    /// The raw value of a setting, or nil when no source has it.
    public func value(flag: String?, flagName: String, env: String) -> Value? {
        if let flag { return Value(text: flag, source: "--\(flagName)") }
        if let text = environment[env], !text.isEmpty { return Value(text: text, source: "environment \(env)") }
        if let text = file[env], let filePath { return Value(text: text, source: "\(filePath): \(env)") }
        return nil
    }

    public func string(_ flag: String?, flagName: String, env: String, default defaultValue: String) -> String {
        value(flag: flag, flagName: flagName, env: env)?.text ?? defaultValue
    }

    public func optionalString(_ flag: String?, flagName: String, env: String) -> String? {
        value(flag: flag, flagName: flagName, env: env)?.text
    }

    /// A setting that has no default: missing everywhere is a usage error naming all three places.
    public func requiredString(_ flag: String?, flagName: String, env: String) throws -> String {
        guard let value = value(flag: flag, flagName: flagName, env: env) else {
            throw ValidationError("missing setting: pass --\(flagName) or set \(env)")
        }
        return value.text
    }

    public func int(_ flag: Int?, flagName: String, env: String, default defaultValue: Int, range: ClosedRange<Int>? = nil) throws -> Int {
        let resolved: (Int, String)
        if let flag {
            resolved = (flag, "--\(flagName)")
        } else if let value = value(flag: nil, flagName: flagName, env: env) {
            guard let number = Int(value.text) else {
                throw ValidationError("\(value.source): '\(value.text)' is not a whole number")
            }
            resolved = (number, value.source)
        } else {
            return defaultValue
        }
        if let range, !range.contains(resolved.0) {
            throw ValidationError("\(resolved.1): \(resolved.0) is outside \(range.lowerBound)...\(range.upperBound)")
        }
        return resolved.0
    }

    /// A duration in seconds (`30`, `0.5`) or with a unit (`250ms`, `10s`, `5m`).
    public func duration(_ flag: String?, flagName: String, env: String, default defaultValue: Duration) throws -> Duration {
        guard let value = value(flag: flag, flagName: flagName, env: env) else { return defaultValue }
        guard let duration = Self.parseDuration(value.text) else {
            throw ValidationError("\(value.source): '\(value.text)' is not a duration (e.g. 500ms, 10s, 5m)")
        }
        return duration
    }

    static func parseDuration(_ text: String) -> Duration? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let number = Double(text.dropLast(suffix.count)), number >= 0 else { return nil }
            return .milliseconds(Int64((number * scale * 1000).rounded()))
        }
        guard let seconds = Double(text), seconds >= 0 else { return nil }
        return .milliseconds(Int64((seconds * 1000).rounded()))
    }
}
