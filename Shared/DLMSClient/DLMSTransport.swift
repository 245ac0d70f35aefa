import NIOCore

/// A byte pipe to one meter (or one multi-drop line): a TCP connection, a connected UDP
/// socket, a serial port. The framing above (wrapper, HDLC) gives the bytes meaning.
///
/// Stream transports return whatever arrived; datagram transports return one datagram per
/// `receive`. Stream framers treat both the same way.
public protocol DLMSTransport: AnyObject, Sendable {
    /// Whether the transport may lose or duplicate whole messages (UDP): then the session
    /// repeats a request whose answer did not arrive in time.
    var isDatagram: Bool { get }

    /// Writes the bytes; returns when they were handed to the operating system.
    func send(_ bytes: ByteBuffer) async throws

    /// The next bytes received, or `nil` when `deadline` passed first.
    ///
    /// - Throws: `DLMSClientError` with code `.connectionClosed` once the peer closed or the
    ///   transport failed.
    func receive(until deadline: NIODeadline) async throws -> ByteBuffer?

    /// Throws away bytes already received and not yet read (before a new exchange on a line
    /// that may carry leftovers of a previous meter's answer).
    func discardPending() async

    /// Closes the transport. Idempotent.
    func close() async
}

extension TimeAmount {
    /// The same span as a NIO time amount (timeouts are configured as `Duration`).
    init(_ duration: Duration) {
        self = .nanoseconds(duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }
}
