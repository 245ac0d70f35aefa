import COSEM

/// The error type of DLMS security: a stable, extensible code, a human reason, and the source
/// location that raised it.
///
/// Reasons never contain key material or decrypted bytes. None of these errors is retriable: the
/// same keys, titles and counters fail the same way again. Equality (by code), the description
/// and `underlying` come from `COSEM.DLMSStackError`, the shape of every DLMS error.
public struct DLMSSecurityError: DLMSStackError, Sendable {
    /// What went wrong, independent of the wording of `reason`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Base: String, Hashable, Sendable {
            case authenticationFailed
            case replayedCounter
            case counterExhausted
            case unexpectedSystemTitle
            case policyViolation
            case invalidKey
            case invalidArgument
            case unsupportedMechanism
            case decodeFailure
        }

        fileprivate let base: Base
        fileprivate init(_ base: Base) { self.base = base }

        /// The authentication tag or HLS reply did not verify (wrong key, wrong system title,
        /// tampered bytes): nothing was decrypted.
        public static let authenticationFailed = Code(.authenticationFailed)
        /// A received invocation counter is not greater than the last accepted one.
        public static let replayedCounter = Code(.replayedCounter)
        /// The transmit invocation counter reached 0xFFFFFFFF: the keys must be changed.
        public static let counterExhausted = Code(.counterExhausted)
        /// The system title in the APDU is not the one the association expects.
        public static let unexpectedSystemTitle = Code(.unexpectedSystemTitle)
        /// The APDU is protected less than the security policy requires (or not at all).
        public static let policyViolation = Code(.policyViolation)
        /// A key or secret has the wrong length or is not hexadecimal.
        public static let invalidKey = Code(.invalidKey)
        /// A system title, challenge or other parameter is malformed.
        public static let invalidArgument = Code(.invalidArgument)
        /// A security suite, authentication mechanism or protection option this implementation does not support.
        public static let unsupportedMechanism = Code(.unsupportedMechanism)
        /// A ciphered APDU or HLS reply is malformed (too short, wrong tag inside, bad header).
        public static let decodeFailure = Code(.decodeFailure)

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

    /// Always `false`: security failures repeat with the same input.
    public var isRetriable: Bool { false }

    public static var typeName: String { "DLMSSecurityError" }
    public var description: String { stackDescription }

    // MARK: - Factories

    public static func authenticationFailed(_ reason: String, file: String = #fileID, line: Int = #line) -> DLMSSecurityError {
        DLMSSecurityError(code: .authenticationFailed, reason: reason, file: file, line: line)
    }
    public static func replayedCounter(_ reason: String, file: String = #fileID, line: Int = #line) -> DLMSSecurityError {
        DLMSSecurityError(code: .replayedCounter, reason: reason, file: file, line: line)
    }
    public static func counterExhausted(_ reason: String, file: String = #fileID, line: Int = #line) -> DLMSSecurityError {
        DLMSSecurityError(code: .counterExhausted, reason: reason, file: file, line: line)
    }
    public static func unexpectedSystemTitle(_ reason: String, file: String = #fileID, line: Int = #line) -> DLMSSecurityError {
        DLMSSecurityError(code: .unexpectedSystemTitle, reason: reason, file: file, line: line)
    }
    public static func policyViolation(_ reason: String, file: String = #fileID, line: Int = #line) -> DLMSSecurityError {
        DLMSSecurityError(code: .policyViolation, reason: reason, file: file, line: line)
    }
    public static func invalidKey(_ reason: String, file: String = #fileID, line: Int = #line) -> DLMSSecurityError {
        DLMSSecurityError(code: .invalidKey, reason: reason, file: file, line: line)
    }
    public static func invalidArgument(_ reason: String, file: String = #fileID, line: Int = #line) -> DLMSSecurityError {
        DLMSSecurityError(code: .invalidArgument, reason: reason, file: file, line: line)
    }
    public static func unsupportedMechanism(_ reason: String, file: String = #fileID, line: Int = #line) -> DLMSSecurityError {
        DLMSSecurityError(code: .unsupportedMechanism, reason: reason, file: file, line: line)
    }
    public static func decodeFailure(_ reason: String, file: String = #fileID, line: Int = #line) -> DLMSSecurityError {
        DLMSSecurityError(code: .decodeFailure, reason: reason, file: file, line: line)
    }
}

// MARK: - Helpers (internal)

/// Compares in time that depends only on the lengths, so a tag check does not reveal how many
/// leading bytes matched.
func constantTimeEquals(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for (x, y) in zip(a, b) { difference |= x ^ y }
    return difference == 0
}
