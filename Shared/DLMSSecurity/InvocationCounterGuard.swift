/// Replay protection for received ciphered APDUs (Green Book 9.2.7.2.3): a counter is accepted
/// only when it is strictly greater than the last accepted one.
///
/// Check before deciphering, accept after the tag verified, so a forged APDU cannot move the
/// counter: ``DLMSCipher/unprotect(_:expectedSystemTitle:counterGuard:)`` does exactly that.
public struct InvocationCounterGuard: Hashable, Sendable, CustomStringConvertible {
    /// The last accepted counter; `nil` before the first one.
    public private(set) var lastAccepted: UInt32?

    /// - Parameter lastAccepted: a counter already seen (persisted from an earlier association).
    public init(lastAccepted: UInt32? = nil) { self.lastAccepted = lastAccepted }

    /// - Throws: `DLMSSecurityError` `.replayedCounter` unless `counter` > ``lastAccepted``.
    public func check(_ counter: UInt32) throws {
        if let lastAccepted, counter <= lastAccepted {
            throw DLMSSecurityError.replayedCounter("invocation counter \(counter) is not above the last accepted \(lastAccepted)")
        }
    }

    /// Checks `counter` and records it as the last accepted one.
    /// - Throws: `DLMSSecurityError` `.replayedCounter`; nothing changes then.
    public mutating func accept(_ counter: UInt32) throws {
        try check(counter)
        lastAccepted = counter
    }

    public var description: String { lastAccepted.map { "InvocationCounterGuard(last \($0))" } ?? "InvocationCounterGuard(none)" }
}

/// The transmit invocation counter of one key: every protected APDU uses the next value, and the
/// counter never wraps (Green Book 9.2.7.2.3: the key must be changed first).
public struct InvocationCounter: Hashable, Sendable, CustomStringConvertible {
    /// The value the next ``next()`` returns.
    public private(set) var value: UInt32
    private var exhausted = false

    /// - Parameter value: the first counter to use, e.g. the meter's frame counter object + 1.
    public init(startingAt value: UInt32) { self.value = value }

    /// Returns the current value and advances.
    /// - Throws: `DLMSSecurityError` `.counterExhausted` once 0xFFFFFFFF has been used.
    public mutating func next() throws -> UInt32 {
        guard !exhausted else { throw DLMSSecurityError.counterExhausted("invocation counter 0xFFFFFFFF used; change the key") }
        let current = value
        if value == .max { exhausted = true } else { value += 1 }
        return current
    }

    public var description: String { exhausted ? "InvocationCounter(exhausted)" : "InvocationCounter(next \(value))" }
}
