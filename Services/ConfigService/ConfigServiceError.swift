import Contracts

/// Errors of the config-service, each with a code (and the HTTP status the API answers with).
struct ConfigServiceError: Error, CustomStringConvertible {
    struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Kind: String { case invalidDocument, conflict, notFound, noMasterKey, storeFailed, invalidRequest, limitReached }
        fileprivate let kind: Kind
        /// The document (or partial update) has problems; nothing changed.
        static let invalidDocument = Code(kind: .invalidDocument)
        /// Another writer got there first (the expected active version is not active any more).
        static let conflict = Code(kind: .conflict)
        /// No such version, token or command.
        static let notFound = Code(kind: .notFound)
        /// Secrets were sent but the service has no master key to seal them.
        static let noMasterKey = Code(kind: .noMasterKey)
        /// The database could not do what the request needed; nothing was decided.
        static let storeFailed = Code(kind: .storeFailed)
        /// A request the API cannot act on (bad parameter, bad state).
        static let invalidRequest = Code(kind: .invalidRequest)
        /// A guard said no for now (the per-hour disconnect limit).
        static let limitReached = Code(kind: .limitReached)
        var description: String { kind.rawValue }
    }

    let code: Code
    let reason: String
    var problems: [ConfigurationProblem] = []

    var description: String { "\(code): \(reason)" }

    static func invalidDocument(_ problems: [ConfigurationProblem]) -> Self {
        Self(code: .invalidDocument, reason: "the configuration has \(problems.count) problem(s); nothing was changed", problems: problems)
    }
    static func conflict(_ reason: String) -> Self { Self(code: .conflict, reason: reason) }
    static func notFound(_ reason: String) -> Self { Self(code: .notFound, reason: reason) }
    static func noMasterKey(_ reason: String) -> Self { Self(code: .noMasterKey, reason: reason) }
    static func storeFailed(_ reason: String) -> Self { Self(code: .storeFailed, reason: reason) }
    static func invalidRequest(_ reason: String) -> Self { Self(code: .invalidRequest, reason: reason) }
    static func limitReached(_ reason: String) -> Self { Self(code: .limitReached, reason: reason) }
}
