#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import Metrics
import NIOCore
import Observability
import Synchronization

/// One serial line of simulated meters: a pseudo-terminal meter-sim creates (clients open its
/// slave, `devicePath`, found through the optional symbolic link) or a real serial device.
/// The line's `MeterBus` runs on a thread of its own, where blocking `poll`/`read`/`write`
/// and the pacing sleeps belong; it stops when `stop()` is called.
///
/// Pacing: a UART sends one character per 10 bit times (start, 7 or 8 data, parity or not,
/// stop), so writes go out in slices of about 10 ms at the rate the bus says. A client frame
/// that arrives while a meter is still transmitting is contention on a half-duplex line: the
/// transmission is cut off, the incoming bytes are lost, and it is reported.
final class SerialLine: @unchecked Sendable {
    let name: String
    /// What clients open: the pseudo-terminal's slave (`/dev/pts/N`) or the device.
    let devicePath: String
    /// The symbolic link to `devicePath`, if one was asked for.
    let linkPath: String?
    private let descriptor: CInt
    /// Pseudo-terminals: the slave held open so the line does not hang up between clients.
    private let keeper: CInt?
    private let paces: Bool
    private let logger: Logger
    private let contentions: Counter
    private let stopped = Atomic<Bool>(false)
    private let finished = Mutex<Bool>(false)
    // Only touched on the line's thread after `start()`.
    private var bus: MeterBus

