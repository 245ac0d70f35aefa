/// Which meters misbehave and how. Each fraction picks a deterministic subset of the fleet (by
/// seed and meter index), so the same flags fault the same meters on every run.
struct FaultConfiguration: Sendable {
    enum Kind: UInt64, Sendable, CaseIterable {
        case silent = 1, garbage, drop, reset, refuse, drift, slowBaud, staleCounter
    }

    /// Round trip added to every exchange: the meter acts on a request as if it arrived after
    /// half of it, and the answer leaves after all of it. Default: 0.
    var latency: Duration = .zero
    /// Random extra delay, up to this. Default: 0.
    var jitter: Duration = .zero
    /// Meters that accept connections but never answer. Default: 0.
    var silentFraction = 0.0
    /// Meters that answer with random bytes. Default: 0.
    var garbageFraction = 0.0
    /// Meters that drop every second response. Default: 0.
    var dropFraction = 0.0
    /// Meters that close the connection halfway through their second response. Default: 0.
    var resetFraction = 0.0
    /// Meters that refuse associations. Default: 0.
    var refuseFraction = 0.0
    /// Clock offset of the drifting meters. Default: 0.
    var clockDrift: Duration = .zero
    /// Meters whose clock is `clockDrift` off. Default: 1 (all, when a drift is given).
    var clockDriftFraction = 1.0
    /// Serial meters that transmit at this rate instead of the line's (a UART slower than
    /// announced). Default: none.
    var slowBaudRate: Int?
    /// Serial meters with the slow rate. Default: 1 (all, when a rate is given).
    var slowBaudFraction = 1.0
    /// Meters whose invocation counter object reports a stale (lower) value. Default: 0.
    var staleCounterFraction = 0.0

    func fraction(_ kind: Kind) -> Double {
        switch kind {
        case .silent: silentFraction
        case .garbage: garbageFraction
        case .drop: dropFraction
        case .reset: resetFraction
        case .refuse: refuseFraction
        case .drift: clockDrift == .zero ? 0 : clockDriftFraction
        case .slowBaud: slowBaudRate == nil ? 0 : slowBaudFraction
        case .staleCounter: staleCounterFraction
        }
    }

    /// Whether meter `index` has fault `kind`.
    func applies(_ kind: Kind, toMeter index: Int, seed: UInt64) -> Bool {
        let fraction = fraction(kind)
        guard fraction > 0 else { return false }
        guard fraction < 1 else { return true }
        // SplitMix64 of (seed, index, kind): a uniform, reproducible draw per meter and fault.
        var z = seed &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15 &+ kind.rawValue &* 0xD1B5_4A32_D192_ED03
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Double(z >> 11) / Double(1 << 53) < fraction
    }
}

/// The faults of one meter, switchable at run time (refusing associations lives in the
/// meter itself: `SimulatedMeter.refusesAssociation`).
struct MeterFaults: Sendable, Hashable {
    var silent = false
    var garbage = false
    var drop = false
    var reset = false
    /// Serial lines: the meter transmits at this rate. Default: the line's rate.
    var slowBaudRate: Int?

    init(silent: Bool = false, garbage: Bool = false, drop: Bool = false, reset: Bool = false, slowBaudRate: Int? = nil) {
        self.silent = silent
        self.garbage = garbage
        self.drop = drop
        self.reset = reset
        self.slowBaudRate = slowBaudRate
    }

    /// The faults `configuration` gives meter `index`.
    init(_ configuration: FaultConfiguration, meter index: Int, seed: UInt64) {
        self.init(silent: configuration.applies(.silent, toMeter: index, seed: seed),
                  garbage: configuration.applies(.garbage, toMeter: index, seed: seed),
                  drop: configuration.applies(.drop, toMeter: index, seed: seed),
                  reset: configuration.applies(.reset, toMeter: index, seed: seed),
                  slowBaudRate: configuration.applies(.slowBaud, toMeter: index, seed: seed) ? configuration.slowBaudRate : nil)
    }
}
