import COSEM

/// A system title (Green Book 9.2.4.8.2): 8 bytes naming a DLMS entity, typically a 3-letter
/// FLAG manufacturer id followed by 5 bytes of serial number. Public information: it travels in
/// the clear in AARQ/AARE and general-ciphering APDUs, so it prints and encodes as hex.
public struct SystemTitle: Hashable, Sendable, Codable, CustomStringConvertible {
    public let bytes: [UInt8]

    /// - Throws: `DLMSSecurityError` `.invalidArgument` unless `bytes` has exactly 8 bytes.
    public init(_ bytes: some Sequence<UInt8>) throws {
        let array = Array(bytes)
        guard array.count == 8 else {
            throw DLMSSecurityError.invalidArgument("a system title has 8 bytes, not \(array.count)")
        }
        self.bytes = array
    }

    /// - Parameter hex: 16 hexadecimal digits (either case; whitespace is ignored).
    public init(hex: String) throws {
        guard let bytes = Hex.decode(hex) else {
            throw DLMSSecurityError.invalidArgument("system title '\(hex)' is not hexadecimal")
        }
        try self.init(bytes)
    }

    /// The system title as carried in AARQ/AARE AP titles and general-ciphering APDUs.
    public init(_ bytes: DLMSBytes) throws { try self.init(bytes.bytes) }

    public var dlmsBytes: DLMSBytes { DLMSBytes(bytes) }
    public var hex: String { Hex.encode(bytes) }
    public var description: String { hex }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do {
            try self.init(hex: text)
        } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "system title must be 16 hex digits"))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(hex)
    }
}
