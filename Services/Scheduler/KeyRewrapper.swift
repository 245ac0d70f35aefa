import COSEM
import Contracts
import DLMSSecurity
import Foundation

/// Turns a meter's sealed secrets (AES-GCM boxes in the configuration, bound to meter and key
/// name) into the wrapped secrets a task carries (RFC 3394 under the same master key, which the
/// collectors hold). The secret is in the clear only inside this function, never logged.
/// Wrapping is deterministic, so a re-emitted task has the same bytes.
struct KeyRewrapper: Sendable {
    /// The current key wraps for the collectors; earlier keys (during a rotation) open what they sealed.
    let masterKeys: MasterKeyRing?

    /// - Throws: ``SchedulerError`` `.keysUnavailable` naming the meter and key (never the secret).
    func taskKeys(meterID: String, sealed: ConfigurationDocument.Meter.Keys?) throws -> MeterAccess.Keys? {
        guard let sealed, !sealed.all.isEmpty else { return nil }
        guard let masterKeys else {
            throw SchedulerError.keysUnavailable("meter \(meterID) has secrets but the scheduler has no master key (HES_MASTER_KEY_FILE) to put them into its tasks")
        }
        let masterKey = masterKeys.current
        func wrap(_ secret: ConfiguredSecret?, name: String) throws -> WrappedSecret? {
            guard let secret else { return nil }
            let plain: [UInt8]
            switch secret {
            case .sealed(let keyID, let box):
                guard let sealingKey = masterKeys.key(id: keyID) else {
                    throw SchedulerError.keysUnavailable("meter \(meterID) \(name) is sealed with master key '\(keyID)', the scheduler holds \(masterKeys.ids.map { "'\($0)'" }.joined(separator: ", "))")
                }
                guard let data = Data(base64Encoded: box), let opened = try? sealingKey.open(Array(data), context: "\(meterID)/\(name)") else {
                    throw SchedulerError.keysUnavailable("meter \(meterID) \(name) does not open with master key '\(keyID)'")
                }
                plain = opened
            case .plain(let text):
                plain = ConfiguredSecret.bytes(ofPlain: text, name: name)
            case .redacted:
                throw SchedulerError.keysUnavailable("meter \(meterID) \(name) is redacted in the active configuration")
            }
            do {
                let wrapped: [UInt8] = name == "password"
                    ? try WrappedDLMSSecret(wrapping: DLMSSecret(bytes: plain), with: masterKey).wrapped
                    : try WrappedDLMSKey(wrapping: DLMSKey(bytes: plain), with: masterKey).wrapped
                return WrappedSecret(masterKeyID: masterKey.id, wrapped: Hex.encode(wrapped))
            } catch {
                throw SchedulerError.keysUnavailable("meter \(meterID) \(name) cannot be wrapped: \(error)")
            }
        }
        return MeterAccess.Keys(password: try wrap(sealed.password, name: "password"),
                                blockCipherKey: try wrap(sealed.blockCipherKey, name: "blockCipherKey"),
                                authenticationKey: try wrap(sealed.authenticationKey, name: "authenticationKey"))
    }
}
