import Foundation

/// The outcome of every task, including command outcomes, published by the collector on
/// `hes.results` keyed by task id.
public struct TaskResult: VersionedContract, Hashable {
    public static let schemaName = "task-result"
    public static let supportedMajorVersions = 1...1
    public static let currentMajorVersion = 1

    public enum Outcome: String, Codable, Sendable, Hashable {
        case succeeded
        /// Some actions succeeded; `failure` says what did not.
        case partial
        case failed
        /// The deadline passed before the task could start.
        case expired
    }

    /// Why a task did not fully succeed.
    public struct Failure: Codable, Sendable, Hashable {
        /// A stable code (`meter.timeout`, `association.refused`, …).
        public var code: String
        public var reason: String
        /// Whether running the task again may help (a timeout: yes; access denied: no).
        public var retriable: Bool
        /// The session step that failed (`connect`, `associate`, `get 1.0.1.8.0.255`, …).
        public var step: String?

        public init(code: String, reason: String, retriable: Bool, step: String? = nil) {
            self.code = code
            self.reason = reason
            self.retriable = retriable
            self.step = step
        }
    }

    public var schema: String
    public var taskID: String
    public var commandID: String?
    public var region: String
    public var lineID: String
    public var meterID: String
    public var outcome: Outcome
    public var failure: Failure?
    public var startedAt: Date
    public var finishedAt: Date
    public var readingCount: Int
    /// Facts a command outcome needs (`supplyState: disconnected`, `clockOffsetSeconds: 0.12`).
    public var details: [String: String]

    public init(
        taskID: String, commandID: String? = nil, region: String, lineID: String, meterID: String,
        outcome: Outcome, failure: Failure? = nil, startedAt: Date, finishedAt: Date,
        readingCount: Int, details: [String: String] = [:]
    ) {
        self.schema = Self.currentSchema
        self.taskID = taskID
        self.commandID = commandID
        self.region = region
        self.lineID = lineID
        self.meterID = meterID
        self.outcome = outcome
        self.failure = failure
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.readingCount = readingCount
        self.details = details
    }
}
