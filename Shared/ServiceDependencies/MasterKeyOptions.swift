import ArgumentParser
import DLMSSecurity
import Foundation
import ServiceRuntime

/// `--master-key-file` / `--master-key-id` for the executables that handle meter secrets:
/// config-service seals them, the scheduler re-wraps them into tasks, collectors unwrap them.
public struct MasterKeyOptions: ParsableArguments, Sendable {
    @Option(help: ArgumentHelp("File holding the master key (hex) that protects the meters' keys (HES_MASTER_KEY_FILE). Default: none", valueName: "path"))
    public var masterKeyFile: String?

    @Option(help: ArgumentHelp("The master key's id, as sealed and wrapped keys name it (HES_MASTER_KEY_ID). Default: default", valueName: "id"))
    public var masterKeyID: String?

    @Option(help: ArgumentHelp("Earlier master keys, still needed to open what they sealed or wrapped while a rotation is under way: id=path pairs, comma separated (HES_PREVIOUS_MASTER_KEY_FILES). Default: none", valueName: "id=path,…"))
    public var previousMasterKeyFiles: String?

    public init() {}

    /// The earlier master keys (`--previous-master-key-files`), empty when none are configured.
    /// - Throws: `ValidationError` naming the entry that is not `id=path` or the file that holds no key.
    func previousMasterKeys(_ settings: SettingsResolver) throws -> [MasterKey] {
        guard let list = settings.optionalString(previousMasterKeyFiles, flagName: "previous-master-key-files", env: "HES_PREVIOUS_MASTER_KEY_FILES") else {
            return []
        }
        return try list.split(separator: ",").map { entry in
            let parts = entry.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw ValidationError("--previous-master-key-files: '\(entry)' is not id=path")
            }
            do {
                return try MasterKey(id: parts[0], contentsOfFile: parts[1])
            } catch let error as DLMSSecurityError {
                throw ValidationError("previous master key file '\(parts[1])': \(error.reason)")
            }
        }
    }

    /// The current master key and the previous ones, or `nil` without a current key.
    /// - Throws: as ``masterKey(_:)`` and ``previousMasterKeys(_:)``; also when previous keys are
    ///   given without a current one.
    public func masterKeyRing(_ settings: SettingsResolver) throws -> MasterKeyRing? {
        let previous = try previousMasterKeys(settings)
        guard let current = try masterKey(settings) else {
            if !previous.isEmpty { throw ValidationError("--previous-master-key-files needs a current key (--master-key-file, HES_MASTER_KEY_FILE)") }
            return nil
        }
        return MasterKeyRing(current: current, previous: previous)
    }

    /// The master key, or `nil` when none is configured.
    /// - Throws: `ValidationError` naming the file when it cannot be read or holds no key.
    public func masterKey(_ settings: SettingsResolver) throws -> MasterKey? {
        guard let path = settings.optionalString(masterKeyFile, flagName: "master-key-file", env: "HES_MASTER_KEY_FILE") else { return nil }
        do {
            return try MasterKey(id: settings.string(masterKeyID, flagName: "master-key-id", env: "HES_MASTER_KEY_ID", default: "default"),
                                 contentsOfFile: path)
        } catch let error as DLMSSecurityError {
            throw ValidationError("master key file '\(path)': \(error.reason)")
        }
    }
}
