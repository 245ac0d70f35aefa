import COSEM
import DLMSSecurity

extension DLMSClient {
    /// The security setup object whose `key_agreement` ``agreeKey(_:securitySetup:)`` invokes by
    /// default: 0.0.43.0.0.255, the one referenced by the management association.
    public static let defaultSecuritySetup = OBISCode.securitySetup

    /// Agrees a new symmetric key with the meter through its security setup's `key_agreement`
    /// (Blue Book IC 64 method 3; Green Book 9.2.3.4.6: ECDH C(2e, 0s) with ECDSA-signed ephemeral
    /// keys, see ``DLMSKeyAgreement``). The meter replaces its key when it answers; this returns
    /// the same key for the caller to store (it never prints). The current association keeps its
    /// keys: the new one serves later associations.
    ///
    /// Requires an HLS-ECDSA association (its signing key, the meter's public key and both
    /// system titles are the agreement's) that is ciphered, so the exchange is protected.
    ///
    /// - Throws: `DLMSClientError` `.invalidArgument` without HLS-ECDSA, ciphering or the meter's
    ///   system title; `.actionFailed` when the meter refuses (e.g. our signature did not verify);
    ///   `.securityFailed` when the meter's answer does not verify or has another shape or key id.
    public func agreeKey(_ keyID: DLMSKeyID, securitySetup: OBISCode = DLMSClient.defaultSecuritySetup) async throws -> DLMSKey {
        guard case .highECDSA(let signing) = connection.authentication else {
            throw DLMSClientError(code: .invalidArgument, step: .action, reason: "key agreement needs an HLS-ECDSA association (its signing keys sign the ephemeral keys)")
        }
        guard isCiphered else {
            throw DLMSClientError(code: .invalidArgument, step: .action, reason: "key agreement needs a ciphered association")
        }
        guard let serverTitle = association.serverSystemTitle else {
            throw DLMSClientError(code: .invalidArgument, step: .action, reason: "the meter sent no system title")
        }
        let agreement = try Self.securityStep(.action) {
            try DLMSKeyAgreement(role: .client, keyID: keyID, signingKey: signing.signingKey, peerSigningKey: signing.meterPublicKey,
                                 clientSystemTitle: signing.systemTitle, serverSystemTitle: serverTitle)
        }
        let answer = try await action(CosemMethodDescriptor(classID: .securitySetup, instance: securitySetup, method: 3),
                                      parameters: DLMSKeyAgreement.encode([.init(keyID: keyID, keyData: agreement.ownKeyData)]))
        guard let answer else {
            throw DLMSClientError(code: .securityFailed, step: .action, reason: "the meter answered key_agreement without its key-data")
        }
        return try Self.securityStep(.action) {
            let entries = try DLMSKeyAgreement.decode(answer)
            guard entries.count == 1, entries[0].keyID == keyID else {
                throw DLMSSecurityError.decodeFailure("the meter answered key_agreement for \(entries.map(\.keyID.description)), not the \(keyID)")
            }
            return try agreement.agreedKey(peerKeyData: entries[0].keyData)
        }
    }
}