    /// Creates a pseudo-terminal for `bus`, linked from `linkPath` if given.
    init(pseudoTerminalFor bus: MeterBus, linkPath: String?, paces: Bool, contentions: Counter, logger: Logger) throws {
        // posix_openpt/unlockpt/ptsname are hidden by Glibc's module map; these are their Linux
        // implementations: /dev/ptmx, TIOCSPTLCK (unlock), TIOCGPTN (pts number).
        let master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)
        guard master >= 0 else { throw MeterSimError("line \(bus.name): cannot open /dev/ptmx: \(String(cString: strerror(errno)))") }
        var unlock: CInt = 0
        var number: CUnsignedInt = 0
        guard ioctl(master, 0x4004_5431, &unlock) == 0, ioctl(master, 0x8004_5430, &number) == 0 else {
            close(master)
            throw MeterSimError("line \(bus.name): pseudo-terminal ioctl failed: \(String(cString: strerror(errno)))")
        }
        let slave = "/dev/pts/\(number)"
        let keeper = open(slave, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)
        guard keeper >= 0 else {
            close(master)
            throw MeterSimError("line \(bus.name): cannot open \(slave): \(String(cString: strerror(errno)))")
        }
        var options = termios()
        tcgetattr(keeper, &options)
        cfmakeraw(&options)
        tcsetattr(keeper, TCSANOW, &options)
        if let linkPath {
            if (try? FileManager.default.destinationOfSymbolicLink(atPath: linkPath)) != nil { unlink(linkPath) }
            guard symlink(slave, linkPath) == 0 else {
                close(keeper)
                close(master)
                throw MeterSimError("line \(bus.name): cannot link \(linkPath) → \(slave): \(String(cString: strerror(errno)))")
            }
        }
        self.name = bus.name
        self.devicePath = slave
        self.linkPath = linkPath
        self.descriptor = master
        self.keeper = keeper
        self.paces = paces
        self.logger = logger
        self.contentions = contentions
        self.bus = bus
    }

    /// Opens a real serial device (raw, 8N1 at the bus's rate) for `bus`.
    init(device path: String, bus: MeterBus, paces: Bool, contentions: Counter, logger: Logger) throws {
        let descriptor = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else { throw MeterSimError("line \(bus.name): cannot open \(path): \(String(cString: strerror(errno)))") }
        var options = termios()
        guard tcgetattr(descriptor, &options) == 0 else {
            close(descriptor)
            throw MeterSimError("line \(bus.name): \(path) is not a serial port")
        }
        cfmakeraw(&options)
        options.c_cflag |= tcflag_t(CLOCAL | CREAD)
        tcsetattr(descriptor, TCSANOW, &options)
        self.name = bus.name
        self.devicePath = path
        self.linkPath = nil
        self.descriptor = descriptor
        self.keeper = nil
        self.paces = paces
        self.logger = logger
        self.contentions = contentions
        self.bus = bus
        Self.setSpeed(descriptor, bus.baudRate)
    }

    /// Starts serving on a thread of its own.
    func start() {
        for (address, serials) in bus.sharedAddresses {
            logger.warning("line \(name): meters \(serials.joined(separator: ", ")) share HDLC physical address \(address); their answers will collide")
        }
        Thread.detachNewThread { [self] in
            serve()
            finished.withLock { $0 = true }
        }
    }

    /// Stops the thread, closes the line and removes the link.
    func stop() {
        stopped.store(true, ordering: .relaxed)
        let deadline = ContinuousClock.now + .seconds(2)
        while !finished.withLock({ $0 }) && ContinuousClock.now < deadline { usleep(10_000) }
        if let linkPath { unlink(linkPath) }
        if let keeper { close(keeper) }
        close(descriptor)
    }

    // MARK: - The line's thread

    private func serve() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !stopped.load(ordering: .relaxed) {
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, 50)
            let now = ContinuousClock.now
            if ready > 0, poller.revents & Int16(POLLIN) != 0 {
                let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count > 0 {
                    perform(bus.receive(ByteBuffer(bytes: buffer[..<count]), now: now))
                    continue
                }
            }
            if ready > 0, poller.revents & Int16(POLLHUP | POLLERR) != 0 { usleep(20_000) }
            perform(bus.tick(now: now))
        }
    }

    private func perform(_ output: MeterBus.Output) {
        if let contention = output.contention { report(contention) }
        for operation in output.operations {
            switch operation {
            case .write(let bytes, let rate):
                guard transmit(Array(bytes.readableBytesView), baudRate: rate) else { return }
            case .setBaudRate(let rate):
                if keeper == nil { Self.setSpeed(descriptor, rate) }
            }
        }
    }

    private func report(_ contention: String) {
        contentions.increment()
        logger.error("bus contention on line \(name): \(contention)", metadata: [LogMetadataKey.lineID: "\(name)"])
    }

    /// Writes `bytes`, paced at `baudRate` when the line paces; false when a client frame cut
    /// the transmission short.
    private func transmit(_ bytes: [UInt8], baudRate: Int) -> Bool {
        guard paces else {
            writeAll(bytes[...])
            return true
        }
        // 10 bit times per character; slices of ~10 ms.
        let slice = max(1, baudRate / 1000)
        let sliceTime = Duration.nanoseconds(Int64(slice) * 10 * 1_000_000_000 / Int64(baudRate))
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + slice)
            let started = ContinuousClock.now
            writeAll(bytes[offset..<end])
            offset = end
            let remaining = sliceTime - (ContinuousClock.now - started)
            if remaining > .zero { Thread.sleep(forTimeInterval: Double(remaining.components.attoseconds) / 1e18 + Double(remaining.components.seconds)) }
            if offset < bytes.count, inputPending() {
                var scratch = [UInt8](repeating: 0, count: 4096)
                let lost = scratch.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                report("a frame (\(max(lost, 0)) byte(s)) arrived while a meter was still transmitting (\(offset) of \(bytes.count) bytes sent); both are lost")
                return false
            }
        }
        return true
    }

    private func inputPending() -> Bool {
        var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        return poll(&poller, 1, 0) > 0 && poller.revents & Int16(POLLIN) != 0
    }

    /// Writes everything, waiting up to a second for room (a client that stopped reading).
    private func writeAll(_ bytes: ArraySlice<UInt8>) {
        var offset = bytes.startIndex
        let deadline = ContinuousClock.now + .seconds(1)
        while offset < bytes.endIndex {
            let written = bytes[offset...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if written > 0 {
                offset += written
                continue
            }
            guard errno == EAGAIN || errno == EINTR, ContinuousClock.now < deadline else { return }
            var poller = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
            _ = poll(&poller, 1, 10)
        }
    }

    static func setSpeed(_ descriptor: CInt, _ baudRate: Int) {
        let speeds: [Int: Int32] = [300: B300, 600: B600, 1200: B1200, 2400: B2400, 4800: B4800, 9600: B9600,
                                    19200: B19200, 38400: B38400, 57600: B57600, 115200: B115200]
        guard let speed = speeds[baudRate] else { return }
        var options = termios()
        guard tcgetattr(descriptor, &options) == 0 else { return }
        _ = tcdrain(descriptor)
        cfsetispeed(&options, speed_t(speed))
        cfsetospeed(&options, speed_t(speed))
        tcsetattr(descriptor, TCSANOW, &options)
    }
}
