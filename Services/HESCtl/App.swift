import ArgumentParser

/// `hesctl`: the operator's command-line tool.
@main
struct App: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hesctl",
        abstract: "Operate SwiftHES: configurations, commands, status, DLMS inspection.",
        version: SwiftHESVersion.current,
        subcommands: [
            VersionCommand.self,
            ContractCommand.self,
            DLMSCommand.self,
            ReadCommand.self,
            KeyCommand.self,
            TaskCommand.self,
            ConfigCommand.self,
            CommandsCommand.self,
            MetersCommand.self,
            RegionsCommand.self,
        ])
}

enum SwiftHESVersion {
    static let current = "0.1.0"
}

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Print the version.")
    func run() { print("hesctl \(SwiftHESVersion.current)") }
}
