import ArgumentParser
import AsyncHTTPClient
import Contracts
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// How hesctl reaches the config-service API: `--url` / `HES_CONFIG_URL` (default
/// `http://127.0.0.1:8080`), the token from `HES_API_TOKEN`, `--json` for scripts.
struct ControlPlaneOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The config-service API (HES_CONFIG_URL). Default: http://127.0.0.1:8080", valueName: "url"))
    var url: String?

    @Flag(help: "Print the API's JSON answer instead of a table.")
    var json = false

    @Option(help: ArgumentHelp("PEM file of the CA that signed the API's certificate, for https (HES_CONFIG_CA_FILE). Default: the system's", valueName: "path"))
    var caFile: String?

    var baseURL: String {
        (url ?? ProcessInfo.processInfo.environment["HES_CONFIG_URL"] ?? "http://127.0.0.1:8080").trimmingCharacters(in: CharacterSet(charactersIn: "/"))
    }

    /// Sends one request; a problem answer becomes a readable error (exit 1), every problem of a
    /// refused configuration on its own line.
    func call(_ method: HTTPMethod, _ path: String, body: Data? = nil, contentType: String = "application/json", headers extra: [(String, String)] = [],
              accept: Set<Int> = [200, 201, 204]) async throws -> (status: Int, body: Data) {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        guard let token = ProcessInfo.processInfo.environment["HES_API_TOKEN"], !token.isEmpty else {
            throw ValidationError("set HES_API_TOKEN to a config-service API token")
        }
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.headers.add(name: "Content-Type", value: contentType)
        for (name, value) in extra { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response: HTTPClientResponse
        let client = try httpClient()
        let bytes: Data
        do {
            response = try await client.execute(request, timeout: .seconds(300))
            bytes = Data((try await response.body.collect(upTo: 512 << 20)).readableBytesView)
            try? await client.shutdown()
        } catch {
            try? await client.shutdown()
            throw ControlPlaneError(message: "the config-service at \(baseURL) did not answer: \(error)")
        }
        let status = Int(response.status.code)
        guard accept.contains(status) else {
            if let problem = try? JSONDecoder().decode(Problem.self, from: bytes) {
                var lines: [String] = ["\(status) \(problem.title): \(problem.detail ?? "")"]
                lines += (problem.errors ?? []).map { "  \($0.pointer): \($0.detail)" }
                throw ControlPlaneError(message: lines.joined(separator: "\n"))
            }
            throw ControlPlaneError(message: "\(status): \(String(decoding: bytes, as: UTF8.self))")
        }
        return (status, bytes)
    }

    /// A client for one command: a failed connection (refused, or a certificate not trusted)
    /// fails at once instead of being retried until the request's deadline; `--ca-file` adds a
    /// private CA to trust.
    private func httpClient() throws -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.timeout.connect = .seconds(10)
        configuration.connectionPool.retryConnectionEstablishment = false
        if let caFile = caFile ?? ProcessInfo.processInfo.environment["HES_CONFIG_CA_FILE"], !caFile.isEmpty {
            guard FileManager.default.isReadableFile(atPath: caFile) else { throw ValidationError("--ca-file: cannot read '\(caFile)'") }
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .file(caFile)
            configuration.tlsConfiguration = tls
        }
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    func printJSON(_ data: Data) {
        print(String(decoding: data, as: UTF8.self))
    }

    struct Problem: Decodable {
        var title: String
        var detail: String?
        var errors: [Entry]?
        struct Entry: Decodable { var pointer: String; var detail: String }
    }
}

struct ControlPlaneError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Prints rows as aligned columns.
func printTable(_ header: [String], _ rows: [[String]]) {
    let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
    for row in [header] + rows {
        print(row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }.joined(separator: "  "))
    }
}

