/// Raw octets carried by a protocol field (system titles, authentication values, block data).
/// Prints and serialises as hexadecimal.
public struct DLMSBytes: Hashable, Sendable, Codable, ExpressibleByArrayLiteral, CustomStringConvertible {
    public var bytes: [UInt8]

    public init(_ bytes: some Sequence<UInt8>) { self.bytes = Array(bytes) }
    public init(arrayLiteral elements: UInt8...) { self.bytes = elements }

    public var count: Int { bytes.count }
    public var isEmpty: Bool { bytes.isEmpty }
    public var hex: String { Hex.encode(bytes) }
    public var description: String { hex }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        self.bytes = try Hex.decode(capture: text)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(hex)
    }
}
