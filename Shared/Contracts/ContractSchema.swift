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
    /// The `schema` value this build writes, e.g. `collection-task/v1`.
    public static var currentSchema: String { "\(schemaName)/v\(currentMajorVersion)" }
}

/// Encodes and decodes contracts as JSON, checking the `schema` field before anything else.
public enum ContractCoder {
    public static func encode<Message: VersionedContract>(_ message: Message) throws -> [UInt8] {
        Array(try makeEncoder().encode(message))
    }

    /// Decodes `Message`, refusing other contracts and unknown major versions.
    /// - Throws: `ContractError` with `.malformed`, `.missingSchema`, `.wrongSchema` or `.unsupportedVersion`.
    public static func decode<Message: VersionedContract>(_ type: Message.Type, from bytes: some Collection<UInt8>) throws -> Message {
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

    static func makeEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(ContractDate.format(date))
        }
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }

    static func makeDecoder() -> JSONDecoder {
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
enum ContractDate {
    static func format(_ date: Date) -> String {
        let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt)
        return date.formatted(style)
    }

    static func parse(_ text: String) -> Date? {
        if let date = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text) { return date }
        return try? Date.ISO8601FormatStyle().parse(text)
    }
}
