import ArgumentParser
import DLMSSecurity
import ServiceRuntime

/// `--master-key-file` / `--master-key-id` for the executables that handle meter secrets:
/// config-service seals them, the scheduler re-wraps them into tasks, collectors unwrap them.
public struct MasterKeyOptions: ParsableArguments, Sendable {
    @Option(help: ArgumentHelp("File holding the master key (hex) that protects the meters' keys (HES_MASTER_KEY_FILE). Default: none", valueName: "path"))
    public var masterKeyFile: String?

    @Option(help: ArgumentHelp("The master key's id, as sealed and wrapped keys name it (HES_MASTER_KEY_ID). Default: default", valueName: "id"))
    public var masterKeyID: String?

    public init() {}

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
