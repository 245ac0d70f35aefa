import Synchronization

/// Paces new connections per network segment (a GPRS cell or APN, a radio concentrator): at most
/// `rate` connections a second are opened into one segment, spaced evenly, so a schedule that
/// comes due for ten thousand meters at once does not flood a cell with connection attempts.
/// Meters without a segment are not paced.
///
/// The pure core: ``admit(segment:at:)`` books the segment's next free slot and says how long
/// the caller waits for it.
struct ConnectionPacingState<Instant: InstantProtocol> where Instant.Duration == Duration {
    /// Time between two connections into one segment.
    let spacing: Duration
    private var nextFree: [String: Instant] = [:]

    /// - Parameter rate: connections per second per segment; must be positive.
    init(rate: Double) {
        spacing = .nanoseconds(Int64((1e9 / rate).rounded()))
    }

    /// Books a slot for a connection into `segment` and returns how long to wait for it from `now`.
    mutating func admit(segment: String, at now: Instant) -> Duration {
        let slot = max(now, nextFree[segment] ?? now)
        nextFree[segment] = slot.advanced(by: spacing)
        // Segments idle for a while need no memory.
        if nextFree.count > 10_000 { nextFree = nextFree.filter { $0.value > now } }
        return now.duration(to: slot)
    }
}

/// ``ConnectionPacingState`` on the wall clock, shared by the collector's sessions.
final class ConnectionPacer: Sendable {
    private let isPacing: Bool
    private let state: Mutex<ConnectionPacingState<ContinuousClock.Instant>>

    /// - Parameter rate: connections per second per segment; 0 turns pacing off.
    init(rate: Double) {
        isPacing = rate > 0
        state = Mutex(ConnectionPacingState(rate: max(rate, 1)))
    }

    /// Waits for the segment's next slot (at once when pacing is off or there is no segment).
    func waitForSlot(segment: String?) async throws {
        guard isPacing, let segment else { return }
        let wait = state.withLock { $0.admit(segment: segment, at: .now) }
        if wait > .zero { try await Task.sleep(for: wait) }
    }
}
