#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A pseudo-terminal pair standing in for a serial line: the code under test opens
/// `devicePath` as its serial port; the test plays the meter(s) on the master side.
public final class PseudoTerminal: @unchecked Sendable {
    public let devicePath: String
    private let master: CInt
    /// Held open so the line does not hang up between the client's sessions.
    private let keeper: CInt

    public init() throws {
        // posix_openpt/unlockpt/ptsname are hidden by Glibc's module map; these are their
        // Linux implementations: /dev/ptmx, TIOCSPTLCK (unlock), TIOCGPTN (pts number).
        master = open("/dev/ptmx", O_RDWR | O_NOCTTY)
        guard master >= 0 else { throw PseudoTerminalError("open /dev/ptmx: \(errno)") }
        var unlock: CInt = 0
        var number: CUnsignedInt = 0
        guard ioctl(master, 0x4004_5431, &unlock) == 0, ioctl(master, 0x8004_5430, &number) == 0 else {
            close(master)
            throw PseudoTerminalError("pty ioctl: \(errno)")
        }
        devicePath = "/dev/pts/\(number)"
        keeper = open(devicePath, O_RDWR | O_NOCTTY | O_NONBLOCK)
        guard keeper >= 0 else { throw PseudoTerminalError("open \(devicePath): \(errno)") }
        var options = termios()
        tcgetattr(keeper, &options)
        cfmakeraw(&options)
        tcsetattr(keeper, TCSANOW, &options)
    }

    deinit {
        close(keeper)
        close(master)
    }

    /// Writes bytes as the meter.
    public func write(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(master, $0.baseAddress, $0.count) }
            if written <= 0 { return }
            offset += written
        }
    }

    public func write(_ text: String) { write(Array(text.utf8)) }

    /// Reads until `terminator` has arrived (returning everything up to and including it), or
    /// `nil` at the timeout.
    ///
    /// - Parameter trailing: bytes that belong to the message after the terminator (the BCC
    ///   after an IEC 62056-21 ETX).
    public func read(until terminator: [UInt8], trailing: Int = 0, timeout: Duration) -> [UInt8]? {
        var collected: [UInt8] = []
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let range = collected.firstRange(of: terminator), collected.count >= range.upperBound + trailing {
                return Array(collected[..<(range.upperBound + trailing)])
            }
            guard let chunk = read(timeout: deadline - ContinuousClock.now) else { continue }
            collected += chunk
        }
        return nil
    }

    /// Reads whatever arrives within `timeout`; `nil` when nothing did.
    public func read(timeout: Duration) -> [UInt8]? {
        var descriptor = pollfd(fd: master, events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(max(1, timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000))
        guard poll(&descriptor, 1, milliseconds) > 0 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { Glibc.read(master, $0.baseAddress, $0.count) }
        return count > 0 ? Array(buffer[..<count]) : nil
    }

    /// Runs the meter side on its own thread.
    public func serve(_ body: @escaping @Sendable (PseudoTerminal) -> Void) {
        Thread.detachNewThread { body(self) }
    }
}

public struct PseudoTerminalError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
