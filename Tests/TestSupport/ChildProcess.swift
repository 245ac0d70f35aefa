import Foundation
import Synchronization

/// A built executable of this package started as a child process, for tests that exercise whole
/// processes: its output goes to files, it can be signalled, and waiting for it is bounded.
///
/// The process is killed (SIGKILL) when the object is released, so a failing test leaves no
/// stray processes behind.
// `Process` is not Sendable; it is only read after `run()`, and signals go through its pid.
public final class ChildProcess: @unchecked Sendable {
    public let name: String
    public let stdoutPath: String
    public let stderrPath: String
    private let process: Process

    /// The folder holding this package's built products (next to the running test binary).
    /// `HES_BIN_DIR` overrides it.
    public static var productsDirectory: URL {
        if let override = ProcessInfo.processInfo.environment["HES_BIN_DIR"] {
            return URL(fileURLWithPath: override)
        }
        let testBinary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var directory = testBinary.deletingLastPathComponent()
        // On Linux the test binary sits directly in the products folder; on macOS it is inside
        // a bundle: walk up to the folder that holds the bundle.
        while directory.path.contains(".xctest") { directory.deleteLastPathComponent() }
        return directory
    }

    /// The path of the built product `product` (e.g. `collector`).
    public static func productPath(_ product: String) throws -> String {
        let path = productsDirectory.appendingPathComponent(product).path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw ChildProcessError(reason: "no built product '\(product)' at \(path): run `swift build` first")
        }
        return path
    }

    /// Starts `product` with `arguments`.
    /// - Parameters:
    ///   - environment: added to a clean environment (PATH, HOME and LANG are kept; every other
    ///     variable of the test process, HES_* especially, is not inherited).
    public convenience init(product: String, arguments: [String] = [], environment: [String: String] = [:]) throws {
        try self.init(executable: try Self.productPath(product), name: product, arguments: arguments, environment: environment)
    }

    /// Starts any executable (a Python interpreter for interop tests, a shell script).
    public init(executable: String, name product: String, arguments: [String] = [], environment: [String: String] = [:]) throws {
        name = product
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("hes-child-\(product)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        stdoutPath = directory.appendingPathComponent("stdout").path
        stderrPath = directory.appendingPathComponent("stderr").path
        FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        FileManager.default.createFile(atPath: stderrPath, contents: nil)

        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var childEnvironment: [String: String] = [:]
        let inherited = ProcessInfo.processInfo.environment
        for key in ["PATH", "HOME", "LANG", "TMPDIR"] { childEnvironment[key] = inherited[key] }
        childEnvironment.merge(environment) { _, new in new }
        process.environment = childEnvironment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        try process.run()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    public var pid: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }

    public func signal(_ signal: Int32) {
        if process.isRunning { kill(process.processIdentifier, signal) }
    }

    public var standardOutput: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    public var standardError: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// Waits for the process to exit.
    /// - Returns: the exit status, or nil if it was still running after `timeout`.
    public func waitForExit(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return process.terminationStatus
    }

    /// Waits until standard output or standard error contains `text`.
    public func waitForOutput(containing text: String, timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while true {
            if standardError.contains(text) || standardOutput.contains(text) { return }
            if !process.isRunning {
                throw ChildProcessError(reason: "\(name) exited (\(process.terminationStatus)) before printing '\(text)'; stderr:\n\(standardError)")
            }
            if ContinuousClock.now >= deadline {
                throw ChildProcessError(reason: "\(name) did not print '\(text)' within \(timeout); stderr:\n\(standardError)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Runs `product` to completion and returns its exit status and output.
    public static func run(product: String, arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(30)) async throws -> (status: Int32, stdout: String, stderr: String) {
        try await run(executable: try productPath(product), name: product, arguments: arguments, environment: environment, timeout: timeout)
    }

    /// Runs any executable to completion and returns its exit status and output.
    public static func run(executable: String, name product: String, arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(30)) async throws -> (status: Int32, stdout: String, stderr: String) {
        let child = try ChildProcess(executable: executable, name: product, arguments: arguments, environment: environment)
        guard let status = await child.waitForExit(timeout: timeout) else {
            child.signal(SIGKILL)
            throw ChildProcessError(reason: "\(product) \(arguments.joined(separator: " ")) did not finish within \(timeout)")
        }
        return (status, child.standardOutput, child.standardError)
    }
}

public struct ChildProcessError: Error, CustomStringConvertible {
    public let reason: String
    public var description: String { reason }
    public init(reason: String) { self.reason = reason }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it, close).
public func freeLoopbackPort() throws -> Int {
    let socketDescriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard socketDescriptor >= 0 else { throw ChildProcessError(reason: "socket() failed: errno \(errno)") }
    defer { close(socketDescriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socketDescriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw ChildProcessError(reason: "bind() failed: errno \(errno)") }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let named = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socketDescriptor, $0, &length) }
    }
    guard named == 0 else { throw ChildProcessError(reason: "getsockname() failed: errno \(errno)") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// The first of `count` consecutive ports free for TCP and UDP on 127.0.0.1, for a simulated
/// fleet that listens on port+n. A kernel-chosen port (``freeLoopbackPort()``) lies in Linux's
/// ephemeral range, where the ports after it may be any other test's outgoing sockets; these are
/// picked at random below that range (20000…32767) and each is checked by binding it.
public func freeLoopbackPorts(count: Int) throws -> Int {
    for _ in 0..<200 {
        let base = Int.random(in: 20_000...(32_767 - count))
        if (base..<base + count).allSatisfy({ isFreeLoopbackPort($0, type: SOCK_STREAM) && isFreeLoopbackPort($0, type: SOCK_DGRAM) }) {
            return base
        }
    }
    throw ChildProcessError(reason: "found no \(count) consecutive free loopback ports")
}

private func isFreeLoopbackPort(_ port: Int, type: __socket_type) -> Bool {
    let socketDescriptor = socket(AF_INET, Int32(type.rawValue), 0)
    guard socketDescriptor >= 0 else { return false }
    defer { close(socketDescriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socketDescriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    } == 0
}

/// A minimal HTTP GET over a plain socket, for probing admin endpoints without an HTTP client
/// dependency. Returns the status code and body.
public func httpGet(host: String = "127.0.0.1", port: Int, path: String) throws -> (status: Int, body: String) {
    try httpRequest("GET \(path) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n", host: host, port: port, path: path)
}

/// A POST without a body (admin actions such as switching a simulated meter's faults).
public func httpPost(host: String = "127.0.0.1", port: Int, path: String) throws -> (status: Int, body: String) {
    try httpRequest("POST \(path) HTTP/1.1\r\nHost: \(host)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", host: host, port: port, path: path)
}

private func httpRequest(_ head: String, host: String, port: Int, path: String) throws -> (status: Int, body: String) {
    let socketDescriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard socketDescriptor >= 0 else { throw ChildProcessError(reason: "socket() failed") }
    defer { close(socketDescriptor) }
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(socketDescriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr(host)
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socketDescriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { throw ChildProcessError(reason: "connect to \(host):\(port) failed: errno \(errno)") }
    let request = Array(head.utf8)
    _ = request.withUnsafeBytes { send(socketDescriptor, $0.baseAddress, $0.count, 0) }
    var response: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = chunk.withUnsafeMutableBytes { recv(socketDescriptor, $0.baseAddress, $0.count, 0) }
        if count <= 0 { break }
        response.append(contentsOf: chunk[0..<count])
    }
    let text = String(decoding: response, as: UTF8.self)
    guard let statusLine = text.split(separator: "\r\n").first,
          let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "")
    else { throw ChildProcessError(reason: "no HTTP response from \(host):\(port)\(path)") }
    let body = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
    return (status, body)
}

/// Polls `condition` until it holds or `timeout` passes.
public func eventually(timeout: Duration, interval: Duration = .milliseconds(50), _ condition: () throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if (try? condition()) == true { return true }
        try await Task.sleep(for: interval)
    }
    return try condition()
}

/// A request with a JSON body (`PUT /v1/faults` on ims-sim, say).
public func httpSend(method: String, host: String = "127.0.0.1", port: Int, path: String, json: String,
                     headers: [String: String] = [:]) throws -> (status: Int, body: String) {
    let body = Array(json.utf8)
    let extra = headers.map { "\($0.key): \($0.value)\r\n" }.joined()
    return try httpRequest("\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n\(extra)Connection: close\r\n\r\n\(json)",
                           host: host, port: port, path: path)
}
