import ArgumentParser
import COSEM
import DLMSSecurity
import Foundation

/// Where `hesctl` takes DLMS keys from: hex on the command line (tests), `@FILE` holding the hex,
/// `wrapped:HEX` (RFC 3394, unwrapped with the master key of `HES_MASTER_KEY_FILE`), or the
/// environment variable named for the flag.
enum KeyMaterial {
    /// - Returns: `nil` when neither the flag nor the environment variable is set.
    /// - Throws: `ValidationError` naming the flag; never quoting key material.
    static func key(_ flag: String?, name: String, environment variable: String?) throws -> DLMSKey? {
        let environment = ProcessInfo.processInfo.environment
        guard var text = flag ?? variable.flatMap({ environment[$0] }) else { return nil }
        if text.hasPrefix("@") {
            guard let data = FileManager.default.contents(atPath: String(text.dropFirst())) else {
                throw ValidationError("--\(name): cannot read \(text.dropFirst())")
            }
            text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        do {
            if text.hasPrefix("wrapped:") {
                guard let bytes = Hex.decode(text.dropFirst(8)) else { throw ValidationError("not hexadecimal") }
                let wrapped = WrappedDLMSKey(masterKeyID: try masterKey().id, wrapped: bytes)
                return try wrapped.unwrap(with: try masterKey())
            }
            return try DLMSKey(hex: text)
        } catch let error as ValidationError {
            throw ValidationError("--\(name): \(error.message)")
        } catch {
            throw ValidationError("--\(name): \(error)")
        }
    }

    /// An HLS-ECDSA private key: hex (64 digits P-256, 96 digits P-384), `@FILE` holding the hex or
    /// a PEM key (`openssl ecparam -genkey` / `openssl genpkey`), or the environment variable.
    /// - Throws: `ValidationError` naming the flag; never quoting key material.
    static func signingKey(_ flag: String?, name: String, environment variable: String) throws -> DLMSSigningKey? {
        guard let text = try text(flag, name: name, environment: variable) else { return nil }
        do {
            return try DLMSSigningKey(pemOrHex: text)
        } catch {
            throw ValidationError("--\(name): \(error)")
        }
    }

    /// An HLS-ECDSA public key: hex (x ‖ y or 04 ‖ x ‖ y), `@FILE` holding the hex or a PEM public key, or the environment variable.
    static func publicKey(_ flag: String?, name: String, environment variable: String) throws -> DLMSPublicKey? {
        guard let text = try text(flag, name: name, environment: variable) else { return nil }
        do {
            return try DLMSPublicKey(pemOrHex: text)
        } catch {
            throw ValidationError("--\(name): \(error)")
        }
    }

    /// The flag's text, the file's when it is `@FILE`, or the environment variable's.
    private static func text(_ flag: String?, name: String, environment variable: String) throws -> String? {
        guard let text = flag ?? ProcessInfo.processInfo.environment[variable] else { return nil }
        guard text.hasPrefix("@") else { return text }
        guard let data = FileManager.default.contents(atPath: String(text.dropFirst())) else {
            throw ValidationError("--\(name): cannot read \(text.dropFirst())")
        }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The master key: `HES_MASTER_KEY_FILE` holds its hex; `HES_MASTER_KEY_ID` names it (default `default`).
    static func masterKey(file: String? = nil) throws -> MasterKey {
        let environment = ProcessInfo.processInfo.environment
        guard let path = file ?? environment["HES_MASTER_KEY_FILE"] else {
            throw ValidationError("a wrapped key needs the master key: set HES_MASTER_KEY_FILE (or --master-key-file)")
        }
        guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read the master key file \(path)") }
        return try MasterKey(id: environment["HES_MASTER_KEY_ID"] ?? "default",
                             hex: String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

/// The key flags `hesctl read` and `hesctl dlms decode` share.
struct CipherKeyOptions: ParsableArguments {
    @Option(name: .customLong("block-cipher-key"), help: "EK: 16 bytes in hex, @FILE holding the hex, or wrapped:HEX (unwrapped with $HES_MASTER_KEY_FILE). Default: $HES_DLMS_BLOCK_CIPHER_KEY.")
    var blockCipherKey: String?
    @Option(name: .customLong("auth-key"), help: "AK: hex, @FILE or wrapped:HEX. Default: $HES_DLMS_AUTH_KEY.")
    var authKey: String?
    @Option(name: .customLong("dedicated-key"), help: "A dedicated key (ded- ciphering): hex, @FILE or wrapped:HEX. Default: $HES_DLMS_DEDICATED_KEY.")
    var dedicatedKey: String?

    struct Keys {
        var blockCipherKey: DLMSKey
        var authenticationKey: DLMSKey
        var dedicatedKey: DLMSKey?
    }

    /// The keys, or `nil` when neither EK nor AK is given.
    /// - Throws: `ValidationError` when only one of them is, or one does not load.
    func keys() throws -> Keys? {
        let ek = try KeyMaterial.key(blockCipherKey, name: "block-cipher-key", environment: "HES_DLMS_BLOCK_CIPHER_KEY")
        let ak = try KeyMaterial.key(authKey, name: "auth-key", environment: "HES_DLMS_AUTH_KEY")
        guard let ek, let ak else {
            if ek != nil || ak != nil { throw ValidationError("--block-cipher-key and --auth-key go together") }
            return nil
        }
        return Keys(blockCipherKey: ek, authenticationKey: ak,
                    dedicatedKey: try KeyMaterial.key(dedicatedKey, name: "dedicated-key", environment: "HES_DLMS_DEDICATED_KEY"))
    }
}

/// `hesctl key wrap`: wraps a DLMS key with the master key for configurations and tasks, so the
/// key itself is never stored or sent in the clear.
struct KeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key", abstract: "Wrap DLMS keys with the master key (RFC 3394).", subcommands: [Wrap.self, WrapSecret.self])

    struct Wrap: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a key wrapped with the master key, as JSON and as the 'wrapped:HEX' form other commands accept.")

        @Option(help: "The key: hex, or @FILE holding the hex. Default: standard input.")
        var key: String?
        @Option(name: .customLong("master-key-file"), help: "The master key's hex. Default: $HES_MASTER_KEY_FILE.")
        var masterKeyFile: String?

        func run() throws {
            let text = key ?? String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard let plain = try KeyMaterial.key(text, name: "key", environment: nil) else { throw ValidationError("no key given") }
            let wrapped = try WrappedDLMSKey(wrapping: plain, with: try KeyMaterial.masterKey(file: masterKeyFile))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(wrapped), as: UTF8.self))
            print("wrapped:" + Hex.encode(wrapped.wrapped))
        }
    }
}
