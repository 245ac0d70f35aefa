// Simulated meters: deterministic COSEM objects and the server side of an association.
import COSEM
import DLMSSecurity
import Foundation
import NIOConcurrencyHelpers

/// The state of a disconnect control object (Blue Book 4.5.8, class 70 `control_state`).
public enum DisconnectState: UInt8, Sendable, Hashable, CustomStringConvertible {
    case disconnected = 0
    case connected = 1
    case readyForReconnection = 2

    public var description: String {
        switch self {
        case .disconnected: "disconnected"
        case .connected: "connected"
        case .readyForReconnection: "ready-for-reconnection"
        }
    }
}

/// One simulated meter: its configuration, a few derived numbers and its small mutable state
/// (clock adjustment, disconnector, session count). Register values and profile entries are
/// computed from (seed, serial number, meter time) when read; the COSEM object model is shared
/// by all meters. A meter is a few hundred bytes, so a process can hold tens of thousands.
public final class SimulatedMeter: Sendable {
    public struct Configuration: Sendable, Hashable {
        /// The serial number, e.g. `SIM00000001`.
        public var serialNumber: String
        /// Values are deterministic functions of (seed, serialNumber, time).
        public var seed: UInt64
        /// The LLS secret of the reading (17) and management (1) clients. Default: `12345678`.
        public var lowLevelPassword: [UInt8]
        /// Fault: the meter clock runs this far ahead of real time (negative: behind). Default: zero.
        public var clockOffset: Duration
        /// Fault: every AARQ is answered rejected-permanent. Default: false.
        public var refusesAssociation: Bool
        /// The largest APDU the meter receives and sends. Default: 1024 (like Gurux).
        public var maximumServerPDUSize: UInt16
        /// The disconnect control's initial `control_mode` (0…6). Default: 1 (remote reconnection connects directly).
        public var disconnectControlMode: UInt8
        /// The disconnect control's initial state. Default: connected.
        public var initialDisconnectState: DisconnectState
        /// Quirk: whether an RLRQ is answered; meters of some families ignore it and are only
        /// released by DISC or by closing the connection. Default: true.
        public var answersReleaseRequest: Bool
        /// Keys and secret for ciphered and HLS associations. Default: `nil`, only none and LLS.
        public var security: MeterSecurity?
        /// Fault: the invocation counter object (0.0.43.1.0.255) reports half the last accepted
        /// counter, so a client starting above it is refused as a replay. Default: false.
        public var reportsStaleInvocationCounter: Bool
        /// Whether block-transfer-with-set is offered in the conformance block (off by default,
        /// as Gurux's server, whose AARE the simulator reproduces byte for byte). Default: false.
        public var offersSetBlockTransfer: Bool

        public init(serialNumber: String, seed: UInt64 = 0) {
            self.serialNumber = serialNumber
            self.seed = seed
            self.lowLevelPassword = Array("12345678".utf8)
            self.clockOffset = .zero
            self.refusesAssociation = false
            self.maximumServerPDUSize = 1024
            self.disconnectControlMode = 1
            self.initialDisconnectState = .connected
            self.answersReleaseRequest = true
            self.security = nil
            self.reportsStaleInvocationCounter = false
            self.offersSetBlockTransfer = false
        }

        /// Fleet member n (0-based): serialNumber "SIM%08d" of n+1, same seed. Used by meter-sim and `meter-sim expect`.
        public static func fleetMember(index: Int, seed: UInt64 = 0) -> Configuration {
            let number = String(index + 1)
            return Configuration(serialNumber: "SIM" + String(repeating: "0", count: max(0, 8 - number.count)) + number, seed: seed)
        }
    }

    struct State: Sendable {
        /// Set through SET clock.time (or clock.shift_time), on top of `clockOffset`.
        var clockAdjustment: Duration = .zero
        var disconnectState: DisconnectState
        var controlMode: UInt8
        var sessionCount = 0
        /// remote_disconnect / remote_reconnect invocations the meter executed (whatever their
        /// result): how often a command really reached the disconnector.
        var disconnectActions = 0
        var reconnectActions = 0
        var refusesAssociation: Bool
        /// Replay protection of ciphered client APDUs, across associations.
        var clientCounterGuard = InvocationCounterGuard()
        /// The meter's own transmit invocation counter.
        var serverInvocationCounter: UInt32 = 0
        /// Keys replaced through the security setup's key_agreement, over `configuration.security`'s.
        var agreedKeys: [DLMSKeyID: DLMSKey] = [:]
    }

