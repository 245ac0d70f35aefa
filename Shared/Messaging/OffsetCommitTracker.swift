import NIOCore

/// Contiguous-commit bookkeeping for a consumer: per partition, messages are handed out in offset
/// order and may finish in any order; the offset that may be committed is the lowest offset not
/// yet finished (Kafka's "next offset to read"), so a crash never skips unfinished work.
///
/// A pure value: the consumer feeds it events (`assign`, `received`, `finished`, `committed`,
/// `revoke`) and asks it what to commit. Each assignment of a partition gets a new
/// ``Generation``; finishes that carry an older generation belong to work the consumer no longer
/// owns and are ignored.
public struct OffsetCommitTracker: Sendable {
    public typealias Generation = UInt64

    struct PartitionState: Sendable {
        let generation: Generation
        /// Offsets handed out and not yet below the contiguous-finished mark, ascending. The
        /// first element, if any, is unfinished.
        var outstanding = CircularBuffer<Int64>()
        /// Finished offsets still in `outstanding` (finished out of order).
        var finishedAhead = Set<Int64>()
        /// Highest offset handed out plus one.
        var nextOffset: Int64?
        /// Where this assignment should start: the group's committed offset, when known.
        var expectedOffset: Int64?
        /// The last offset committed (or, before the first commit, the first offset received,
        /// which the group's committed offset already covers).
        var committedOffset: Int64?

        /// Lowest unfinished offset, or one past the highest finished when all are finished.
        var commitOffset: Int64? { outstanding.first ?? nextOffset }
        var unfinishedCount: Int { outstanding.count - finishedAhead.count }

        // Mutated in place through the dictionary (`partitions[p]?.…`): copying the state out
        // and back would copy its buffers on every message.

        mutating func receive(_ offset: Int64) -> Generation? {
            if let next = nextOffset, offset < next { return nil }
            if committedOffset == nil { committedOffset = offset }
            outstanding.append(offset)
            nextOffset = offset + 1
            return generation
        }

        mutating func finish(_ offset: Int64, generation: Generation) -> Bool {
            guard self.generation == generation, let first = outstanding.first, offset >= first,
                  let next = nextOffset, offset < next, !finishedAhead.contains(offset)
            else { return false }
            if offset == first {
                outstanding.removeFirst()
                while let head = outstanding.first, finishedAhead.remove(head) != nil {
                    outstanding.removeFirst()
                }
            } else {
                // Offsets may have gaps (compaction, control records): only count ones handed out.
                guard OffsetCommitTracker.contains(outstanding, offset) else { return false }
                finishedAhead.insert(offset)
            }
            return true
        }

        mutating func commit(_ offset: Int64) {
            if let current = committedOffset, current >= offset { return }
            committedOffset = offset
        }
    }

    private var partitions: [KafkaTopicPartition: PartitionState] = [:]
    private var lastGeneration: Generation = 0

    public init() {}

    // MARK: - Assignment

    /// Starts fresh state for `partition` (a new assignment); any earlier state is discarded.
    /// - Returns: the generation of the new assignment.
    @discardableResult
    public mutating func assign(_ partition: KafkaTopicPartition) -> Generation {
        lastGeneration += 1
        partitions[partition] = PartitionState(generation: lastGeneration)
        return lastGeneration
    }

    /// Forgets `partition`; in-flight work of it will never be committed by this tracker.
    /// - Returns: the offset still to commit for it (finished work not yet committed), if any.
    @discardableResult
    public mutating func revoke(_ partition: KafkaTopicPartition) -> Int64? {
        let pending = pendingCommitOffset(for: partition)
        partitions[partition] = nil
        return pending
    }

    /// The partitions currently assigned.
    public var assignedPartitions: [KafkaTopicPartition] { partitions.keys.sorted() }

    /// The generation of the current assignment of `partition`, if assigned.
    public func generation(of partition: KafkaTopicPartition) -> Generation? { partitions[partition]?.generation }

