/// The shape every error type of the DLMS stack shares (`DLMSError`, `DLMSLinkError`,
/// `DLMSSecurityError`, `DLMSClientError`): a stable code, a human reason, the source location
/// that raised it, whether repeating may succeed, and the error it wraps. A module declares its
/// codes and factories; equality (by code), hashing, the description's text
/// (``stackDescription``) and `underlying` come from here.
///
/// Callers decide retries with ``isRetriable`` of the type, never from the text of `reason`.
public protocol DLMSStackError: Error, Hashable, CustomStringConvertible {
    associatedtype Code: Hashable, Sendable, CustomStringConvertible
    /// What went wrong, independent of the wording of `reason`.
    var code: Code { get }
    /// For humans and logs.
    var reason: String { get }
    var file: String { get }
    var line: Int { get }
    /// Whether repeating the same exchange (or session) may succeed.
    var isRetriable: Bool { get }
    /// The error of the layer below that this one wraps, if any.
    var underlying: (any Error)? { get }
    /// The type's name in descriptions, e.g. `DLMSLinkError`.
    static var typeName: String { get }
}

extension DLMSStackError {
    public var underlying: (any Error)? { nil }
    /// `<TypeName>.<code>: <reason> (<file>:<line>)`: what each type's `description` returns (declared
    /// in the type, so modules that do not import COSEM see it).
    public var stackDescription: String { "\(Self.typeName).\(code): \(reason) (\(file):\(line))" }
    /// Two errors are equal when their codes are equal; `reason`, `file` and `line` are detail.
    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}

/// The one error type of the DLMS stack: a stable, extensible code, a human reason, and the
/// source location that raised it.
///
/// Meter-reported outcomes (data-access-result, action-result) are values, not errors; this
/// type is for malformed input, protocol violations and transport failures.
public struct DLMSError: DLMSStackError, Sendable {
    /// What went wrong, independent of the wording of `reason`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Base: String, Hashable, Sendable {
            case truncated
            case lengthLimitExceeded
            case nestingLimitExceeded
            case unexpectedTag
            case invalidValue
            case invalidOBISCode
            case unsupported
            case trailingBytes
            case timeout
            case connectionClosed
            case associationRejected
            case accessDenied
            case protocolViolation
        }

        fileprivate let base: Base
        fileprivate init(_ base: Base) { self.base = base }

        /// The input ended before a complete value was read.
        public static let truncated = Code(.truncated)
        /// A length or element count on the wire exceeds a decoding limit or the input.
        public static let lengthLimitExceeded = Code(.lengthLimitExceeded)
        /// Structures and arrays are nested deeper than the decoding limit.
        public static let nestingLimitExceeded = Code(.nestingLimitExceeded)
        /// A tag (data type, APDU, choice) is not one this decoder accepts here.
        public static let unexpectedTag = Code(.unexpectedTag)
        /// A field holds a value outside its defined range.
        public static let invalidValue = Code(.invalidValue)
        /// A logical name could not be parsed.
        public static let invalidOBISCode = Code(.invalidOBISCode)
        /// Well-formed input that uses a feature this implementation does not support.
        public static let unsupported = Code(.unsupported)
        /// Bytes were left over after a complete value.
        public static let trailingBytes = Code(.trailingBytes)
        /// The peer did not answer in time.
        public static let timeout = Code(.timeout)
        /// The transport closed underneath an exchange.
        public static let connectionClosed = Code(.connectionClosed)
        /// The server rejected the application association.
        public static let associationRejected = Code(.associationRejected)
        /// The server refused access to an object.
        public static let accessDenied = Code(.accessDenied)
        /// The peer broke the protocol's sequencing rules.
        public static let protocolViolation = Code(.protocolViolation)

        public var description: String { base.rawValue }
    }

    public let code: Code
    public let reason: String
    public let file: String
    public let line: Int

    public init(code: Code, reason: String, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.reason = reason
        self.file = file
        self.line = line
    }

    /// Whether repeating the same exchange may succeed (timeouts and dropped connections),
    /// as opposed to input or access problems that will fail the same way again.
    public var isRetriable: Bool {
        switch code.base {
        case .timeout, .connectionClosed: true
        default: false
        }
    }

    public static var typeName: String { "DLMSError" }
    public var description: String { stackDescription }

    // MARK: - Factories

    public static func truncated(_ reason: String, file: String = #fileID, line: Int = #line) -> DLMSError {
        DLMSError(code: .truncated, reason: reason, file: file, line: line)
    }
    public static func lengthLimitExceeded(_ reason: String, file: String = #fileID, line: Int = #line) -> DLMSError {
        DLMSError(code: .lengthLimitExceeded, reason: reason, file: file, line: line)
    }
    public static func nestingLimitExceeded(_ reason: String, file: String = #fileID, line: Int = #line) -> DLMSError {
        DLMSError(code: .nestingLimitExceeded, reason: reason, file: file, line: line)
    }
    public static func unexpectedTag(_ tag: UInt8, in context: String, file: String = #fileID, line: Int = #line) -> DLMSError {
        DLMSError(code: .unexpectedTag, reason: "unexpected tag 0x\(Hex.encode(tag)) in \(context)", file: file, line: line)
    }
    public static func invalidValue(_ reason: String, file: String = #fileID, line: Int = #line) -> DLMSError {
        DLMSError(code: .invalidValue, reason: reason, file: file, line: line)
    }
    public static func invalidOBISCode(_ reason: String, file: String = #fileID, line: Int = #line) -> DLMSError {
        DLMSError(code: .invalidOBISCode, reason: reason, file: file, line: line)
    }
    public static func unsupported(_ reason: String, file: String = #fileID, line: Int = #line) -> DLMSError {
        DLMSError(code: .unsupported, reason: reason, file: file, line: line)
    }
    public static func trailingBytes(_ count: Int, after context: String, file: String = #fileID, line: Int = #line) -> DLMSError {
        DLMSError(code: .trailingBytes, reason: "\(count) byte(s) left after \(context)", file: file, line: line)
    }
    public static func timeout(_ reason: String, file: String = #fileID, line: Int = #line) -> DLMSError {
        DLMSError(code: .timeout, reason: reason, file: file, line: line)
    }
    public static func connectionClosed(_ reason: String, file: String = #fileID, line: Int = #line) -> DLMSError {
        DLMSError(code: .connectionClosed, reason: reason, file: file, line: line)
    }
    public static func associationRejected(_ reason: String, file: String = #fileID, line: Int = #line) -> DLMSError {
        DLMSError(code: .associationRejected, reason: reason, file: file, line: line)
    }
    public static func accessDenied(_ reason: String, file: String = #fileID, line: Int = #line) -> DLMSError {
        DLMSError(code: .accessDenied, reason: reason, file: file, line: line)
    }
    public static func protocolViolation(_ reason: String, file: String = #fileID, line: Int = #line) -> DLMSError {
        DLMSError(code: .protocolViolation, reason: reason, file: file, line: line)
    }
}