    public let configuration: Configuration
    let model: EnergyModel
    let state: NIOLockedValueBox<State>

    public init(configuration: Configuration) {
        self.configuration = configuration
        self.model = EnergyModel(seed: configuration.seed, serialNumber: configuration.serialNumber)
        self.state = NIOLockedValueBox(State(disconnectState: configuration.initialDisconnectState, controlMode: configuration.disconnectControlMode,
                                                     refusesAssociation: configuration.refusesAssociation))
    }

    /// The disconnector's state (class 70 `control_state`).
    public var disconnectState: DisconnectState { state.withLockedValue { $0.disconnectState } }

    /// Whether AARQs are rejected: `configuration.refusesAssociation` at start, switchable at run time.
    public var refusesAssociation: Bool {
        get { state.withLockedValue { $0.refusesAssociation } }
        set { state.withLockedValue { $0.refusesAssociation = newValue } }
    }

    /// Associations opened so far.
    public var sessionCount: Int { state.withLockedValue { $0.sessionCount } }

    /// remote_disconnect invocations executed so far (DESIGN.md invariant 6 is checked against it).
    public var disconnectActions: Int { state.withLockedValue { $0.disconnectActions } }

    /// remote_reconnect invocations executed so far.
    public var reconnectActions: Int { state.withLockedValue { $0.reconnectActions } }

    /// How far the meter clock is from real time: `clockOffset` plus adjustments made by clients.
    public var effectiveClockOffset: Duration { configuration.clockOffset + state.withLockedValue { $0.clockAdjustment } }

    /// The meter's clock at real time `now`.
    public func meterTime(at now: Date) -> Date { now.addingTimeInterval(effectiveClockOffset.timeInterval) }

    /// Expected load-profile rows (1.0.99.1.0.255) whose capture time t satisfies from <= t <= to.
    /// Row = [clock, +A Wh, -A Wh, status] as DLMSData. O(rows), nothing cached: callers bound the range.
    public func expectedProfileRows(from: Date, to: Date) -> [[DLMSData]] {
        let lo = Int64(from.timeIntervalSince1970.rounded(.up)), hi = Int64(to.timeIntervalSince1970.rounded(.down))
        guard lo <= hi else { return [] }
        let period = SimulatedProfile.load.capturePeriod
        let first = lo.ceilDivided(by: period), last = hi.floorDivided(by: period)
        guard first <= last else { return [] }
        return (first...last).map { SimulatedProfile.load.row(model: model, time: $0 * period) }
    }

    /// The expected raw value of register `obis` (1.0.1.8.0.255 or 1.0.2.8.0.255, plus tariff
    /// registers 1.0.1.8.1.255 and 1.0.1.8.2.255) at meter time `at`, as double-long-unsigned Wh.
    public func expectedRegisterValue(_ obis: OBISCode, at: Date) -> DLMSData? {
        guard let register = EnergyRegister(obis: obis) else { return nil }
        return .uint32(model.value(register, at: Int64(at.timeIntervalSince1970.rounded(.down))))
    }

    /// The expected daily billing rows (1.0.98.1.0.255) captured at midnights t with from <= t <= to.
    /// Row = [clock, +A, +A T1, +A T2, -A].
    public func expectedDailyRows(from: Date, to: Date) -> [[DLMSData]] {
        let lo = Int64(from.timeIntervalSince1970.rounded(.up)), hi = Int64(to.timeIntervalSince1970.rounded(.down))
        let first = lo.ceilDivided(by: 86_400), last = hi.floorDivided(by: 86_400)
        guard first <= last else { return [] }
        return (first...last).map { SimulatedProfile.daily.row(model: model, time: $0 * 86_400) }
    }

    /// Simulates the customer pressing the reconnect button (class 70 transition e: ready → connected).
    public func manualReconnect() {
        state.withLockedValue { if $0.disconnectState == .readyForReconnection { $0.disconnectState = .connected } }
    }

    func openedSession() { state.withLockedValue { $0.sessionCount += 1 } }
}

extension Duration {
    var timeInterval: TimeInterval { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