    /// Records where reading `partition` should start (the group's committed offset), so a
    /// first message beyond it shows that the log lost what lay between.
    public mutating func expect(_ offset: Int64, in partition: KafkaTopicPartition) {
        guard partitions[partition]?.nextOffset == nil else { return }
        partitions[partition]?.expectedOffset = offset
    }

    /// How many offsets lie between what `partition` should deliver next and `offset`, a message
    /// that just arrived: 0 normally; more when the log no longer holds them (retention, a size
    /// limit) and the consumer's position jumped past them. The topics carry neither compaction
    /// nor transactions, so their offsets have no holes of their own.
    public func missing(before offset: Int64, in partition: KafkaTopicPartition) -> Int64 {
        guard let state = partitions[partition], let next = state.nextOffset ?? state.expectedOffset else { return 0 }
        return max(0, offset - next)
    }

    // MARK: - Progress

    /// Records that the message at `offset` was handed out for processing.
    /// - Returns: the generation to finish it with, or `nil` if the partition is not assigned or
    ///   the offset is not beyond everything already handed out (a duplicate to drop).
    public mutating func received(offset: Int64, in partition: KafkaTopicPartition) -> Generation? {
        partitions[partition]?.receive(offset) ?? nil
    }

    /// Records that the work of the message at `offset` is done.
    /// - Returns: `false` if the mark was ignored (partition revoked or reassigned since, offset
    ///   never handed out, or already finished).
    @discardableResult
    public mutating func finished(offset: Int64, in partition: KafkaTopicPartition, generation: Generation) -> Bool {
        partitions[partition]?.finish(offset, generation: generation) ?? false
    }

    /// Records a successful commit of `offset` for `partition`.
    public mutating func committed(offset: Int64, in partition: KafkaTopicPartition) {
        partitions[partition]?.commit(offset)
    }

    // MARK: - Queries

    /// The offset below which every handed-out message of `partition` is finished (the next
    /// offset to read, as Kafka commits it), or `nil` if nothing was handed out yet.
    public func commitOffset(for partition: KafkaTopicPartition) -> Int64? {
        partitions[partition]?.commitOffset
    }

    /// ``commitOffset(for:)`` if it is beyond what was already committed, else `nil`.
    public func pendingCommitOffset(for partition: KafkaTopicPartition) -> Int64? {
        guard let state = partitions[partition], let offset = state.commitOffset else { return nil }
        if let committed = state.committedOffset, committed >= offset { return nil }
        return offset
    }

    /// Every partition with finished work not yet committed, with the offset to commit.
    public var pendingCommits: [KafkaTopicPartition: Int64] {
        var result: [KafkaTopicPartition: Int64] = [:]
        for partition in partitions.keys {
            if let offset = pendingCommitOffset(for: partition) { result[partition] = offset }
        }
        return result
    }

    /// How many messages of `partition` are not done yet, given its high watermark (the offset
    /// the next produced message gets): everything from the first unfinished message (or the
    /// next to read, or the group's committed offset before anything was read) up to the end of
    /// the log. `nil` if the partition is not assigned or no position is known yet.
    public func lag(of partition: KafkaTopicPartition, highWatermark: Int64) -> Int64? {
        guard let state = partitions[partition], let base = state.commitOffset ?? state.committedOffset ?? state.expectedOffset else { return nil }
        return max(0, highWatermark - base)
    }

    /// Messages of `partition` handed out and not finished.
    public func unfinishedCount(for partition: KafkaTopicPartition) -> Int {
        partitions[partition]?.unfinishedCount ?? 0
    }

    /// Messages handed out and not finished, over all partitions.
    public var unfinishedCount: Int { partitions.values.reduce(0) { $0 + $1.unfinishedCount } }

    fileprivate static func contains(_ buffer: CircularBuffer<Int64>, _ offset: Int64) -> Bool {
        // `outstanding` is ascending: binary search.
        var low = buffer.startIndex
        var count = buffer.count
        while count > 0 {
            let half = count / 2
            let middle = buffer.index(low, offsetBy: half)
            if buffer[middle] < offset {
                low = buffer.index(after: middle)
                count -= half + 1
            } else {
                count = half
            }
        }
        return low != buffer.endIndex && buffer[low] == offset
    }
}
