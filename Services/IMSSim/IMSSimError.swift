/// Errors of ims-sim, each with a code.
struct IMSSimError: Error, CustomStringConvertible {
    struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Kind: String { case storeFailed, invalidFaults }
        private let kind: Kind
        /// The store could not do what a request needed (its database, its migrations).
        static let storeFailed = Code(kind: .storeFailed)
        /// A fault plan that cannot be applied (a rate outside 0…1, a negative delay).
        static let invalidFaults = Code(kind: .invalidFaults)
        var description: String { kind.rawValue }
    }

    let code: Code
    let reason: String

    var description: String { "\(code): \(reason)" }

    static func storeFailed(_ reason: String) -> Self { Self(code: .storeFailed, reason: reason) }
    static func invalidFaults(_ reason: String) -> Self { Self(code: .invalidFaults, reason: reason) }
}
