/// The uploader's view of the IMS's health (pure; times are passed in).
///
/// Closed: requests go. After `failureThreshold` failures in a row it opens: nothing goes for a
/// cool-down. Then it is half-open: one request goes as a probe while the others wait; its
/// success closes the breaker, its failure opens it again for twice the cool-down (at most
/// `maximumCooldown`). An IMS that is down is thus asked once per cool-down, not hammered.
struct CircuitBreaker<Instant: InstantProtocol>: Sendable where Instant.Duration == Duration {
    enum State: Equatable, Sendable {
        case closed(failures: Int)
        case open(until: Instant, cooldown: Duration)
        /// `probing`: the probe is out; others wait.
        case halfOpen(probing: Bool, cooldown: Duration)

        /// For metrics: 0 closed, 1 half-open, 2 open.
        var gauge: Int {
            switch self {
            case .closed: 0
            case .halfOpen: 1
            case .open: 2
            }
        }

        var name: String {
            switch self {
            case .closed: "closed"
            case .halfOpen: "half-open"
            case .open: "open"
            }
        }
    }

    /// What a request may do now.
    enum Admission: Equatable, Sendable {
        case proceed
        /// Ask again at (or after) this instant.
        case waitUntil(Instant)
        /// Ask again after a short while: the half-open probe is out.
        case waitForProbe
    }

    var failureThreshold: Int
    var initialCooldown: Duration
    var maximumCooldown: Duration
    private(set) var state: State = .closed(failures: 0)

    init(failureThreshold: Int = 5, initialCooldown: Duration = .seconds(2), maximumCooldown: Duration = .seconds(30)) {
        self.failureThreshold = max(1, failureThreshold)
        self.initialCooldown = initialCooldown
        self.maximumCooldown = max(initialCooldown, maximumCooldown)
    }

    mutating func admit(now: Instant) -> Admission {
        switch state {
        case .closed:
            return .proceed
        case .open(let until, let cooldown):
            guard now >= until else { return .waitUntil(until) }
            state = .halfOpen(probing: true, cooldown: cooldown)
            return .proceed
        case .halfOpen(let probing, let cooldown):
            if probing { return .waitForProbe }
            state = .halfOpen(probing: true, cooldown: cooldown)
            return .proceed
        }
    }

    /// The IMS answered (any decision, 2xx or a permanent 4xx): it is up.
    mutating func recordSuccess() {
        state = .closed(failures: 0)
    }

    /// The IMS did not answer usefully (connection refused, timeout, 5xx, 429).
    mutating func recordFailure(now: Instant) {
        switch state {
        case .closed(let failures):
            if failures + 1 >= failureThreshold {
                state = .open(until: now.advanced(by: initialCooldown), cooldown: initialCooldown)
            } else {
                state = .closed(failures: failures + 1)
            }
        case .halfOpen(_, let cooldown):
            let next = min(cooldown * 2, maximumCooldown)
            state = .open(until: now.advanced(by: next), cooldown: next)
        case .open:
            // A request admitted before the breaker opened failed too: it stays open as it is.
            break
        }
    }
}

/// Exponential backoff with full jitter: attempt n waits a random share of
/// min(initial × 2ⁿ⁻¹, maximum), so retries of many uploaders spread instead of marching together.
struct RetryBackoff: Sendable {
    var initial: Duration = .milliseconds(200)
    var maximum: Duration = .seconds(10)

    /// - Parameter draw: a number in 0..<1 (injected in tests).
    func delay(attempt: Int, draw: Double) -> Duration {
        let exponent = min(max(attempt - 1, 0), 30)
        let ceiling = min(initial * (1 << exponent), maximum)
        return ceiling * max(0, min(draw, 1))
    }
}
