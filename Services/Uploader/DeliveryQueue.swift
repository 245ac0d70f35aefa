import Contracts
import Crypto
import DequeModule
import Messaging
import Synchronization

/// A consumed message waiting for the IMS, with what the uploader needs of it afterwards.
struct PendingDelivery: Sendable {
    var message: KafkaConsumerMessage
    /// The batch id or task id.
    var itemID: String
    var meterID: String
    /// Readings it carries (1 for a result): what request sizes are counted in.
    var weight: Int
    /// For readings: the latest capture time per OBIS code (what `meter_progress` advances to).
    var progress: [String: Double] = [:]
    /// For results: what the command row needs.
    var result: TaskResult?
    /// For readings in CIM mode: the batch, decoded once at intake (the request is written from it).
    var batch: ReadingBatch?

    var byteCount: Int { message.value.count }
}

/// Limits of one IMS request and of what waits for the IMS.
struct DeliveryLimits: Sendable, Hashable {
    /// Readings (or results) per request. Default: 5,000.
    var maxItemsWeight = 5_000
    /// Request body bytes. Default: 4 MiB.
    var maxBytes = 4 << 20
    /// How long the first message of a request may wait for more. Default: 200 ms.
    var maxAge: Duration = .milliseconds(200)
    /// Bytes consumed and not yet delivered, per kind: above it the uploader stops reading Kafka
    /// (its partitions pause too), so an IMS outage does not fill memory. Default: 32 MiB.
    var maxBufferedBytes = 32 << 20
    /// Which buffered messages the next request takes first. Default: oldest.
    var catchUpOrder = CatchUpOrder.oldest
}

/// The order in which a backlog reaches the IMS (after an outage, while the buffer is full).
///
/// Order is by arrival in the uploader (consumption order: offset order within a partition,
/// which is publication order), not by capture time: the batch consumed last is the newest.
/// It only reorders what is buffered (at most `maxBufferedBytes` per kind, and at most the
/// consumer's unfinished messages per partition); what is still in Kafka behind it comes in
/// offset order. Offsets are committed only below what is finished, so either order loses
/// nothing: newest-first delays the commit until the older messages are confirmed too.
enum CatchUpOrder: String, Sendable, CaseIterable {
    /// First consumed, first sent.
    case oldest
    /// Last consumed, first sent: after an outage the IMS gets today's data before yesterday's.
    case newest
}

/// The messages of one kind (readings or results) between Kafka and the IMS: a bounded queue
/// that hands out requests by size and age, oldest or newest first (``CatchUpOrder``). Waiting is by short sleeps (5 ms): it only happens
/// while a request fills or the buffer is full, and keeps the queue free of continuations.
final class DeliveryQueue: Sendable {
    private struct State {
        var items = Deque<PendingDelivery>()
        var bytes = 0
        var weight = 0
        var firstArrival: ContinuousClock.Instant?
        var closed = false
    }

    private let state = Mutex(State())
    let limits: DeliveryLimits
    private static let pollInterval: Duration = .milliseconds(5)

    init(limits: DeliveryLimits) {
        self.limits = limits
    }

    /// Bytes waiting (for metrics and tests).
    var bufferedBytes: Int { state.withLock { $0.bytes } }

    /// Adds a message, waiting while the buffer is full. Returns `false` once closed.
    func push(_ item: PendingDelivery) async -> Bool {
        while true {
            let accepted = state.withLock { state -> Bool? in
                if state.closed { return false }
                guard state.bytes < limits.maxBufferedBytes || state.items.isEmpty else { return nil }
                if state.items.isEmpty { state.firstArrival = .now }
                state.items.append(item)
                state.bytes += item.byteCount
                state.weight += item.weight
                return true
            }
            if let accepted { return accepted }
            do { try await Task.sleep(for: Self.pollInterval) } catch { return false }
        }
    }

    /// No more messages: the senders take what is left and then get `nil`.
    func close() {
        state.withLock { $0.closed = true }
    }

    /// The next request's messages: as many as fit the limits, once the limits are reached, the
    /// oldest waited `maxAge`, or the queue closed; `nil` when closed and empty (or cancelled).
    /// They are the first arrived (``CatchUpOrder/oldest``) or the last (``CatchUpOrder/newest``,
    /// newest first in the request).
    func nextRequest() async -> [PendingDelivery]? {
        while true {
            let taken = state.withLock { state -> [PendingDelivery]?? in
                if state.items.isEmpty { return state.closed ? .some(nil) : nil }
                let full = state.weight >= limits.maxItemsWeight || state.bytes >= limits.maxBytes
                let old = state.firstArrival.map { ContinuousClock.now - $0 >= limits.maxAge } ?? true
                guard full || old || state.closed else { return nil }
                var request: [PendingDelivery] = []
                var bytes = 0, weight = 0
                let newestFirst = limits.catchUpOrder == .newest
                while let next = newestFirst ? state.items.last : state.items.first {
                    if !request.isEmpty, bytes + next.byteCount > limits.maxBytes || weight + next.weight > limits.maxItemsWeight { break }
                    request.append(newestFirst ? state.items.removeLast() : state.items.removeFirst())
                    bytes += next.byteCount
                    weight += next.weight
                }
                state.bytes -= bytes
                state.weight -= weight
                state.firstArrival = state.items.isEmpty ? nil : .now
                return .some(request)
            }
            if let taken { return taken }
            do { try await Task.sleep(for: Self.pollInterval) } catch { return nil }
        }
    }
}

/// The idempotency key of a request: from its messages' coordinates, so the same messages sent
/// again (a retry, or a restarted uploader that batched them the same way) carry the same key.
enum DeliveryKey {
    static func make(kind: String, messages: [KafkaConsumerMessage]) -> String {
        var hasher = SHA256()
        hasher.update(data: Array(kind.utf8))
        for message in messages.sorted(by: { ($0.topic, $0.partition, $0.offset) < ($1.topic, $1.partition, $1.offset) }) {
            hasher.update(data: Array("|\(message.topic)/\(message.partition)/\(message.offset)".utf8))
        }
        let digits = Array("0123456789abcdef".utf8)
        let hex = hasher.finalize().prefix(16).flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0x0F)]] }
        return "\(kind)-" + String(decoding: hex, as: UTF8.self)
    }
}
