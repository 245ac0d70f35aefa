/// Errors of decoding and validating messages exchanged over Kafka and with the IMS.
public struct ContractError: Error, Hashable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Kind: String { case malformed, missingSchema, wrongSchema, unsupportedVersion }
        private let kind: Kind
        /// Not JSON, or a field is missing or of the wrong type.
        public static let malformed = Code(kind: .malformed)
        /// The message has no `schema` field.
        public static let missingSchema = Code(kind: .missingSchema)
        /// The message is another contract (a `task-result` where a `reading-batch` was expected).
        public static let wrongSchema = Code(kind: .wrongSchema)
        /// A major version this build does not know: a newer producer. Never guessed at.
        public static let unsupportedVersion = Code(kind: .unsupportedVersion)
        public var description: String { kind.rawValue }
    }

    public let code: Code
    public let reason: String
    public let file: String
    public let line: Int

    public var description: String { "\(code): \(reason)" }
    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    public init(_ code: Code, _ reason: String, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.reason = reason
        self.file = file
        self.line = line
    }
}