/// How a configuration document is sent: YAML for `.yaml`/`.yml` files and for input that is not
/// a JSON object; JSON otherwise.
func documentContentType(path: String, data: Data) -> String {
    let lowered = path.lowercased()
    if lowered.hasSuffix(".yaml") || lowered.hasSuffix(".yml") { return "application/yaml" }
    if lowered.hasSuffix(".json") { return "application/json" }
    let first = data.first { !($0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D) }
    return first == UInt8(ascii: "{") || first == nil ? "application/json" : "application/yaml"
}

private func readInput(_ path: String) throws -> Data {
    if path == "-" { return FileHandle.standardInput.readDataToEndOfFile() }
    guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read '\(path)'") }
    return data
}

private struct Summary: Decodable {
    var id: Int64
    var parentID: Int64?
    var status: String
    var comment: String?
    var createdBy: String
    var createdAt: String
    var activatedAt: String?
    var meters: Int
    var lines: Int
}

private struct Changes: Decodable {
    struct Kind: Decodable { var added: [String]; var removed: [String]; var changed: [String] }
    var regions, lines, templates, schedules, meters: Kind
    var metersAffectedIndirectly: Int

    func printSummary() {
        let kinds = [("regions", regions), ("lines", lines), ("templates", templates), ("schedules", schedules), ("meters", meters)]
        printTable(["element", "added", "removed", "changed"], kinds.map { [$0.0, "\($0.1.added.count)", "\($0.1.removed.count)", "\($0.1.changed.count)"] })
        if metersAffectedIndirectly > 0 { print("\(metersAffectedIndirectly) meter(s) read differently through a changed template or line") }
    }
}

/// `hesctl config validate|apply|versions|diff|rollback`.
struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Validate, apply, list, compare and roll back configurations (config-service API).",
        subcommands: [Validate.self, Apply.self, Versions.self, Diff.self, Rollback.self, RotateMasterKey.self])

    struct Validate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Dry run: every problem with its path, or what would change. Exit 2 when invalid.")
        @OptionGroup var api: ControlPlaneOptions
        @Argument(help: "The configuration document (JSON or YAML), or - for standard input.") var file: String = "-"

        func run() async throws {
            let document = try readInput(file)
            let reply = try await api.call(.POST, "/v1/config/validate", body: document, contentType: documentContentType(path: file, data: document), accept: [200, 422])
            if api.json { api.printJSON(reply.body) } else {
                struct Report: Decodable { var valid: Bool; var problems: [ControlPlaneOptions.Problem.Entry]; var changes: Changes? }
                let report = try JSONDecoder().decode(Report.self, from: reply.body)
                if report.valid {
                    print("valid")
                    report.changes?.printSummary()
                } else {
                    print("\(report.problems.count) problem(s):")
                    for problem in report.problems { print("  \(problem.pointer): \(problem.detail)") }
                }
            }
            if reply.status == 422 { throw ExitCode(2) }
        }
    }

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Store a configuration as a new version and activate it (or only stage it).")
        @OptionGroup var api: ControlPlaneOptions
        @Argument(help: "The configuration document (JSON or YAML), or - for standard input.") var file: String = "-"
        @Flag(help: "Stage the version without activating it.") var stageOnly = false
        @Option(help: "The version this one is built on; refused (409) if another became active meanwhile.") var basedOn: Int64?
        @Option(help: "A comment stored with the version.") var comment: String?

        func run() async throws {
            var query = ["activate=\(!stageOnly)"]
            if let basedOn { query.append("basedOn=\(basedOn)") }
            if let comment, let escaped = comment.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed.subtracting(CharacterSet(charactersIn: "&=+"))) {
                query.append("comment=\(escaped)")
            }
            let document = try readInput(file)
            let reply = try await api.call(.POST, "/v1/config/versions?" + query.joined(separator: "&"), body: document,
                                           contentType: documentContentType(path: file, data: document))
            if api.json { api.printJSON(reply.body); return }
            struct Report: Decodable { var version: Summary; var changes: Changes }
            let report = try JSONDecoder().decode(Report.self, from: reply.body)
            print("version \(report.version.id) \(report.version.status) (\(report.version.meters) meters on \(report.version.lines) lines)")
            report.changes.printSummary()
        }
    }

    struct Versions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List configuration versions, newest first.")
        @OptionGroup var api: ControlPlaneOptions
        @Option(help: "How many. Default: 20") var limit = 20

        func run() async throws {
            let reply = try await api.call(.GET, "/v1/config/versions?limit=\(limit)")
            if api.json { api.printJSON(reply.body); return }
            let versions = try JSONDecoder().decode([Summary].self, from: reply.body)
            printTable(["id", "status", "parent", "meters", "lines", "by", "created", "comment"], versions.map {
                ["\($0.id)", $0.status, $0.parentID.map { "\($0)" } ?? "-", "\($0.meters)", "\($0.lines)", $0.createdBy, $0.createdAt, $0.comment ?? ""]
            })
        }
    }

    struct Diff: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "What changes from one version to another (default: the active one).")
        @OptionGroup var api: ControlPlaneOptions
        @Argument(help: "The older version.") var from: Int64
        @Argument(help: "The newer version. Default: the active one.") var to: Int64?

        func run() async throws {
            let reply = try await api.call(.GET, "/v1/config/diff?from=\(from)" + (to.map { "&to=\($0)" } ?? ""))
            if api.json { api.printJSON(reply.body); return }
            let changes = try JSONDecoder().decode(Changes.self, from: reply.body)
            changes.printSummary()
            for (name, ids) in [("added", changes.meters.added), ("removed", changes.meters.removed), ("changed", changes.meters.changed)] where !ids.isEmpty {
                print("meters \(name): \(ids.prefix(20).joined(separator: ", "))\(ids.count > 20 ? " … (\(ids.count))" : "")")
            }
        }
    }

    struct Rollback: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Activate an earlier version (default: the one active before the current).")
        @OptionGroup var api: ControlPlaneOptions
        @Argument(help: "The version to activate.") var version: Int64?

        func run() async throws {
            let reply = try await api.call(.POST, "/v1/config/rollback" + (version.map { "?toVersion=\($0)" } ?? ""))
            if api.json { api.printJSON(reply.body); return }
            let summary = try JSONDecoder().decode(Summary.self, from: reply.body)
            print("version \(summary.id) is active (\(summary.meters) meters)")
        }
    }
}

