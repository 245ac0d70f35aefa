import COSEM
import DLMSCodec
import DLMSLink
import DLMSSecurity

/// The error type of the DLMS client session: which step failed, a stable code, a human
/// reason, the error of the layer below it came from (``underlying``), and whether repeating the
/// whole session later may succeed — decided from the codes and types, never from the text.
///
/// Two errors are equal when their codes and steps are equal; `reason`, `file` and `line` are detail.
public struct DLMSClientError: DLMSStackError, Sendable {
    /// What went wrong, independent of the wording of `reason`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Base: String, Hashable, Sendable {
            case connectFailed
            case timeout
            case connectionClosed
            case linkFailed
            case malformedResponse
            case unexpectedResponse
            case associationRejected
            case dataAccessFailed
            case actionFailed
            case serviceError
            case invalidArgument
            case cancelled
            case securityFailed
            case responseTooLarge
        }

        fileprivate let base: Base
        fileprivate init(_ base: Base) { self.base = base }

        /// The transport could not be opened (refused, unreachable, no such serial port).
        public static let connectFailed = Code(.connectFailed)
        /// The step's deadline passed without a complete answer.
        public static let timeout = Code(.timeout)
        /// The transport closed underneath the session.
        public static let connectionClosed = Code(.connectionClosed)
        /// The link layer (HDLC, wrapper) failed: DM, FRMR, sequence error, garbage.
        public static let linkFailed = Code(.linkFailed)
        /// The meter's answer could not be decoded.
        public static let malformedResponse = Code(.malformedResponse)
        /// The meter answered with something that does not fit the request.
        public static let unexpectedResponse = Code(.unexpectedResponse)
        /// The AARE rejected the association (wrong password, unknown client, …).
        public static let associationRejected = Code(.associationRejected)
        /// The meter refused a GET or SET with a data-access-result; `dataAccessResult` has it.
        public static let dataAccessFailed = Code(.dataAccessFailed)
        /// The meter refused an ACTION with an action-result; `actionResult` has it.
        public static let actionFailed = Code(.actionFailed)
        /// The meter answered with an exception-response or confirmed-service-error.
        public static let serviceError = Code(.serviceError)
        /// The caller asked for something that cannot be sent (bad range, value too large).
        public static let invalidArgument = Code(.invalidArgument)
        /// The task was cancelled.
        public static let cancelled = Code(.cancelled)
        /// Ciphering or HLS failed: a tag that does not verify, a replayed counter, a meter
        /// whose HLS reply or system title is wrong, an APDU weaker than the policy.
        public static let securityFailed = Code(.securityFailed)
        /// The meter's answer holds more than the client takes from one response: more bytes in
        /// blocks, or more elements once decoded, than the meter's profile allows
        /// (``ManufacturerProfile/maximumResponseElements``).
        public static let responseTooLarge = Code(.responseTooLarge)

        public var description: String { base.rawValue }
    }

    /// The session step that failed.
    public enum Step: String, Hashable, Sendable, CustomStringConvertible {
        case connect
        case linkSetup = "link-setup"
        case associate
        case get
        case set
        case action
        case release
        case disconnect
        public var description: String { rawValue }
    }

    /// Why the meter refused the association: the AARE's result and diagnostic.
    public struct AssociationDiagnostic: Hashable, Sendable, CustomStringConvertible {
        /// rejected-permanent or rejected-transient.
        public var result: AssociationResult
        /// Who refused (ACSE service user or provider) and why, e.g. `authentication-failure`.
        public var sourceDiagnostic: AssociateSourceDiagnostic
        /// The ConfirmedServiceError in the AARE's user-information (e.g. initiateError /
        /// deciphering-error), when the meter sent one.
        public var serviceError: ConfirmedServiceError?

        public init(result: AssociationResult, sourceDiagnostic: AssociateSourceDiagnostic, serviceError: ConfirmedServiceError? = nil) {
            self.result = result
            self.sourceDiagnostic = sourceDiagnostic
            self.serviceError = serviceError
        }

        /// The diagnostic of a refusing AARE.
        public init(_ aare: AARE) {
            var serviceError: ConfirmedServiceError?
            if case .confirmedServiceError(let error)? = aare.userInformation { serviceError = error }
            self.init(result: aare.result, sourceDiagnostic: aare.resultSourceDiagnostic, serviceError: serviceError)
        }

        /// As the AARE's `resultDescription`: `rejected-permanent (acse-service-user: authentication-failure)`.
        public var description: String {
            "\(result) (\(sourceDiagnostic))" + (serviceError.map { "; \($0)" } ?? "")
        }
    }

    public let code: Code
    public let step: Step
    public let reason: String
    /// The meter-reported result when `code` is `.dataAccessFailed`.
    public let dataAccessResult: DataAccessResult?
    /// The meter-reported result when `code` is `.actionFailed`.
    public let actionResult: ActionResult?
    /// The AARE's result and diagnostic when `code` is `.associationRejected` by the AARE.
    public let associationDiagnostic: AssociationDiagnostic?
    /// The error of the layer below this one wraps (`DLMSLinkError`, `DLMSError`,
    /// `DLMSSecurityError`, a transport's error), if any.
    public let underlying: (any Error)?
    public let file: String
    public let line: Int

    public init(code: Code, step: Step, reason: String, dataAccessResult: DataAccessResult? = nil, actionResult: ActionResult? = nil,
                associationDiagnostic: AssociationDiagnostic? = nil, underlying: (any Error)? = nil,
                file: String = #fileID, line: Int = #line) {
        self.code = code
        self.step = step
        self.reason = reason
        self.dataAccessResult = dataAccessResult
        self.actionResult = actionResult
        self.associationDiagnostic = associationDiagnostic
        self.underlying = underlying
        self.file = file
        self.line = line
    }

    /// Whether running the session again later may succeed. Timeouts, closed connections,
    /// line noise and temporary meter refusals are; a rejected password, an undefined object
    /// or a malformed answer fail the same way again.
    public var isRetriable: Bool {
        switch code.base {
        case .connectFailed, .timeout, .connectionClosed: true
        case .linkFailed: (underlying as? any DLMSStackError)?.isRetriable ?? true
        case .associationRejected: associationDiagnostic?.result == .rejectedTransient
        case .dataAccessFailed: dataAccessResult?.isRetriable ?? false
        case .actionFailed: actionResult == .temporaryFailure
        case .malformedResponse, .unexpectedResponse, .serviceError, .invalidArgument, .cancelled, .securityFailed, .responseTooLarge: false
        }
    }

    /// The same error reported for another step (the transport does not know the session's step).
    func reported(in step: Step) -> DLMSClientError {
        DLMSClientError(code: code, step: step, reason: reason, dataAccessResult: dataAccessResult, actionResult: actionResult,
                        associationDiagnostic: associationDiagnostic, underlying: underlying, file: file, line: line)
    }

    public static var typeName: String { "DLMSClientError" }
    /// As every DLMS error's, with the step: `DLMSClientError.timeout in get: … (file:line)`.
    public var description: String { "DLMSClientError.\(code) in \(step): \(reason) (\(file):\(line))" }

    public static func == (lhs: DLMSClientError, rhs: DLMSClientError) -> Bool { lhs.code == rhs.code && lhs.step == rhs.step }
    public func hash(into hasher: inout Hasher) { hasher.combine(code); hasher.combine(step) }

    // MARK: - Mapping errors of the layers below

    /// Classifies an error thrown below the session into a client error for `step`.
    static func wrapping(_ error: any Error, step: Step, file: String = #fileID, line: Int = #line) -> DLMSClientError {
        switch error {
        case let error as DLMSClientError:
            // The transport does not know the session's step; it reports `.connect`.
            guard error.step == .connect, step != .connect else { return error }
            return error.reported(in: step)
        case let error as DLMSLinkError:
            let code: Code
            switch error.code {
            case .timeout: code = .timeout
            case .connectionClosed, .inactivityTimeout: code = .connectionClosed
            // IEC 62056-21 programming mode: a refused password ends the "association"; a
            // refused command is the device denying that datum.
            case .refused: code = step == .associate ? .associationRejected : .dataAccessFailed
            default: code = .linkFailed
            }
            return DLMSClientError(code: code, step: step, reason: "\(error.code): \(error.reason)", underlying: error, file: file, line: line)
        case let error as DLMSError:
            return DLMSClientError(code: .malformedResponse, step: step, reason: "\(error.code): \(error.reason)", underlying: error, file: file, line: line)
        case let error as DLMSSecurityError:
            return DLMSClientError(code: .securityFailed, step: step, reason: "\(error.code): \(error.reason)", underlying: error, file: file, line: line)
        case let error as DLMSDataElementBudget.Exceeded:
            return DLMSClientError(code: .responseTooLarge, step: step, reason: "\(error)", underlying: error, file: file, line: line)
        case is CancellationError:
            return DLMSClientError(code: .cancelled, step: step, reason: "the task was cancelled", underlying: error, file: file, line: line)
        default:
            return DLMSClientError(code: .connectionClosed, step: step, reason: "\(error)", underlying: error, file: file, line: line)
        }
    }
}
