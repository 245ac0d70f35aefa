import Contracts
import DLMSSecurity
import Foundation

/// Seals the secrets of a configuration before anything is stored (AES-GCM under the master key
/// of `HES_MASTER_KEY_FILE`, bound to meter and key name) and resolves the secrets a document
/// sends back redacted. Nothing leaves it in the clear: the read-model rebuild copies the sealed
/// boxes into `meter_secrets` as they are.
struct SecretVault: Sendable {
    /// The current key seals; earlier ones (`HES_PREVIOUS_MASTER_KEY_FILES`) open what they
    /// sealed, which ``resealed(_:)`` moves to the current key.
    let masterKeys: MasterKeyRing?

    /// The key everything new is sealed with.
    var masterKey: MasterKey? { masterKeys?.current }

    /// A redacted secret keeps the sealed secret the meter has in `base` (the version the new
    /// one is built on); without one it stays redacted, which validation reports.
    func resolveRedacted(_ document: inout ConfigurationDocument, base: ConfigurationDocument?) {
        guard document.meters.contains(where: { $0.keys?.all.contains { $0.secret == .redacted } == true }) else { return }
        var baseKeys: [String: ConfigurationDocument.Meter.Keys] = [:]
        for meter in base?.meters ?? [] where meter.keys != nil { baseKeys[meter.id] = meter.keys }
        for index in document.meters.indices {
            let meterID = document.meters[index].id
            document.meters[index].keys = document.meters[index].keys?.mapSecrets { name, secret in
                guard secret == .redacted, let previous = baseKeys[meterID]?.all.first(where: { $0.name == name })?.secret else { return secret }
                return previous
            }
        }
    }

    /// The document with every plain secret sealed. A secret equal to the one the meter has in
    /// `base` keeps its box, so an unchanged document gets the same hash and no diff.
    /// - Throws: ``ConfigServiceError`` `.noMasterKey` when secrets come and no master key is
    ///   set; `.invalidDocument` for a sealed box that does not open with the master key.
    func seal(_ document: ConfigurationDocument, base: ConfigurationDocument?) throws -> ConfigurationDocument {
        guard document.meters.contains(where: { $0.keys != nil }) else { return document }
        guard let masterKey else {
            throw ConfigServiceError.noMasterKey("the configuration holds meter secrets but config-service has no master key (HES_MASTER_KEY_FILE) to seal them")
        }
        var baseKeys: [String: ConfigurationDocument.Meter.Keys] = [:]
        for meter in base?.meters ?? [] where meter.keys != nil { baseKeys[meter.id] = meter.keys }
        var problems: [ConfigurationProblem] = []
        var sealed = document
        for index in sealed.meters.indices where sealed.meters[index].keys != nil {
            let meterID = sealed.meters[index].id
            sealed.meters[index].keys = try sealed.meters[index].keys?.mapSecrets { name, secret in
                let context = "\(meterID)/\(name)"
                switch secret {
                case .plain(let text):
                    let plain = ConfiguredSecret.bytes(ofPlain: text, name: name)
                    if case .sealed(let keyID, let box)? = baseKeys[meterID]?.all.first(where: { $0.name == name })?.secret,
                       keyID == masterKey.id, let data = Data(base64Encoded: box),
                       let previous = try? masterKey.open(Array(data), context: context), previous == plain {
                        return .sealed(masterKeyID: keyID, box: box)
                    }
                    let box = try masterKey.seal(plain, context: context)
                    return .sealed(masterKeyID: masterKey.id, box: Data(box).base64EncodedString())
                case .sealed(let keyID, let box):
                    if Data(base64Encoded: box).flatMap({ data in masterKeys?.key(id: keyID).flatMap { try? $0.open(Array(data), context: context) } }) == nil {
                        problems.append(ConfigurationProblem(pointer: "/meters/\(index)/keys/\(name)",
                                                             detail: "a sealed secret must be one this service sealed for this meter with master key '\(masterKey.id)'"))
                    }
                    return secret
                case .redacted:
                    return secret
                }
            }
        }
        if !problems.isEmpty { throw ConfigServiceError.invalidDocument(problems) }
        return sealed
    }

    /// The document with every secret sealed under an earlier master key sealed again under the
    /// current one, and how many were. Secrets already under the current key keep their box.
    /// - Throws: ``ConfigServiceError`` `.noMasterKey` without a current key, or naming the
    ///   meter whose secret is sealed with a key this service does not hold (or that does not open).
    func resealed(_ document: ConfigurationDocument) throws -> (document: ConfigurationDocument, resealed: Int) {
        guard let masterKey else { throw ConfigServiceError.noMasterKey("config-service has no master key (HES_MASTER_KEY_FILE) to seal with") }
        var count = 0
        var result = document
        for index in result.meters.indices where result.meters[index].keys != nil {
            let meterID = result.meters[index].id
            result.meters[index].keys = try result.meters[index].keys?.mapSecrets { name, secret in
                guard case .sealed(let keyID, let box) = secret, keyID != masterKey.id else { return secret }
                let context = "\(meterID)/\(name)"
                guard let previous = masterKeys?.key(id: keyID) else {
                    throw ConfigServiceError.noMasterKey("meter \(meterID) \(name) is sealed with master key '\(keyID)', which config-service does not hold (HES_PREVIOUS_MASTER_KEY_FILES)")
                }
                guard let data = Data(base64Encoded: box), let plain = try? previous.open(Array(data), context: context) else {
                    throw ConfigServiceError.noMasterKey("meter \(meterID) \(name) does not open with master key '\(keyID)'")
                }
                count += 1
                return .sealed(masterKeyID: masterKey.id, box: Data(try masterKey.seal(plain, context: context)).base64EncodedString())
            }
        }
        return (result, count)
    }

    /// The `meter_secrets` kind of a document's key name.
    static func secretKind(_ name: String, authentication: MeterAccess.Authentication) -> String {
        switch name {
        case "blockCipherKey": "global-unicast-key"
        case "authenticationKey": "authentication-key"
        default: authentication == .lls ? "lls-password" : "hls-secret"
        }
    }
}
