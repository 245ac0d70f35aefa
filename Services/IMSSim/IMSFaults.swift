import Contracts
import Foundation
import Synchronization

/// How the simulated IMS misbehaves, switchable at run time (`PUT /v1/faults`) and by flags.
struct IMSFaults: Codable, Sendable, Equatable {
    /// Share of delivery requests answered 503 without storing anything (0…1).
    var failureRate: Double = 0
    /// From then (`nil`: from now) until `outageUntil` every delivery request is answered 503.
    var outageFrom: Date?
    /// The end of the outage; `nil`: none.
    var outageUntil: Date?
    /// Added before a request is handled.
    var latencyMilliseconds: Int = 0
    /// Added after a request was stored, before the reply: a client that times out first sends
    /// again what the IMS holds already.
    var slowAcceptMilliseconds: Int = 0
    /// Meters the IMS does not know: their batches and results are rejected permanently.
    var rejectMeters: [String] = []

    func validated() throws -> Self {
        guard (0...1).contains(failureRate) else { throw IMSSimError.invalidFaults("failureRate must be within 0…1, got \(failureRate)") }
        guard latencyMilliseconds >= 0, slowAcceptMilliseconds >= 0 else { throw IMSSimError.invalidFaults("delays cannot be negative") }
        return self
    }

    /// What to do with one delivery request now: refuse it (and why), or handle it.
    func refusal(now: Date, draw: Double) -> String? {
        if let outageUntil, now < outageUntil, now >= (outageFrom ?? .distantPast) { return "the IMS is down (simulated outage until \(ContractDate.format(outageUntil)))" }
        if draw < failureRate { return "the IMS failed (simulated failure rate \(failureRate))" }
        return nil
    }
}

/// `POST /v1/faults/outage`: an outage starting now (or later) for a while.
struct IMSOutageRequest: Codable, Sendable {
    var seconds: Double
    var startsInSeconds: Double?
}

/// The current fault plan, shared by the routes.
final class IMSFaultSwitch: Sendable {
    private let current: Mutex<IMSFaults>

    init(_ faults: IMSFaults) {
        current = Mutex(faults)
    }

    var faults: IMSFaults { current.withLock { $0 } }

    func replace(with faults: IMSFaults) {
        current.withLock { $0 = faults }
    }
}
