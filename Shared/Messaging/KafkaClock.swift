/// The injected `Clock` of a Kafka client, reduced to what the client asks of it, so the types
/// holding it stay non-generic. Tests pass a manual clock and decide when intervals elapse.
struct KafkaClock: Sendable {
    /// Time on the clock since this value was made.
    let elapsed: @Sendable () -> Duration
    /// Suspends for `duration` on the clock.
    let sleep: @Sendable (Duration) async throws -> Void

    init<C: Clock<Duration>>(_ clock: C) {
        let origin = clock.now
        elapsed = { origin.duration(to: clock.now) }
        sleep = { try await clock.sleep(for: $0) }
    }
}