extension ConfigCommand {
    struct RotateMasterKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-master-key",
            abstract: "Seal the active configuration's secrets again under config-service's current master key (a new, activated version).",
            discussion: """
                Give config-service, the schedulers and the collectors the new key as HES_MASTER_KEY_FILE (with HES_MASTER_KEY_ID) \
                and the old one in HES_PREVIOUS_MASTER_KEY_FILES (id=path), restart them, run this, and drop the old key once \
                the tasks wrapped under it are done. Versions older than this one still need the old key to be rolled back to.
                """)
        @OptionGroup var api: ControlPlaneOptions

        func run() async throws {
            let reply = try await api.call(.POST, "/v1/config/rotate-master-key")
            if api.json { api.printJSON(reply.body); return }
            struct Report: Decodable { var masterKeyID: String; var resealed: Int; var version: Summary? }
            let report = try JSONDecoder().decode(Report.self, from: reply.body)
            if let version = report.version {
                print("\(report.resealed) secret(s) sealed again under master key '\(report.masterKeyID)': version \(version.id) is active")
            } else {
                print("every secret is sealed under master key '\(report.masterKeyID)' already; nothing changed")
            }
        }
    }
}

/// `hesctl commands create|get|list|approve|cancel`.
struct CommandsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "commands", abstract: "On-demand commands: read, time sync, disconnect, reconnect (config-service API).",
        subcommands: [Create.self, Get.self, List.self, Approve.self, Cancel.self])

    private struct View: Decodable {
        struct Request: Decodable { var kind: String; var meterID: String }
        var id: String
        var request: Request
        var state: String
        var requiresApproval: Bool
        var requestedBy: String
        var approvedBy: String?
        var createdAt: String
        var error: String?
    }

    private static func show(_ data: Data, api: ControlPlaneOptions) throws {
        if api.json { api.printJSON(data); return }
        let views = try (try? JSONDecoder().decode([View].self, from: data)) ?? [JSONDecoder().decode(View.self, from: data)]
        printTable(["id", "kind", "meter", "state", "approval", "by", "created", "error"], views.map {
            [$0.id, $0.request.kind, $0.request.meterID, $0.state, $0.requiresApproval ? ($0.approvedBy.map { "by \($0)" } ?? "waiting") : "-",
             $0.requestedBy, $0.createdAt, $0.error ?? ""]
        })
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a command.")
        @OptionGroup var api: ControlPlaneOptions
        @Argument(help: "read-profile, read-objects, time-sync, disconnect or reconnect.") var kind: String
        @Argument(help: "The meter id.") var meter: String
        @Option(help: "read-profile: the range's start (ISO 8601).") var from: String?
        @Option(help: "read-profile: the range's end (ISO 8601).") var to: String?
        @Option(help: "read-profile: the profile's OBIS code. Default: 1.0.99.1.0.255") var profile: String?
        @Option(help: "read-objects: class:obis:attribute (repeatable), e.g. 3:1.0.1.8.0.255:2") var object: [String] = []
        @Option(help: "An idempotency key: the same key finds the same command.") var idempotencyKey: String?

        func run() async throws {
            guard let kind = CommandRequest.Kind(rawValue: kind) else {
                throw ValidationError("kind is one of \(CommandRequest.Kind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let objects = try object.map { text -> ObjectReference in
                let parts = text.split(separator: ":")
                guard parts.count == 3, let classID = Int(parts[0]), let attribute = Int(parts[2]) else {
                    throw ValidationError("--object is class:obis:attribute, not '\(text)'")
                }
                return ObjectReference(classID: classID, obis: String(parts[1]), attribute: attribute)
            }
            func date(_ text: String?, _ name: String) throws -> Date? {
                guard let text else { return nil }
                guard let date = ContractDate.parse(text) else { throw ValidationError("--\(name) is an ISO 8601 instant, not '\(text)'") }
                return date
            }
            let request = CommandRequest(kind: kind, meterID: meter, profile: profile, from: try date(from, "from"), to: try date(to, "to"),
                                         objects: objects.isEmpty ? nil : objects)
            let reply = try await api.call(.POST, "/v1/commands", body: try ContractCoder.makeEncoder().encode(request),
                                           headers: idempotencyKey.map { [("Idempotency-Key", $0)] } ?? [])
            try CommandsCommand.show(reply.body, api: api)
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a command.")
        @OptionGroup var api: ControlPlaneOptions
        @Argument var id: String
        func run() async throws { try CommandsCommand.show(try await api.call(.GET, "/v1/commands/\(id)").body, api: api) }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List commands, newest first.")
        @OptionGroup var api: ControlPlaneOptions
        @Option(help: "Only this meter's.") var meter: String?
        @Option(help: "Only in this state.") var state: String?
        @Option(help: "How many. Default: 50") var limit = 50

        func run() async throws {
            var query = ["limit=\(limit)"]
            if let meter, let escaped = meter.addingPercentEncoding(withAllowedCharacters: .alphanumerics) { query.append("meter=\(escaped)") }
            if let state { query.append("state=\(state)") }
            try CommandsCommand.show(try await api.call(.GET, "/v1/commands?" + query.joined(separator: "&")).body, api: api)
        }
    }

    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Approve a guarded disconnect or reconnect (not your own).")
        @OptionGroup var api: ControlPlaneOptions
        @Argument var id: String
        func run() async throws { try CommandsCommand.show(try await api.call(.POST, "/v1/commands/\(id)/approve").body, api: api) }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cancel a command not dispatched yet.")
        @OptionGroup var api: ControlPlaneOptions
        @Argument var id: String
        func run() async throws { try CommandsCommand.show(try await api.call(.POST, "/v1/commands/\(id)/cancel").body, api: api) }
    }
}
