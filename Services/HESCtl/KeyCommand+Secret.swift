import ArgumentParser
import COSEM
import DLMSSecurity
import Foundation

extension KeyCommand {
    /// `hesctl key wrap-secret`: an LLS password or HLS secret wrapped with the master key, as
    /// the `keys.password` of a task's meter access takes it.
    struct WrapSecret: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "wrap-secret",
            abstract: "Print a password or HLS secret wrapped with the master key, as JSON ({\"masterKeyID\", \"wrapped\"}).")

        @Option(help: "The secret as text, or @FILE holding it. Default: standard input (one line).")
        var secret: String?
        @Option(name: .customLong("master-key-file"), help: "The master key's hex. Default: $HES_MASTER_KEY_FILE.")
        var masterKeyFile: String?

        func run() throws {
            var text = secret ?? (readLine(strippingNewline: true) ?? "")
            if text.hasPrefix("@") {
                guard let data = FileManager.default.contents(atPath: String(text.dropFirst())) else {
                    throw ValidationError("--secret: cannot read \(text.dropFirst())")
                }
                text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .newlines)
            }
            let plain: DLMSSecret
            do {
                plain = try DLMSSecret(text: text)
            } catch {
                throw ValidationError("--secret: \(error)")
            }
            let wrapped = try WrappedDLMSSecret(wrapping: plain, with: try KeyMaterial.masterKey(file: masterKeyFile))
            print(#"{"masterKeyID":"\#(wrapped.masterKeyID)","wrapped":"\#(Hex.encode(wrapped.wrapped))"}"#)
        }
    }
}
