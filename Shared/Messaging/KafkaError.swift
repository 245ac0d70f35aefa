import CRdKafka

/// An error from the Kafka binding: a librdkafka error, a configuration problem, or a client that
/// was already shut down.
///
/// `==` compares ``code`` only, so tests and callers can match on `error.code == .allBrokersDown`
/// regardless of the reason text or where the error was raised.
public struct KafkaError: Error, Hashable, CustomStringConvertible, Sendable {
    /// What went wrong, as a closed set of library errors plus every librdkafka error code.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Backing: Hashable, Sendable {
            /// An `rd_kafka_resp_err_t` value.
            case librdkafka(Int32)
            case configuration
            case clientCreation
            case shutdown
            case mockCluster
        }

        fileprivate let backing: Backing

        /// A property was rejected by librdkafka (unknown name, invalid value).
        public static let configuration = Code(backing: .configuration)
        /// librdkafka could not create the client handle.
        public static let clientCreation = Code(backing: .clientCreation)
        /// The client was already shut down (closed, flushed) when the call was made.
        public static let shutdown = Code(backing: .shutdown)
        /// The mock cluster could not be created or configured.
        public static let mockCluster = Code(backing: .mockCluster)

        /// Broker transport failure (connection refused, reset, …); librdkafka reconnects.
        public static let transport = Code(rdKafka: RD_KAFKA_RESP_ERR__TRANSPORT)
        /// No broker is reachable; librdkafka keeps reconnecting.
        public static let allBrokersDown = Code(rdKafka: RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        /// A local operation (flush, metadata, commit) did not complete in time.
        public static let timedOut = Code(rdKafka: RD_KAFKA_RESP_ERR__TIMED_OUT)
        /// A message was not acknowledged within `message.timeout.ms`.
        public static let messageTimedOut = Code(rdKafka: RD_KAFKA_RESP_ERR__MSG_TIMED_OUT)
        /// The local producer queue is full.
        public static let queueFull = Code(rdKafka: RD_KAFKA_RESP_ERR__QUEUE_FULL)
        /// The topic or partition does not exist.
        public static let unknownTopicOrPartition = Code(rdKafka: RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
        /// A message is larger than the broker or client allows.
        public static let messageSizeTooLarge = Code(rdKafka: RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)
        /// The consumer group is rebalancing (e.g. an offset commit was refused).
        public static let rebalanceInProgress = Code(rdKafka: RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS)
        /// The client raised a fatal error (see ``KafkaError/isFatal``); it must be recreated.
        public static let fatal = Code(rdKafka: RD_KAFKA_RESP_ERR__FATAL)

        init(rdKafka error: rd_kafka_resp_err_t) {
            backing = .librdkafka(error.rawValue)
        }

        private init(backing: Backing) {
            self.backing = backing
        }

        /// The librdkafka error code (`rd_kafka_resp_err_t`), if the error came from librdkafka.
        public var librdkafkaCode: Int32? {
            if case .librdkafka(let raw) = backing { return raw }
            return nil
        }

        public var description: String {
            switch backing {
            case .librdkafka(let raw): return String(cString: rd_kafka_err2name(rd_kafka_resp_err_t(rawValue: raw)))
            case .configuration: return "configuration"
            case .clientCreation: return "clientCreation"
            case .shutdown: return "shutdown"
            case .mockCluster: return "mockCluster"
            }
        }
    }

    public let code: Code
    /// A human-readable explanation (librdkafka's text plus context).
    public let reason: String
    /// Whether the client is unusable after this error (librdkafka's `rd_kafka_fatal_error`, e.g.
    /// an idempotent producer whose sequence state broke). Fatal errors are never retriable.
    public let isFatal: Bool
    public let file: String
    public let line: UInt

    init(code: Code, reason: String, isFatal: Bool = false, file: String = #fileID, line: UInt = #line) {
        self.code = code
        self.reason = reason
        self.isFatal = isFatal
        self.file = file
        self.line = line
    }

    /// Whether the same operation may succeed if tried again later (broker down, timeout,
    /// leader change, full queue, rebalance). Derived from the librdkafka error code.
    public var isRetriable: Bool {
        guard !isFatal, let raw = code.librdkafkaCode else { return false }
        return Self.retriableCodes.contains(raw)
    }

    public var description: String {
        "KafkaError.\(code)\(isFatal ? " (fatal)" : ""): \(reason) [\(file):\(line)]"
    }

    public static func == (lhs: KafkaError, rhs: KafkaError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    // MARK: - Factories

    static func configuration(_ reason: String, file: String = #fileID, line: UInt = #line) -> KafkaError {
        KafkaError(code: .configuration, reason: reason, file: file, line: line)
    }

    static func clientCreation(_ reason: String, file: String = #fileID, line: UInt = #line) -> KafkaError {
        KafkaError(code: .clientCreation, reason: reason, file: file, line: line)
    }

    static func shutdown(_ reason: String, file: String = #fileID, line: UInt = #line) -> KafkaError {
        KafkaError(code: .shutdown, reason: reason, file: file, line: line)
    }

    static func mockCluster(_ reason: String, file: String = #fileID, line: UInt = #line) -> KafkaError {
        KafkaError(code: .mockCluster, reason: reason, file: file, line: line)
    }

    /// An error from a librdkafka response code, with librdkafka's description appended to
    /// `context`.
    static func rdKafka(
        _ error: rd_kafka_resp_err_t, _ context: String, isFatal: Bool = false,
        file: String = #fileID, line: UInt = #line
    ) -> KafkaError {
        let text = String(cString: rd_kafka_err2str(error))
        return KafkaError(
            code: Code(rdKafka: error), reason: "\(context): \(text)", isFatal: isFatal || error == RD_KAFKA_RESP_ERR__FATAL,
            file: file, line: line)
    }

    /// Takes ownership of an `rd_kafka_error_t` and destroys it.
    static func rdKafka(
        consuming error: OpaquePointer, _ context: String, file: String = #fileID, line: UInt = #line
    ) -> KafkaError {
        defer { rd_kafka_error_destroy(error) }
        let code = rd_kafka_error_code(error)
        let text = String(cString: rd_kafka_error_string(error))
        return KafkaError(
            code: Code(rdKafka: code), reason: "\(context): \(text)", isFatal: rd_kafka_error_is_fatal(error) != 0,
            file: file, line: line)
    }

    /// The fatal error a client raised, if any (`rd_kafka_fatal_error`).
    static func fatalError(of handle: OpaquePointer, file: String = #fileID, line: UInt = #line) -> KafkaError? {
        var buffer = [CChar](repeating: 0, count: 512)
        let code = rd_kafka_fatal_error(handle, &buffer, buffer.count)
        guard code != RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        let text = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return KafkaError(code: Code(rdKafka: code), reason: "fatal client error: \(text)", isFatal: true, file: file, line: line)
    }

    // Errors after which librdkafka (or the caller) can expect a later attempt to succeed.
    private static let retriableCodes: Set<Int32> = Set([
        RD_KAFKA_RESP_ERR__TRANSPORT,
        RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN,
        RD_KAFKA_RESP_ERR__TIMED_OUT,
        RD_KAFKA_RESP_ERR__MSG_TIMED_OUT,
        RD_KAFKA_RESP_ERR__QUEUE_FULL,
        RD_KAFKA_RESP_ERR__RESOLVE,
        RD_KAFKA_RESP_ERR__WAIT_COORD,
        RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE,
        RD_KAFKA_RESP_ERR__RETRY,
        RD_KAFKA_RESP_ERR__PARTIAL,
        RD_KAFKA_RESP_ERR__OUTDATED,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
        RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION,
        RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
        RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
        RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
        RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS,
        RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR,
        RD_KAFKA_RESP_ERR_FETCH_SESSION_ID_NOT_FOUND,
        RD_KAFKA_RESP_ERR_UNKNOWN_LEADER_EPOCH,
        RD_KAFKA_RESP_ERR_FENCED_LEADER_EPOCH,
        RD_KAFKA_RESP_ERR_OFFSET_NOT_AVAILABLE,
        RD_KAFKA_RESP_ERR_PREFERRED_LEADER_NOT_AVAILABLE,
        RD_KAFKA_RESP_ERR_THROTTLING_QUOTA_EXCEEDED,
        RD_KAFKA_RESP_ERR_UNSTABLE_OFFSET_COMMIT,
    ].map(\.rawValue))
}
