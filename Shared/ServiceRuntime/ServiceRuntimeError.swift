/// Errors of the process runtime (settings, admin server).
public struct ServiceRuntimeError: Error, Hashable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Kind: String { case adminBindFailed, invalidSetting }
        private let kind: Kind
        public static let adminBindFailed = Code(kind: .adminBindFailed)
        public static let invalidSetting = Code(kind: .invalidSetting)
        public var description: String { kind.rawValue }
    }

    public let code: Code
    public let reason: String
    public let file: String
    public let line: Int

    public var description: String { "\(code): \(reason)" }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    static func adminBindFailed(host: String, port: Int, underlying: any Error, server: String = "the admin server", file: String = #fileID, line: Int = #line) -> Self {
        Self(code: .adminBindFailed, reason: "cannot listen on \(host):\(port) for \(server): \(underlying)", file: file, line: line)
    }

    public static func invalidSetting(_ reason: String, file: String = #fileID, line: Int = #line) -> Self {
        Self(code: .invalidSetting, reason: reason, file: file, line: line)
    }
}
