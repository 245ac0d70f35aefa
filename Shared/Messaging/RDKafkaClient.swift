import CRdKafka
import Logging
import Observability
import Synchronization

/// Owns one librdkafka handle (`rd_kafka_t`) and destroys it in `deinit`.
///
/// librdkafka handles are thread-safe; blocking calls on them are made only from the owner's
/// ``KafkaPollThread``, never from Swift's cooperative pool.
final class RDKafkaClient: @unchecked Sendable {
    enum Kind {
        case producer
        case consumer
    }

    let handle: OpaquePointer
    let context: RDKafkaContext

    /// Creates a handle from `properties` (applied in order) with callbacks routed to `context`.
    init(kind: Kind, properties: [(String, String)], context: RDKafkaContext, callbacks: Callbacks = []) throws {
        let configuration = rd_kafka_conf_new()!
        var errorText = [CChar](repeating: 0, count: 512)
        for (name, value) in properties {
            let result = rd_kafka_conf_set(configuration, name, value, &errorText, errorText.count)
            guard result == RD_KAFKA_CONF_OK else {
                rd_kafka_conf_destroy(configuration)
                throw KafkaError.configuration("property \(name)=\(value): \(Self.string(errorText))")
            }
        }
        rd_kafka_conf_set_opaque(configuration, Unmanaged.passUnretained(context).toOpaque())
        rd_kafka_conf_set_log_cb(configuration, rdKafkaLogCallback)
        rd_kafka_conf_set_error_cb(configuration, rdKafkaErrorCallback)
        if callbacks.contains(.delivery) { rd_kafka_conf_set_dr_msg_cb(configuration, rdKafkaDeliveryCallback) }
        if callbacks.contains(.rebalance) { rd_kafka_conf_set_rebalance_cb(configuration, rdKafkaRebalanceCallback) }

        let type = kind == .producer ? RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER
        // On success rd_kafka_new takes ownership of the configuration.
        guard let handle = rd_kafka_new(type, configuration, &errorText, errorText.count) else {
            rd_kafka_conf_destroy(configuration)
            throw KafkaError.clientCreation(Self.string(errorText))
        }
        self.handle = handle
        self.context = context
    }

    deinit {
        rd_kafka_destroy(handle)
    }

    struct Callbacks: OptionSet {
        let rawValue: Int
        static let delivery = Callbacks(rawValue: 1)
        static let rebalance = Callbacks(rawValue: 2)
    }

