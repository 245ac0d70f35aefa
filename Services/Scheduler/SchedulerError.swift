/// Errors of the scheduler, each with a code.
struct SchedulerError: Error, CustomStringConvertible {
    struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Kind: String { case keysUnavailable, noActiveConfiguration, unknownMeter, storeFailed, sendFailed }
        fileprivate let kind: Kind
        /// A meter's secrets cannot be put into a task: no master key, another master key, a box that does not open.
        static let keysUnavailable = Code(kind: .keysUnavailable)
        /// No configuration version is active yet: nothing to schedule.
        static let noActiveConfiguration = Code(kind: .noActiveConfiguration)
        /// A command names a meter the active configuration does not have.
        static let unknownMeter = Code(kind: .unknownMeter)
        /// The database could not record or read what the scheduler needs.
        static let storeFailed = Code(kind: .storeFailed)
        /// Kafka did not accept tasks; they are sent again at the next tick.
        static let sendFailed = Code(kind: .sendFailed)
        var description: String { kind.rawValue }
    }

    let code: Code
    let reason: String

    var description: String { "\(code): \(reason)" }

    static func keysUnavailable(_ reason: String) -> Self { Self(code: .keysUnavailable, reason: reason) }
    static func noActiveConfiguration(_ reason: String) -> Self { Self(code: .noActiveConfiguration, reason: reason) }
    static func unknownMeter(_ reason: String) -> Self { Self(code: .unknownMeter, reason: reason) }
    static func storeFailed(_ reason: String) -> Self { Self(code: .storeFailed, reason: reason) }
    static func sendFailed(_ reason: String) -> Self { Self(code: .sendFailed, reason: reason) }
}
