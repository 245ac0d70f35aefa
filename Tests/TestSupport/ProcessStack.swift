import Foundation

/// The processes of one multi-process test and its temporary directory: started one by one
/// (each waited for until it logs `ready`), stopped in reverse order with SIGTERM (SIGKILL after
/// the grace time), the directory removed.
open class ProcessStack: @unchecked Sendable {
    public var processes: [ChildProcess] = []
    public let directory: String
    private let stopGrace: Duration

    public init(prefix: String, stopGrace: Duration = .seconds(8)) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))").path
        self.stopGrace = stopGrace
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    public func start(_ product: String, _ arguments: [String], environment: [String: String] = [:], ready: String) async throws -> ChildProcess {
        let child = try ChildProcess(product: product, arguments: arguments, environment: environment)
        processes.append(child)
        try await child.waitForOutput(containing: ready, timeout: .seconds(30))
        return child
    }

    public func stop() async {
        for child in processes.reversed() where child.isRunning {
            child.signal(SIGTERM)
            _ = await child.waitForExit(timeout: stopGrace)
            if child.isRunning { child.signal(SIGKILL) }
        }
        try? FileManager.default.removeItem(atPath: directory)
    }
}