    static func string(_ buffer: [CChar]) -> String {
        buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}

/// What librdkafka's callbacks reach through the handle's opaque pointer. It outlives the handle
/// (``RDKafkaClient`` holds it and destroys the handle first).
final class RDKafkaContext: @unchecked Sendable {
    let logger: Logger
    /// Called on the consumer's poll thread from within `rd_kafka_consumer_poll`.
    var rebalanceHandler: (@Sendable (OpaquePointer, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> Void)?
    private let fatal = Mutex<KafkaError?>(nil)

    init(logger: Logger) {
        self.logger = logger
    }

    /// The fatal error the handle raised, if any.
    var fatalError: KafkaError? { fatal.withLock { $0 } }

    fileprivate func recordFatal(_ error: KafkaError) {
        fatal.withLock { if $0 == nil { $0 = error } }
    }

    static func from(_ opaque: UnsafeMutableRawPointer?) -> RDKafkaContext? {
        opaque.map { Unmanaged<RDKafkaContext>.fromOpaque($0).takeUnretainedValue() }
    }
}

/// Per-message delivery state passed as the message opaque (`_private`).
final class DeliveryBox: @unchecked Sendable {
    // Written once before the message is enqueued, read once by the delivery callback.
    var continuation: CheckedContinuation<KafkaDeliveryReport, any Error>?
}

// MARK: - C callbacks

private let rdKafkaLogCallback: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Void = {
    handle, level, facility, text in
    guard let handle, let context = RDKafkaContext.from(rd_kafka_opaque(handle)) else { return }
    let logLevel: Logger.Level
    switch level {
    case ...2: logLevel = .critical
    case 3, 4: logLevel = .warning
    case 5: logLevel = .notice
    case 6: logLevel = .info
    default: logLevel = .debug
    }
    context.logger.log(
        level: logLevel, "librdkafka: \(text.map { String(cString: $0) } ?? "")",
        metadata: [LogMetadataKey.kafkaFacility: "\(facility.map { String(cString: $0) } ?? "")"])
}

private let rdKafkaErrorCallback: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void = {
    handle, code, reason, opaque in
    guard let handle, let context = RDKafkaContext.from(opaque) else { return }
    let errorCode = rd_kafka_resp_err_t(rawValue: code)
    let reasonText = reason.map { String(cString: $0) } ?? ""
    if errorCode == RD_KAFKA_RESP_ERR__FATAL, let fatal = KafkaError.fatalError(of: handle) {
        context.recordFatal(fatal)
        context.logger.critical("Kafka client failed fatally", metadata: [LogMetadataKey.error: "\(fatal)"])
        return
    }
    let error = KafkaError.rdKafka(errorCode, reasonText)
    if error.isRetriable {
        // librdkafka reconnects and retries by itself; say so, the operator sees why it stalls.
        context.logger.warning(
            "Kafka broker unreachable or failing, retrying", metadata: [LogMetadataKey.error: "\(error)"])
    } else {
        context.logger.error("Kafka client error", metadata: [LogMetadataKey.error: "\(error)"])
    }
}

private let rdKafkaDeliveryCallback: @convention(c) (OpaquePointer?, UnsafePointer<rd_kafka_message_t>?, UnsafeMutableRawPointer?) -> Void = {
    handle, message, opaque in
    guard let message, let messageOpaque = message.pointee._private else { return }
    let box = Unmanaged<DeliveryBox>.fromOpaque(messageOpaque).takeRetainedValue()
    guard let continuation = box.continuation else { return }
    box.continuation = nil
    let topic = message.pointee.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
    let error = message.pointee.err
    if error == RD_KAFKA_RESP_ERR_NO_ERROR {
        continuation.resume(
            returning: KafkaDeliveryReport(topic: topic, partition: message.pointee.partition, offset: message.pointee.offset))
    } else if error == RD_KAFKA_RESP_ERR__FATAL, let handle, let fatal = KafkaError.fatalError(of: handle) {
        continuation.resume(throwing: fatal)
    } else {
        continuation.resume(throwing: KafkaError.rdKafka(error, "delivery to \(topic) failed"))
    }
}

private let rdKafkaRebalanceCallback: @convention(c) (OpaquePointer?, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?, UnsafeMutableRawPointer?) -> Void = {
    handle, code, partitions, opaque in
    guard let handle, let partitions else { return }
    guard let context = RDKafkaContext.from(opaque), let handler = context.rebalanceHandler else {
        // Nobody to tell: keep librdkafka's state consistent like its default handler would.
        if code == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS { rd_kafka_assign(handle, partitions) } else { rd_kafka_assign(handle, nil) }
        return
    }
    handler(handle, code, partitions)
}

// MARK: - Partition lists

extension RDKafkaClient {
    /// Copies a librdkafka partition list into Swift values.
    static func topicPartitions(_ list: UnsafePointer<rd_kafka_topic_partition_list_t>) -> [(KafkaTopicPartition, Int64, rd_kafka_resp_err_t)] {
        var result: [(KafkaTopicPartition, Int64, rd_kafka_resp_err_t)] = []
        let count = Int(list.pointee.cnt)
        result.reserveCapacity(count)
        for index in 0..<count {
            let element = list.pointee.elems[index]
            result.append((
                KafkaTopicPartition(topic: String(cString: element.topic), partition: element.partition),
                element.offset, element.err))
        }
        return result
    }

    /// Calls `body` with a temporary librdkafka partition list holding `partitions` (and offsets).
    static func withPartitionList<R>(
        _ partitions: [(KafkaTopicPartition, Int64)], _ body: (UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) throws -> R
    ) rethrows -> R {
        let list = rd_kafka_topic_partition_list_new(Int32(partitions.count))!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for (partition, offset) in partitions {
            let element = rd_kafka_topic_partition_list_add(list, partition.topic, partition.partition)!
            element.pointee.offset = offset
        }
        return try body(list)
    }
}
