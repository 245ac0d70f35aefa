/// How log records are written to standard error.
public struct LogFormat: Hashable, Sendable, CustomStringConvertible {
    private enum Kind: String { case text, json }
    private let kind: Kind

    /// One human-readable line per record. Default.
    public static let text = LogFormat(kind: .text)
    /// One JSON object per line, for log shippers.
    public static let json = LogFormat(kind: .json)

    /// All formats, for help texts and validation.
    public static let all: [LogFormat] = [.text, .json]

    public init?(_ name: String) {
        guard let kind = Kind(rawValue: name.lowercased()) else { return nil }
        self.kind = kind
    }

    private init(kind: Kind) { self.kind = kind }

    public var description: String { kind.rawValue }
}
