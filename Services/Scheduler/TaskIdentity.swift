import Crypto
import Foundation

/// Deterministic task ids: a UUID (version 8, RFC 9562) from the SHA-256 of what the task
/// serves, so a task emitted twice (a restarted or a second scheduler) carries the same id and
/// the ledger, the collectors and the IMS recognise it.
enum TaskIdentity {
    /// The task of `meter` for a schedule slot.
    static func scheduled(schedule: String, slot: Date, meter: String) -> UUID {
        uuid("scheduled\u{0}\(schedule)\u{0}\(Int64(slot.timeIntervalSince1970))\u{0}\(meter)")
    }

    /// The one task of a command.
    static func command(_ commandID: UUID) -> UUID {
        uuid("command\u{0}\(commandID.uuidString.lowercased())")
    }

    /// A gap-recovery read of one range, in one attempt (`attempt` changes when a hole is tried again).
    static func gap(meter: String, profile: String, from: Date, to: Date, attempt: Int64) -> UUID {
        uuid("gap\u{0}\(meter)\u{0}\(profile)\u{0}\(Int64(from.timeIntervalSince1970))\u{0}\(Int64(to.timeIntervalSince1970))\u{0}\(attempt)")
    }

    static func uuid(_ name: String) -> UUID {
        var bytes = Array(SHA256.hash(data: Array(name.utf8)).prefix(16))
        bytes[6] = (bytes[6] & 0x0F) | 0x80  // version 8
        bytes[8] = (bytes[8] & 0x3F) | 0x80  // RFC 9562 variant
        return UUID(uuid: (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                           bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
    }
}
