import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// `ims-sim push config|command`: what the central IMS sends the head-end, through the
/// config-service API as the IMS would — a whole configuration (JSON or YAML), or an on-demand
/// command (the API's `CommandRequest` JSON) with an `Idempotency-Key`, so a repeated push finds
/// the command made the first time.
struct Push: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract: "Send the head-end a configuration or a command through the config-service API, as the IMS does.",
        subcommands: [PushConfiguration.self, PushCommand.self])

    /// Where the config-service API is and how the IMS signs in.
    struct Target: ParsableArguments {
        @Option(help: ArgumentHelp("The config-service API (HES_CONFIG_URL). Default: http://127.0.0.1:8080", valueName: "url"))
        var configURL: String?

        @Option(help: ArgumentHelp("The IMS's API token (HES_API_TOKEN)", valueName: "token"))
        var apiToken: String?

        @Option(help: ArgumentHelp("PEM file of the CA of the API's certificate, for https (HES_CONFIG_CA_FILE)", valueName: "path"))
        var caFile: String?

        /// Posts `body` to `path`; prints the answer; exits 1 with the problem when refused.
        func post(_ path: String, body: Data, contentType: String, idempotencyKey: String? = nil) async throws {
            let environment = ProcessInfo.processInfo.environment
            let base = (configURL ?? environment["HES_CONFIG_URL"] ?? "http://127.0.0.1:8080").trimmingCharacters(in: CharacterSet(charactersIn: "/"))
            guard let token = apiToken ?? environment["HES_API_TOKEN"], !token.isEmpty else {
                throw ValidationError("give the IMS's API token: --api-token or HES_API_TOKEN")
            }
            var configuration = HTTPClient.Configuration()
            configuration.timeout.connect = .seconds(10)
            configuration.connectionPool.retryConnectionEstablishment = false
            if let caFile = caFile ?? environment["HES_CONFIG_CA_FILE"], !caFile.isEmpty {
                var tls = TLSConfiguration.makeClientConfiguration()
                tls.trustRoots = .file(caFile)
                configuration.tlsConfiguration = tls
            }
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            var request = HTTPClientRequest(url: base + path)
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
            request.headers.add(name: "Content-Type", value: contentType)
            if let idempotencyKey { request.headers.add(name: "Idempotency-Key", value: idempotencyKey) }
            request.body = .bytes(ByteBuffer(bytes: body))
            let status: Int
            let answer: String
            do {
                let response = try await client.execute(request, timeout: .seconds(300))
                status = Int(response.status.code)
                answer = String(buffer: try await response.body.collect(upTo: 16 << 20))
                try? await client.shutdown()
            } catch {
                try? await client.shutdown()
                FileHandle.standardError.write(Data("ims-sim push: the config-service at \(base) did not answer: \(error)\n".utf8))
                throw ExitCode(75)
            }
            guard (200..<300).contains(status) else {
                FileHandle.standardError.write(Data("ims-sim push: the head-end refused (\(status)): \(answer)\n".utf8))
                throw ExitCode(1)
            }
            print(answer)
        }
    }

    static func read(_ path: String) throws -> Data {
        if path == "-" { return FileHandle.standardInput.readDataToEndOfFile() }
        guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read '\(path)'") }
        return data
    }
}

/// `ims-sim push config FILE`: a new configuration version, activated.
struct PushConfiguration: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Send a whole configuration (JSON, or YAML for .yaml/.yml files); it is stored and activated.")

    @OptionGroup var target: Push.Target

    @Argument(help: "The configuration document, or - for standard input.")
    var file: String

    func run() async throws {
        let document = try Push.read(file)
        let yaml = file.lowercased().hasSuffix(".yaml") || file.lowercased().hasSuffix(".yml")
        try await target.post("/v1/config/versions?comment=" + "pushed by ims-sim".addingPercentEncoding(withAllowedCharacters: .alphanumerics)!,
                              body: document, contentType: yaml ? "application/yaml" : "application/json")
    }
}

/// `ims-sim push command FILE`: an on-demand command.
struct PushCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "command",
        abstract: "Send an on-demand command: the API's CommandRequest JSON, e.g. {\"kind\": \"disconnect\", \"meterID\": \"SIM00000004\"}.")

    @OptionGroup var target: Push.Target

    @Option(help: ArgumentHelp("The request's Idempotency-Key: pushing again with it finds the command made the first time. Default: a new one", valueName: "key"))
    var idempotencyKey: String?

    @Argument(help: "The command request (JSON), or - for standard input.")
    var file: String

    func run() async throws {
        try await target.post("/v1/commands", body: try Push.read(file), contentType: "application/json",
                              idempotencyKey: idempotencyKey ?? "ims-sim-\(UUID().uuidString)")
    }
}
