import COSEM

/// The error type of the DLMS link layers (HDLC, wrapper, IEC 62056-21): a stable, extensible
/// code, a human reason, and the source location that raised it.
///
/// It has the shape of every DLMS error (`COSEM.DLMSStackError`: equality by code, the
/// description, `underlying`); its codes are the link's own.
public struct DLMSLinkError: DLMSStackError, Sendable {
    /// What went wrong, independent of the wording of `reason`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Base: String, Hashable, Sendable {
            case truncated
            case malformedFrame
            case checksumMismatch
            case lengthLimitExceeded
            case unsupported
            case unexpectedFrame
            case sequenceError
            case timeout
            case inactivityTimeout
            case disconnectedByPeer
            case frameRejected
            case connectionClosed
            case invalidState
            case invalidParameter
            case refused
        }

        fileprivate let base: Base
        fileprivate init(_ base: Base) { self.base = base }

        /// The input ended before a complete structure was read.
        public static let truncated = Code(.truncated)
        /// A frame, header or message does not follow its format.
        public static let malformedFrame = Code(.malformedFrame)
        /// A frame check sequence (HCS/FCS) or block check character does not match.
        public static let checksumMismatch = Code(.checksumMismatch)
        /// A length on the wire or a reassembled message exceeds a limit.
        public static let lengthLimitExceeded = Code(.lengthLimitExceeded)
        /// Well-formed input using a feature this implementation does not support.
        public static let unsupported = Code(.unsupported)
        /// The peer sent a frame that is not allowed in the current state.
        public static let unexpectedFrame = Code(.unexpectedFrame)
        /// N(S)/N(R) sequence numbers do not match the link's state variables.
        public static let sequenceError = Code(.sequenceError)
        /// The peer did not answer within the response timeout, after all retries.
        public static let timeout = Code(.timeout)
        /// The link was idle longer than the inactivity timeout.
        public static let inactivityTimeout = Code(.inactivityTimeout)
        /// The peer reported disconnected mode (HDLC DM).
        public static let disconnectedByPeer = Code(.disconnectedByPeer)
        /// The peer rejected a frame (HDLC FRMR).
        public static let frameRejected = Code(.frameRejected)
        /// The transport closed underneath the link.
        public static let connectionClosed = Code(.connectionClosed)
        /// The caller asked for something the link cannot do in its current state.
        public static let invalidState = Code(.invalidState)
        /// A configuration or negotiation parameter is outside its allowed range.
        public static let invalidParameter = Code(.invalidParameter)
        /// The device refused a password or command (IEC 62056-21 NAK after retries, `(ERROR)`, `B0`).
        public static let refused = Code(.refused)

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

    /// Whether opening the link again and repeating the exchange may succeed: timeouts, line
    /// noise, a peer that dropped the link or lost track of the sequence numbers. Malformed
    /// frames, rejected frames and unsupported features fail the same way again.
    public var isRetriable: Bool {
        switch code.base {
        case .timeout, .inactivityTimeout, .disconnectedByPeer, .connectionClosed, .checksumMismatch, .sequenceError:
            true
        default:
            false
        }
    }

    public static var typeName: String { "DLMSLinkError" }
    public var description: String { stackDescription }

    // MARK: - Factories

    public static func truncated(_ reason: String, file: String = #fileID, line: Int = #line) -> DLMSLinkError {
        DLMSLinkError(code: .truncated, reason: reason, file: file, line: line)
    }
    public static func malformedFrame(_ reason: String, file: String = #fileID, line: Int = #line) -> DLMSLinkError {
        DLMSLinkError(code: .malformedFrame, reason: reason, file: file, line: line)
    }
    public static func checksumMismatch(_ reason: String, file: String = #fileID, line: Int = #line) -> DLMSLinkError {
        DLMSLinkError(code: .checksumMismatch, reason: reason, file: file, line: line)
    }
    public static func lengthLimitExceeded(_ reason: String, file: String = #fileID, line: Int = #line) -> DLMSLinkError {
        DLMSLinkError(code: .lengthLimitExceeded, reason: reason, file: file, line: line)
    }
    public static func unsupported(_ reason: String, file: String = #fileID, line: Int = #line) -> DLMSLinkError {
        DLMSLinkError(code: .unsupported, reason: reason, file: file, line: line)
    }
    public static func unexpectedFrame(_ reason: String, file: String = #fileID, line: Int = #line) -> DLMSLinkError {
        DLMSLinkError(code: .unexpectedFrame, reason: reason, file: file, line: line)
    }
    public static func sequenceError(_ reason: String, file: String = #fileID, line: Int = #line) -> DLMSLinkError {
        DLMSLinkError(code: .sequenceError, reason: reason, file: file, line: line)
    }
    public static func timeout(_ reason: String, file: String = #fileID, line: Int = #line) -> DLMSLinkError {
        DLMSLinkError(code: .timeout, reason: reason, file: file, line: line)
    }
    public static func inactivityTimeout(_ reason: String, file: String = #fileID, line: Int = #line) -> DLMSLinkError {
        DLMSLinkError(code: .inactivityTimeout, reason: reason, file: file, line: line)
    }
    public static func disconnectedByPeer(_ reason: String, file: String = #fileID, line: Int = #line) -> DLMSLinkError {
        DLMSLinkError(code: .disconnectedByPeer, reason: reason, file: file, line: line)
    }
    public static func frameRejected(_ reason: String, file: String = #fileID, line: Int = #line) -> DLMSLinkError {
        DLMSLinkError(code: .frameRejected, reason: reason, file: file, line: line)
    }
    public static func connectionClosed(_ reason: String, file: String = #fileID, line: Int = #line) -> DLMSLinkError {
        DLMSLinkError(code: .connectionClosed, reason: reason, file: file, line: line)
    }
    public static func invalidState(_ reason: String, file: String = #fileID, line: Int = #line) -> DLMSLinkError {
        DLMSLinkError(code: .invalidState, reason: reason, file: file, line: line)
    }
    public static func refused(_ reason: String, file: String = #fileID, line: Int = #line) -> DLMSLinkError {
        DLMSLinkError(code: .refused, reason: reason, file: file, line: line)
    }
    public static func invalidParameter(_ reason: String, file: String = #fileID, line: Int = #line) -> DLMSLinkError {
        DLMSLinkError(code: .invalidParameter, reason: reason, file: file, line: line)
    }
}
