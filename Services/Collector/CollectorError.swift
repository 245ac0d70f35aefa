import Contracts
import DLMSClient

/// Why a task (or one of its actions) did not succeed: a stable code for `task-result/v1`
/// (`meter.timeout`, `association.refused`, …), a human reason, the session step, and whether
/// running the task again may help.
struct CollectorError: Error, Hashable, CustomStringConvertible {
    struct Code: Hashable, Sendable, CustomStringConvertible {
        let rawValue: String
        var description: String { rawValue }

        // Tasks the collector cannot follow.
        static let taskMalformed = Code(rawValue: "task.malformed")
        static let taskUnsupportedVersion = Code(rawValue: "task.unsupported-version")
        static let taskInvalid = Code(rawValue: "task.invalid")
        static let taskExpired = Code(rawValue: "task.expired")
        static let taskUnsupported = Code(rawValue: "task.unsupported")
        static let keysUnavailable = Code(rawValue: "keys.unavailable")
        static let keysInvalid = Code(rawValue: "keys.invalid")
        // The meter and the line (from DLMSClientError).
        static let meterUnreachable = Code(rawValue: "meter.unreachable")
        static let meterTimeout = Code(rawValue: "meter.timeout")
        static let connectionClosed = Code(rawValue: "meter.connection-closed")
        static let linkFailed = Code(rawValue: "meter.link-failed")
        static let malformedResponse = Code(rawValue: "meter.malformed-response")
        /// More bytes in blocks, or more values once decoded, than the meter's profile allows.
        static let responseTooLarge = Code(rawValue: "meter.response-too-large")
        static let unexpectedResponse = Code(rawValue: "meter.unexpected-response")
        static let associationRefused = Code(rawValue: "association.refused")
        static let objectUnavailable = Code(rawValue: "object.unavailable")
        static let actionFailed = Code(rawValue: "action.failed")
        static let serviceError = Code(rawValue: "meter.service-error")
        static let securityFailed = Code(rawValue: "security.failed")
        static let cancelled = Code(rawValue: "task.cancelled")
        /// Supply state read back differs from the target after acting.
        static let supplyStateNotReached = Code(rawValue: "supply.not-reached")
        static let clockNotSynchronized = Code(rawValue: "clock.not-synchronized")
    }

    let code: Code
    let reason: String
    let retriable: Bool
    /// The session step (`connect`, `associate`, `get 1.0.1.8.0.255`), where one applies.
    var step: String?

    var description: String { "\(code)\(step.map { " in \($0)" } ?? ""): \(reason)" }

    static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code && lhs.step == rhs.step }
    func hash(into hasher: inout Hasher) { hasher.combine(code); hasher.combine(step) }

    static func invalidTask(_ field: String, _ reason: String) -> Self {
        Self(code: .taskInvalid, reason: "\(field): \(reason)", retriable: false, step: "plan")
    }

    static func unsupported(_ reason: String) -> Self { Self(code: .taskUnsupported, reason: reason, retriable: false, step: "plan") }
    static func keysUnavailable(_ reason: String) -> Self { Self(code: .keysUnavailable, reason: reason, retriable: false, step: "plan") }
    static func keysInvalid(_ reason: String) -> Self { Self(code: .keysInvalid, reason: reason, retriable: false, step: "plan") }

    /// Any error of a session as a task failure.
    static func classify(_ error: any Error, action: String?) -> Self {
        switch error {
        case let error as CollectorError: error
        case let error as DLMSClientError: CollectorError(error, action: action)
        case is CancellationError: CollectorError(code: .cancelled, reason: "the collector stopped during the session", retriable: true, step: action)
        default: CollectorError(code: .serviceError, reason: "\(error)", retriable: true, step: action)
        }
    }

    var failure: TaskResult.Failure { TaskResult.Failure(code: code.rawValue, reason: reason, retriable: retriable, step: step) }
}

extension CollectorError {
    /// A session error as a task failure, with `action` naming what the task was doing.
    init(_ error: DLMSClientError, action: String?) {
        let code: Code = switch error.code {
        case .connectFailed: .meterUnreachable
        case .timeout: .meterTimeout
        case .connectionClosed: .connectionClosed
        case .linkFailed: .linkFailed
        case .malformedResponse: .malformedResponse
        case .responseTooLarge: .responseTooLarge
        case .unexpectedResponse: .unexpectedResponse
        case .associationRejected: .associationRefused
        case .dataAccessFailed: .objectUnavailable
        case .actionFailed: .actionFailed
        case .securityFailed: .securityFailed
        case .cancelled: .cancelled
        case .invalidArgument: .taskInvalid
        default: .serviceError
        }
        let step = "\(error.step)"
        self.init(code: code, reason: error.reason, retriable: error.isRetriable,
                  step: action.map { step == "get" || step == "set" || step == "action" ? $0 : "\(step) (\($0))" } ?? step)
    }
}
