/// Errors of ims-sim, each with a code.
struct IMSSimError: Error, CustomStringConvertible {
    struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Kind: String { case storeFailed, invalidFaults, malformedRequest }
        private let kind: Kind
        /// The store could not do what a request needed (its database, its migrations).
        static let storeFailed = Code(kind: .storeFailed)
        /// A fault plan that cannot be applied (a rate outside 0…1, a negative delay).
        static let invalidFaults = Code(kind: .invalidFaults)
        /// A delivery body that is not what its route reads (not well-formed XML, not a 61968-100
        /// `RequestMessage` with `MeterReadings`): refused as a whole with 400.
        static let malformedRequest = Code(kind: .malformedRequest)
        var description: String { kind.rawValue }
    }

    let code: Code
    let reason: String

    var description: String { "\(code): \(reason)" }

    static func storeFailed(_ reason: String) -> Self { Self(code: .storeFailed, reason: reason) }
    static func invalidFaults(_ reason: String) -> Self { Self(code: .invalidFaults, reason: reason) }
    static func malformedRequest(_ reason: String) -> Self { Self(code: .malformedRequest, reason: reason) }
}
