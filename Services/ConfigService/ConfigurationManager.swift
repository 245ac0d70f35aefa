import Contracts
import DLMSSecurity
import Foundation
import Logging

/// What a dry run found: the problems, or what the document would change.
struct ValidationReport: Codable, Sendable {
    var valid: Bool
    var basedOn: Int64?
    var problems: [ConfigurationProblem]
    var changes: ConfigurationDiff?
}

/// What a master-key rotation did: how many secrets were sealed again under `masterKeyID`, and
/// the version that holds them (`nil` when all were sealed under it already).
struct KeyRotationReport: Codable, Sendable {
    var masterKeyID: String
    var resealed: Int
    var version: VersionSummary?
}

/// What an applied document did.
struct ApplyReport: Codable, Sendable {
    var version: VersionSummary
    var changes: ConfigurationDiff
}

/// The configuration use cases behind the API (and `hesctl config …`): validate, apply (stage
/// and, by default, activate), partial meter updates, activate, roll back, diff. A document is
/// read whole, checked whole (every problem at once) and stored whole, or nothing changes.
struct ConfigurationManager: Sendable {
    let store: ConfigurationStore
    let vault: SecretVault
    let validator: ConfigurationValidator
    let logger: Logger

    /// Checks `data` against the rules and against the version it would be based on (`basedOn`,
    /// default the active one). Changes nothing.
    func validate(_ data: Data, basedOn: Int64?) async throws -> ValidationReport {
        let base = try await base(basedOn)
        switch parse(data, base: base?.document) {
        case .failure(let problems):
            return ValidationReport(valid: false, basedOn: base?.summary.id, problems: problems.problems, changes: nil)
        case .success(let document):
            return ValidationReport(valid: true, basedOn: base?.summary.id, problems: [],
                                    changes: ConfigurationDiff(from: base?.document, to: document, fromVersion: base?.summary.id))
        }
    }

    /// Stores `data` as a new version based on `basedOn` (default: the active version) and
    /// activates it unless `activate` is false.
    /// - Throws: ``ConfigServiceError`` `.invalidDocument` with every problem, `.conflict` when
    ///   another version was activated meanwhile, `.noMasterKey`, `.storeFailed`.
    func apply(_ data: Data, basedOn: Int64?, activate: Bool, actor: String, comment: String?) async throws -> ApplyReport {
        let base = try await base(basedOn)
        let document: ConfigurationDocument
        switch parse(data, base: base?.document) {
        case .failure(let problems):
            logger.notice("configuration refused", metadata: ["actor": "\(actor)", "problems": "\(problems.problems.count)"])
            throw ConfigServiceError.invalidDocument(problems.problems)
        case .success(let parsed):
            document = parsed
        }
        return try await store(document, base: base, activate: activate, actor: actor, comment: comment)
    }

    /// A new version from the base with meters added, replaced or removed.
    func changeMeters(_ data: Data, basedOn: Int64?, activate: Bool, actor: String, comment: String?) async throws -> ApplyReport {
        guard let base = try await base(basedOn) else {
            throw ConfigServiceError.invalidRequest("there is no configuration to change yet: apply a whole document first")
        }
        let changes: MeterChanges
        let nulls = ConfigurationParser.nullProblems(in: data)
        guard nulls.isEmpty else { throw ConfigServiceError.invalidDocument(nulls) }
        do {
            changes = try JSONDecoder().decode(MeterChanges.self, from: data)
        } catch let error as DecodingError {
            throw ConfigServiceError.invalidDocument([ConfigurationParser.problem(error)])
        }
        var document = changes.applied(to: base.document)
        vault.resolveRedacted(&document, base: base.document)
        // Problems of the meters the request sent point into the request (`/upsert/N/…`).
        var upsertIndex: [String: Int] = [:]
        for (index, meter) in changes.upsert.enumerated() { upsertIndex[meter.id] = index }
        let problems = validator.validate(document).map { problem -> ConfigurationProblem in
            let parts = problem.pointer.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count >= 3, parts[1] == "meters", let index = Int(parts[2].prefix { $0.isNumber }), index < document.meters.count,
                  let sent = upsertIndex[document.meters[index].id] else { return problem }
            let rest = parts[2].drop { $0.isNumber }
            return ConfigurationProblem(pointer: "/upsert/\(sent)\(rest)", detail: problem.detail)
        }
        let unknown = Set(changes.remove).subtracting(base.document.meters.map(\.id))
        let all = problems + unknown.sorted().map { ConfigurationProblem(pointer: "/remove", detail: "there is no meter '\($0)' to remove") }
        guard all.isEmpty else { throw ConfigServiceError.invalidDocument(all) }
        return try await store(document, base: base, activate: activate, actor: actor, comment: comment)
    }

