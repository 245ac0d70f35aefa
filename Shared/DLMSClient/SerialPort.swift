#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Line settings of a serial port.
public struct SerialPortSettings: Hashable, Sendable {
    public enum Parity: String, Hashable, Sendable { case none, even, odd }

    /// The device, e.g. `/dev/ttyUSB0` or a pseudo-terminal in tests.
    public var path: String
    /// Default: 9600.
    public var baudRate: Int
    /// 7 (IEC 62056-21 mode C: 7E1) or 8 (HDLC: 8N1). Default: 8.
    public var dataBits: Int
    /// Default: none.
    public var parity: Parity
    /// Default: 1.
    public var stopBits: Int
    /// Raise DTR (optical heads and some RS-485 converters take power or direction from it). Default: true.
    public var dtr: Bool
    /// Raise RTS. Default: true.
    public var rts: Bool

    public init(path: String, baudRate: Int = 9600, dataBits: Int = 8, parity: Parity = .none, stopBits: Int = 1, dtr: Bool = true, rts: Bool = true) {
        self.path = path
        self.baudRate = baudRate
        self.dataBits = dataBits
        self.parity = parity
        self.stopBits = stopBits
        self.dtr = dtr
        self.rts = rts
    }

    /// 8N1, the HDLC setting.
    public static func hdlc(path: String, baudRate: Int = 9600) -> SerialPortSettings {
        SerialPortSettings(path: path, baudRate: baudRate)
    }

    /// 7E1 at 300 baud, the IEC 62056-21 opening.
    public static func iec21(path: String, baudRate: Int = 300) -> SerialPortSettings {
        SerialPortSettings(path: path, baudRate: baudRate, dataBits: 7, parity: .even)
    }
}

/// termios plumbing for serial ports.
enum SerialPort {
    /// Opens and configures the port (raw mode, non-blocking).
    static func open(_ settings: SerialPortSettings) throws -> CInt {
        let descriptor = Glibc.open(settings.path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw DLMSClientError(code: .connectFailed, step: .connect, reason: "cannot open \(settings.path): \(String(cString: strerror(errno)))")
        }
        do {
            try configure(descriptor, settings)
            return descriptor
        } catch {
            closeDescriptor(descriptor)
            throw error
        }
    }

    static func closeDescriptor(_ descriptor: CInt) {
        _ = Glibc.close(descriptor)
    }

    static func configure(_ descriptor: CInt, _ settings: SerialPortSettings) throws {
        var options = termios()
        guard tcgetattr(descriptor, &options) == 0 else { throw failure("tcgetattr", settings.path) }
        cfmakeraw(&options)
        options.c_cflag |= tcflag_t(CLOCAL | CREAD)
        options.c_cflag &= ~tcflag_t(CSIZE)
        switch settings.dataBits {
        case 7: options.c_cflag |= tcflag_t(CS7)
        case 8: options.c_cflag |= tcflag_t(CS8)
        default: throw DLMSClientError(code: .invalidArgument, step: .connect, reason: "\(settings.dataBits) data bits (7 or 8 supported)")
        }
        switch settings.parity {
        case .none: options.c_cflag &= ~tcflag_t(PARENB)
        case .even: options.c_cflag |= tcflag_t(PARENB); options.c_cflag &= ~tcflag_t(PARODD)
        case .odd: options.c_cflag |= tcflag_t(PARENB | PARODD)
        }
        switch settings.stopBits {
        case 1: options.c_cflag &= ~tcflag_t(CSTOPB)
        case 2: options.c_cflag |= tcflag_t(CSTOPB)
        default: throw DLMSClientError(code: .invalidArgument, step: .connect, reason: "\(settings.stopBits) stop bits (1 or 2 supported)")
        }
        let speed = try speedConstant(settings.baudRate)
        cfsetispeed(&options, speed)
        cfsetospeed(&options, speed)
        guard tcsetattr(descriptor, TCSANOW, &options) == 0 else { throw failure("tcsetattr", settings.path) }
        // Modem lines: pseudo-terminals have none, so failures here are not errors.
        var lines = CInt(TIOCM_DTR)
        _ = ioctl(descriptor, UInt(settings.dtr ? TIOCMBIS : TIOCMBIC), &lines)
        lines = CInt(TIOCM_RTS)
        _ = ioctl(descriptor, UInt(settings.rts ? TIOCMBIS : TIOCMBIC), &lines)
    }

    /// Waits until written bytes left, then applies all settings (mode E: 300 Bd 7E1 → 8N1).
    static func drainAndConfigure(_ descriptor: CInt, _ settings: SerialPortSettings) throws {
        _ = tcdrain(descriptor)
        try configure(descriptor, settings)
    }

    /// Waits until written bytes left, then changes the speed.
    static func drainAndSetBaudRate(_ descriptor: CInt, _ baudRate: Int) throws {
        let speed = try speedConstant(baudRate)
        _ = tcdrain(descriptor)
        var options = termios()
        guard tcgetattr(descriptor, &options) == 0 else { throw failure("tcgetattr", "fd \(descriptor)") }
        cfsetispeed(&options, speed)
        cfsetospeed(&options, speed)
        guard tcsetattr(descriptor, TCSANOW, &options) == 0 else { throw failure("tcsetattr", "fd \(descriptor)") }
    }

    static func speedConstant(_ baudRate: Int) throws -> speed_t {
        switch baudRate {
        case 300: return speed_t(B300)
        case 600: return speed_t(B600)
        case 1200: return speed_t(B1200)
        case 2400: return speed_t(B2400)
        case 4800: return speed_t(B4800)
        case 9600: return speed_t(B9600)
        case 19200: return speed_t(B19200)
        case 38400: return speed_t(B38400)
        case 57600: return speed_t(B57600)
        case 115200: return speed_t(B115200)
        default: throw DLMSClientError(code: .invalidArgument, step: .connect, reason: "unsupported baud rate \(baudRate)")
        }
    }

    private static func failure(_ call: String, _ path: String) -> DLMSClientError {
        DLMSClientError(code: .connectFailed, step: .connect, reason: "\(call) on \(path): \(String(cString: strerror(errno)))")
    }
}
