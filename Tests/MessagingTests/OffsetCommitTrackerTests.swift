import Messaging
import Testing
import TestSupport

@Suite("OffsetCommitTracker")
struct OffsetCommitTrackerTests {
    let partition = KafkaTopicPartition(topic: "hes.tasks.a", partition: 3)

    @Test("worked example: out-of-order finishes commit only the contiguous prefix")
    func workedExample() throws {
        var tracker = OffsetCommitTracker()
        let generation = tracker.assign(partition)
        for offset in Int64(10)...14 { let outcome = tracker.received(offset: offset, in: partition); #expect(outcome == generation) }
        #expect(tracker.commitOffset(for: partition) == 10)
        #expect(tracker.pendingCommitOffset(for: partition) == nil, "the first offset is already covered by the group")
        do { let outcome = tracker.finished(offset: 12, in: partition, generation: generation); #expect(outcome) }
        do { let outcome = tracker.finished(offset: 11, in: partition, generation: generation); #expect(outcome) }
        #expect(tracker.commitOffset(for: partition) == 10, "10 is still running")
        do { let outcome = tracker.finished(offset: 10, in: partition, generation: generation); #expect(outcome) }
        #expect(tracker.commitOffset(for: partition) == 13, "10, 11, 12 finished: next to read is 13")
        #expect(tracker.pendingCommits == [partition: 13])
        tracker.committed(offset: 13, in: partition)
        #expect(tracker.pendingCommits.isEmpty)
        do { let outcome = tracker.finished(offset: 12, in: partition, generation: generation); #expect(!outcome, "a second finish is ignored") }
        do { let outcome = tracker.finished(offset: 14, in: partition, generation: generation); #expect(outcome) }
        #expect(tracker.unfinishedCount(for: partition) == 1)
        do { let outcome = tracker.finished(offset: 13, in: partition, generation: generation); #expect(outcome) }
        #expect(tracker.commitOffset(for: partition) == 15)
        #expect(tracker.unfinishedCount(for: partition) == 0)
    }

    @Test("lag: from the group's committed offset before anything was read, then from the first unfinished message")
    func lag() {
        var tracker = OffsetCommitTracker()
        #expect(tracker.lag(of: partition, highWatermark: 50) == nil, "not assigned")
        let generation = tracker.assign(partition)
        #expect(tracker.lag(of: partition, highWatermark: 50) == nil, "no position known yet")
        tracker.expect(20, in: partition)
        #expect(tracker.lag(of: partition, highWatermark: 50) == 30)
        for offset in Int64(20)..<25 { _ = tracker.received(offset: offset, in: partition) }
        _ = tracker.finished(offset: 21, in: partition, generation: generation)
        #expect(tracker.lag(of: partition, highWatermark: 50) == 30, "20 is unfinished")
        _ = tracker.finished(offset: 20, in: partition, generation: generation)
        #expect(tracker.lag(of: partition, highWatermark: 50) == 28)
        for offset in Int64(22)..<25 { _ = tracker.finished(offset: offset, in: partition, generation: generation) }
        #expect(tracker.lag(of: partition, highWatermark: 50) == 25, "everything read is done: what is left is unread")
        #expect(tracker.lag(of: partition, highWatermark: 25) == 0)
        #expect(tracker.lag(of: partition, highWatermark: 10) == 0, "a stale watermark never makes it negative")
    }

    @Test("a position that jumped past offsets the log dropped is counted: from the committed offset and between messages")
    func lostOffsets() {
        var tracker = OffsetCommitTracker()
        tracker.assign(partition)
        #expect(tracker.missing(before: 500, in: partition) == 0, "nothing known yet: a new group starts where the log starts")
        tracker.expect(120, in: partition)
        #expect(tracker.missing(before: 120, in: partition) == 0)
        #expect(tracker.missing(before: 500, in: partition) == 380, "committed 120, the log now begins at 500")
        _ = tracker.received(offset: 500, in: partition)
        #expect(tracker.missing(before: 501, in: partition) == 0)
        _ = tracker.received(offset: 501, in: partition)
        #expect(tracker.missing(before: 510, in: partition) == 8)
        #expect(tracker.missing(before: 400, in: partition) == 0, "an older offset is a duplicate, not a loss")
        tracker.expect(0, in: partition)
        #expect(tracker.missing(before: 502, in: partition) == 0, "once reading, the committed offset no longer applies")
        tracker.assign(partition)
        #expect(tracker.missing(before: 7, in: partition) == 0, "a new assignment forgets what it expected")
    }

    @Test("revocation drops in-flight work; a new assignment starts fresh and ignores old marks")
    func revocationAndReassignment() {
        var tracker = OffsetCommitTracker()
        let first = tracker.assign(partition)
        for offset in Int64(0)..<5 { _ = tracker.received(offset: offset, in: partition) }
        tracker.finished(offset: 0, in: partition, generation: first)
        tracker.finished(offset: 1, in: partition, generation: first)
        tracker.finished(offset: 3, in: partition, generation: first)
        do { let outcome = tracker.revoke(partition); #expect(outcome == 2, "finished prefix 0...1 is still to commit on revocation") }
        #expect(tracker.assignedPartitions.isEmpty)
        do { let outcome = tracker.finished(offset: 2, in: partition, generation: first); #expect(!outcome, "work of a revoked partition is dropped") }
        do { let outcome = tracker.received(offset: 5, in: partition); #expect(outcome == nil, "an unassigned partition hands nothing out") }

        let second = tracker.assign(partition)
        #expect(second != first)
        #expect(tracker.commitOffset(for: partition) == nil)
        do { let outcome = tracker.received(offset: 2, in: partition); #expect(outcome == second, "redelivery from the committed offset") }
        do { let outcome = tracker.finished(offset: 2, in: partition, generation: first); #expect(!outcome, "a mark from the old assignment is ignored") }
        #expect(tracker.unfinishedCount(for: partition) == 1)
        do { let outcome = tracker.finished(offset: 2, in: partition, generation: second); #expect(outcome) }
        #expect(tracker.commitOffset(for: partition) == 3)
    }

    @Test("offsets at or below what was handed out are refused as duplicates")
    func duplicatesAreRefused() {
        var tracker = OffsetCommitTracker()
        let generation = tracker.assign(partition)
        do { let outcome = tracker.received(offset: 7, in: partition); #expect(outcome == generation) }
        do { let outcome = tracker.received(offset: 7, in: partition); #expect(outcome == nil) }
        do { let outcome = tracker.received(offset: 3, in: partition); #expect(outcome == nil) }
        do { let outcome = tracker.finished(offset: 3, in: partition, generation: generation); #expect(!outcome, "never handed out") }
        do { let outcome = tracker.finished(offset: 8, in: partition, generation: generation); #expect(!outcome, "never handed out") }
        #expect(tracker.unfinishedCount(for: partition) == 1)
    }

    /// The property: after any sequence of in-order receives and random-order finishes (with
    /// gaps in the offsets, several partitions, stray and repeated marks, commits in between),
    /// the commit offset of each partition is the lowest received-but-unfinished offset, or one
    /// past the highest received when all are finished; it never moves backwards.
    @Test("commit offset equals the model over random completion orders", arguments: [UInt64(0x5EED), 42, 2026])
    func randomCompletionOrders(seed: UInt64) async {
        var random = SeededGenerator(seed: seed)
        for iteration in 0..<200 {
            runRandomScenario(iteration: iteration, seed: seed, random: &random)
            // CPU-bound: let the integration suites running alongside have the pool now and then.
            if iteration % 20 == 0 { await Task.yield() }
        }
    }

    /// `#expect` without its per-call cost in the hot loop of the property test (it records an
    /// issue only when the condition fails).
    private func check(_ condition: Bool, _ comment: Comment, sourceLocation: SourceLocation = #_sourceLocation) {
        if !condition { Issue.record(comment, sourceLocation: sourceLocation) }
    }

    private func runRandomScenario(iteration: Int, seed: UInt64, random: inout SeededGenerator) {
        struct Model {
            var toReceive: [Int64]
            var received: [Int64] = []
            var finished: Set<Int64> = []
            var lastCommitOffset: Int64?
            var committed: Int64?

            var commitOffset: Int64? {
                guard let last = received.last else { return nil }
                return received.first { !finished.contains($0) } ?? last + 1
            }
            var unfinished: [Int64] { received.filter { !finished.contains($0) } }
        }

        let context = Comment(rawValue: "seed \(seed) iteration \(iteration)")
        var tracker = OffsetCommitTracker()
        let partitionCount = Int.random(in: 1...3, using: &random)
        var models: [KafkaTopicPartition: Model] = [:]
        var generations: [KafkaTopicPartition: OffsetCommitTracker.Generation] = [:]
        for index in 0..<partitionCount {
            let partition = KafkaTopicPartition(topic: "t", partition: Int32(index))
            var offsets: [Int64] = []
            var offset = Int64.random(in: 0...1000, using: &random)
            for _ in 0..<Int.random(in: 1...150, using: &random) {
                offsets.append(offset)
                // Gaps: compacted or control records never reach the consumer.
                offset += Int.random(in: 0..<10, using: &random) == 0 ? Int64.random(in: 2...4, using: &random) : 1
            }
            models[partition] = Model(toReceive: offsets)
            generations[partition] = tracker.assign(partition)
        }
        let partitions = models.keys.sorted()

        var steps = 0
        while models.values.contains(where: { !$0.toReceive.isEmpty || $0.received.count > $0.finished.count }) {
            steps += 1
            let partition = partitions.randomElement(using: &random)!
            // Taken out of the dictionary so mutating it does not copy its arrays.
            var model = models.removeValue(forKey: partition)!
            let generation = generations[partition]!
            switch Int.random(in: 0..<10, using: &random) {
            case 0..<4:
                guard !model.toReceive.isEmpty else { break }
                let offset = model.toReceive.removeFirst()
                do { let outcome = tracker.received(offset: offset, in: partition); check(outcome == generation, context) }
                model.received.append(offset)
            case 4..<8:
                guard let offset = model.unfinished.randomElement(using: &random) else { break }
                do { let outcome = tracker.finished(offset: offset, in: partition, generation: generation); check(outcome, context) }
                model.finished.insert(offset)
            case 8:
                // A stray mark: already finished, never handed out, or from an older generation.
                if let offset = model.finished.randomElement(using: &random) {
                    do { let outcome = tracker.finished(offset: offset, in: partition, generation: generation); check(!outcome, context) }
                }
                if let next = model.toReceive.first {
                    do { let outcome = tracker.finished(offset: next, in: partition, generation: generation); check(!outcome, context) }
                }
                if let offset = model.unfinished.first {
                    do { let outcome = tracker.finished(offset: offset, in: partition, generation: generation &- 1000); check(!outcome, context) }
                }
            default:
                // A commit of whatever is pending.
                if let pending = tracker.pendingCommitOffset(for: partition) {
                    tracker.committed(offset: pending, in: partition)
                    model.committed = pending
                }
            }
            let commitOffset = tracker.commitOffset(for: partition)
            check(commitOffset == model.commitOffset, "commit offset \(String(describing: commitOffset)) != model \(String(describing: model.commitOffset)); \(context)")
            if let previous = model.lastCommitOffset, let commitOffset {
                check(commitOffset >= previous, "commit offset moved backwards; \(context)")
            }
            model.lastCommitOffset = commitOffset
            check(tracker.unfinishedCount(for: partition) == model.unfinished.count, context)
            let baseline = model.committed ?? model.received.first
            let expectedPending = model.commitOffset.flatMap { offset in baseline.map { offset > $0 ? offset : nil } ?? offset }
            check(tracker.pendingCommitOffset(for: partition) == expectedPending, context)
            models[partition] = model
        }
        for partition in partitions {
            let model = models[partition]!
            check(tracker.commitOffset(for: partition) == model.received.last! + 1, context)
            check(tracker.unfinishedCount(for: partition) == 0, context)
        }
        check(tracker.unfinishedCount == 0, context)
        check(steps > 0, context)
    }
}