    /// Seals every secret of the active configuration that an earlier master key sealed again
    /// under the current one, as a new version that is activated at once (the secrets' values do
    /// not change, only their boxes). Nothing to do: no version, `resealed` 0.
    /// - Throws: ``ConfigServiceError`` `.noMasterKey` when a secret's key is not held,
    ///   `.invalidRequest` without an active configuration, `.conflict` when another version was
    ///   activated meanwhile.
    func rotateMasterKey(actor: String) async throws -> KeyRotationReport {
        guard let base = try await base(nil) else {
            throw ConfigServiceError.invalidRequest("there is no active configuration whose secrets could be sealed again")
        }
        let (document, resealed) = try vault.resealed(base.document)
        let keyID = vault.masterKey?.id ?? ""
        guard resealed > 0 else {
            return KeyRotationReport(masterKeyID: keyID, resealed: 0, version: nil)
        }
        let report = try await store(document, base: base, activate: true, actor: actor,
                                     comment: "master key rotated to '\(keyID)': \(resealed) secret(s) sealed again")
        logger.notice("meter secrets sealed again under the current master key", metadata: [
            "config.version": "\(report.version.id)", "master_key": "\(keyID)", "secrets": "\(resealed)", "actor": "\(actor)",
        ])
        return KeyRotationReport(masterKeyID: keyID, resealed: resealed, version: report.version)
    }

    /// Activates a stored (staged) version built on the active one.
    func activate(_ id: Int64, expectedActive: Int64?, actor: String) async throws -> VersionSummary {
        let summary = try await store.activate(id: id, expectedActive: expectedActive, force: false, actor: actor)
        logger.notice("configuration activated", metadata: ["config.version": "\(id)", "actor": "\(actor)"])
        return summary
    }

    /// Activates `version` (default: the version active before the current one) whatever it was
    /// built on.
    func rollback(to version: Int64?, expectedActive: Int64?, actor: String) async throws -> VersionSummary {
        var target = version
        if target == nil { target = try await store.previousActive() }
        guard let target else {
            throw ConfigServiceError.invalidRequest("there is no earlier active version to roll back to")
        }
        let summary = try await store.activate(id: target, expectedActive: expectedActive, force: true, actor: actor, action: "config.rolled-back")
        logger.notice("configuration rolled back", metadata: ["config.version": "\(target)", "actor": "\(actor)"])
        return summary
    }

    /// What changes from `from` to `to` (default: the active version).
    func diff(from: Int64, to: Int64?) async throws -> ConfigurationDiff {
        guard let old = try await store.version(from) else { throw ConfigServiceError.notFound("there is no configuration version \(from)") }
        guard let new = try await store.version(to) else {
            throw ConfigServiceError.notFound(to.map { "there is no configuration version \($0)" } ?? "no configuration is active")
        }
        return ConfigurationDiff(from: old.document, to: new.document, fromVersion: old.summary.id, toVersion: new.summary.id)
    }

    // MARK: - Steps

    private func base(_ id: Int64?) async throws -> StoredVersion? {
        let base = try await store.version(id)
        if let id, base == nil { throw ConfigServiceError.notFound("there is no configuration version \(id) to build on") }
        return base
    }

    private func parse(_ data: Data, base: ConfigurationDocument?) -> Result<ConfigurationDocument, ConfigurationProblems> {
        ConfigurationParser.parse(data, validator: validator) { vault.resolveRedacted(&$0, base: base) }
    }

    private func store(_ document: ConfigurationDocument, base: StoredVersion?, activate: Bool, actor: String, comment: String?) async throws -> ApplyReport {
        let sealed = try vault.seal(document, base: base?.document)
        let changes = ConfigurationDiff(from: base?.document, to: sealed, fromVersion: base?.summary.id)
        let summary = try await store.stage(sealed, parent: base?.summary.id, activate: activate, actor: actor, comment: comment)
        var report = ApplyReport(version: summary, changes: changes)
        report.changes.to = summary.id
        logger.notice(activate ? "configuration applied and activated" : "configuration staged", metadata: [
            "config.version": "\(summary.id)", "actor": "\(actor)", "meters": "\(summary.meters)",
            "changes": "meters +\(changes.meters.added.count) -\(changes.meters.removed.count) ~\(changes.meters.changed.count)",
        ])
        return report
    }
}
