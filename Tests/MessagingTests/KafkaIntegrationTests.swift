import Foundation
import Logging
import Messaging
import ServiceLifecycle
import Synchronization
import Testing
import TestSupport

/// Producer, consumer and rebalances against librdkafka's in-process mock cluster.
@Suite("Kafka integration (mock cluster)", .serialized, .timeLimit(.minutes(3)))
struct KafkaIntegrationTests {
    let logger = KafkaTestSupport.testLogger("kafka-test")

    func consumerConfiguration(_ cluster: KafkaMockCluster, group: String, topic: String) -> KafkaConsumerConfiguration {
        var configuration = KafkaConsumerConfiguration(bootstrapServers: cluster.bootstrapServers, groupID: group, topics: [topic])
        // The 2.0.2 mock waits session.timeout − 1 s before it reassigns partitions.
        configuration.sessionTimeout = .milliseconds(6000)
        configuration.heartbeatInterval = .milliseconds(500)
        configuration.commitInterval = .milliseconds(200)
        return configuration
    }

    @Test("round trip: keyed messages with headers arrive, partitions follow keys, finished work is committed")
    func roundTrip() async throws {
        let topic = KafkaTestSupport.uniqueName("round-trip")
        let cluster = try KafkaTestSupport.mockCluster(topics: [topic: 3])
        let producer = try KafkaProducer(configuration: .init(bootstrapServers: cluster.bootstrapServers), logger: logger)
        let consumer = try KafkaConsumer(
            configuration: consumerConfiguration(cluster, group: KafkaTestSupport.uniqueName("group"), topic: topic), logger: logger)
        let group = ServiceGroup(services: [producer, consumer], logger: logger)

        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }

            var reports: [Int: KafkaDeliveryReport] = [:]
            for index in 0..<60 {
                reports[index] = try await producer.send(
                    topic: topic, key: "line-\(index % 7)", value: "reading-\(index)",
                    headers: [KafkaHeader(key: "schema", value: "test/v1"), KafkaHeader(key: "empty", value: nil)])
            }
            // Same key, same partition; offsets unique per partition.
            for index in 0..<60 { #expect(reports[index]!.partition == reports[index % 7]!.partition) }
            #expect(Set(reports.values.map { "\($0.partition)/\($0.offset)" }).count == 60)

            let collector = KafkaMessageCollector(consumer)
            var messages = try await collector.wait(forCount: 60, timeout: .seconds(30))
            #expect(messages.count == 60)
            for message in messages {
                let index = Int(String(decoding: message.value, as: UTF8.self).dropFirst("reading-".count))!
                #expect(message.keyString == "line-\(index % 7)")
                #expect(message.partition == reports[index]!.partition && message.offset == reports[index]!.offset)
                #expect(message.header("schema")?.value == Array("test/v1".utf8))
                #expect(message.header("empty") != nil && message.header("empty")?.value == nil)
                #expect(message.timestampMilliseconds != nil)
            }
            var random = SeededGenerator(seed: 7)
            messages.shuffle(using: &random)
            for message in messages { consumer.markFinished(message) }
            try await consumer.commitFinished()

            var ends: [KafkaTopicPartition: Int64] = [:]
            for report in reports.values { ends[report.topicPartition] = max(ends[report.topicPartition] ?? 0, report.offset + 1) }
            let committed = try await consumer.committedOffsets(for: Array(ends.keys))
            #expect(committed == ends)

            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        // After shutdown the producer refuses new work with a typed error.
        do {
            _ = try await producer.send(topic: topic, key: nil, value: "late")
            Issue.record("a closed producer accepted a message")
        } catch let error as KafkaError {
            #expect(error.code == .shutdown)
        }
    }

    @Test("a hole in finished work holds the commit back; the next member redelivers from the hole")
    func contiguousCommitAndRedelivery() async throws {
        let topic = KafkaTestSupport.uniqueName("contiguous")
        let groupID = KafkaTestSupport.uniqueName("group")
        let cluster = try KafkaTestSupport.mockCluster(topics: [topic: 1])
        let producer = try KafkaProducer(configuration: .init(bootstrapServers: cluster.bootstrapServers), logger: logger)
        for index in 0..<20 { _ = try await producer.send(topic: topic, key: "k", value: "v\(index)") }

        let partition = KafkaTopicPartition(topic: topic, partition: 0)
        let first = try KafkaConsumer(configuration: consumerConfiguration(cluster, group: groupID, topic: topic), logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await first.run() }
            let collector = KafkaMessageCollector(first)
            let messages = try await collector.wait(forCount: 20, timeout: .seconds(30))
            #expect(messages.map(\.offset) == Array(0..<20))
            // 0...6 and 8...19 finish; 7 is still running when the member stops.
            for message in messages where message.offset != 7 { first.markFinished(message) }
            try await first.commitFinished()
            #expect(try await first.committedOffsets(for: [partition]) == [partition: 7])
            tasks.cancelAll()
        }

        let second = try KafkaConsumer(configuration: consumerConfiguration(cluster, group: groupID, topic: topic), logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await second.run() }
            let collector = KafkaMessageCollector(second)
            let redelivered = try await collector.wait(forCount: 13, timeout: .seconds(30))
            #expect(redelivered.map(\.offset) == Array(7..<20), "redelivery starts at the unfinished message, nothing before it")
            tasks.cancelAll()
        }
        await producer.close()
    }

    @Test("lag: every message not done counts, from the first unfinished one to the end of the log")
    func lagCountsWorkNotDone() async throws {
        let topic = KafkaTestSupport.uniqueName("lag")
        let cluster = try KafkaTestSupport.mockCluster(topics: [topic: 1])
        let producer = try KafkaProducer(configuration: .init(bootstrapServers: cluster.bootstrapServers), logger: logger)
        for index in 0..<12 { _ = try await producer.send(topic: topic, key: "k", value: "v\(index)") }

        let partition = KafkaTopicPartition(topic: topic, partition: 0)
        let consumer = try KafkaConsumer(
            configuration: consumerConfiguration(cluster, group: KafkaTestSupport.uniqueName("group"), topic: topic), logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await consumer.run() }
            let collector = KafkaMessageCollector(consumer)
            let messages = try await collector.wait(forCount: 12, timeout: .seconds(30))
            #expect(await lag(consumer, becomes: [partition: 12]), "nothing finished: all 12 outstanding")
            // 0...4 finish, 5 hangs, 6...11 finish: everything from 5 on is still owed.
            for message in messages where message.offset != 5 { consumer.markFinished(message) }
            #expect(await lag(consumer, becomes: [partition: 7]))
            for index in 12..<15 { _ = try await producer.send(topic: topic, key: "k", value: "v\(index)") }
            _ = try await collector.wait(forCount: 15, timeout: .seconds(30))
            #expect(await lag(consumer, becomes: [partition: 10]), "new messages at the end of the log count too")
            for message in collector.received where message.offset >= 5 { consumer.markFinished(message) }
            #expect(await lag(consumer, becomes: [partition: 0]))
            tasks.cancelAll()
        }
        await producer.close()
    }

    /// Whether `consumer.lag` equals `expected` within 5 s (the watermark comes with the fetch
    /// that delivered the messages; reading it is not synchronised with the stream).
    private func lag(_ consumer: KafkaConsumer, becomes expected: [KafkaTopicPartition: Int64]) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(5)
        while consumer.lag != expected && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        if consumer.lag != expected { Issue.record("lag \(consumer.lag), expected \(expected)") }
        return consumer.lag == expected
    }

    @Test("finished work is committed once the consumer's clock passes the commit interval, not before")
    func commitIntervalFollowsTheInjectedClock() async throws {
        let topic = KafkaTestSupport.uniqueName("commit-clock")
        let cluster = try KafkaTestSupport.mockCluster(topics: [topic: 1])
        let producer = try KafkaProducer(configuration: .init(bootstrapServers: cluster.bootstrapServers), logger: logger)
        for index in 0..<5 { _ = try await producer.send(topic: topic, key: "k", value: "v\(index)") }

        let clock = TestClock()
        let commits = CommitLog()
        var configuration = consumerConfiguration(cluster, group: KafkaTestSupport.uniqueName("group"), topic: topic)
        configuration.commitInterval = .seconds(60)
        let consumer = try KafkaConsumer(configuration: configuration, logger: logger, clock: clock) { commits.append($0) }
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await consumer.run() }
            let collector = KafkaMessageCollector(consumer)
            let messages = try await collector.wait(forCount: 5, timeout: .seconds(30))
            #expect(messages.map(\.offset) == Array(0..<5))
            for message in messages { consumer.markFinished(message) }
            // The consumer thread polls every 100 ms of real time; on its clock no time passes.
            try await Task.sleep(for: .milliseconds(600))
            #expect(commits.all.isEmpty, "committed before the interval: \(commits.all)")

            clock.advance(by: .seconds(60))
            let deadline = ContinuousClock.now + .seconds(10)
            while commits.all.isEmpty && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(commits.all == [[KafkaTopicPartition(topic: topic, partition: 0): 5]])
            tasks.cancelAll()
        }
        await producer.close()
    }

    @Test("a paused partition resumes when enough of its work finished (backpressure)")
    func backpressure() async throws {
        let topic = KafkaTestSupport.uniqueName("backpressure")
        let cluster = try KafkaTestSupport.mockCluster(topics: [topic: 1])
        let producer = try KafkaProducer(configuration: .init(bootstrapServers: cluster.bootstrapServers), logger: logger)
        for index in 0..<100 { _ = try await producer.send(topic: topic, key: "k", value: "v\(index)") }
        var configuration = consumerConfiguration(cluster, group: KafkaTestSupport.uniqueName("group"), topic: topic)
        configuration.maxUnfinishedMessagesPerPartition = 10
        let consumer = try KafkaConsumer(configuration: configuration, logger: logger)

        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await consumer.run() }
            let collector = KafkaMessageCollector(consumer)
            var messages = try await collector.wait(forCount: 10, timeout: .seconds(30))
            #expect(messages.count == 10)

            // Nothing more is fetched while ten are unfinished.
            try await Task.sleep(for: .seconds(1.5))
            #expect(consumer.unfinishedCount == 10)

            #expect(collector.received.count == 10)
            var finished = 0
            while finished < 100 {
                for message in messages.dropFirst(finished) { consumer.markFinished(message) }
                finished = messages.count
                if finished == 100 { break }
                let more = try await collector.wait(forCount: finished + 1, timeout: .seconds(10))
                #expect(more.count > finished, "the partition resumed")
                if more.count == finished { break }
                try await Task.sleep(for: .milliseconds(300))
                messages = collector.received
                #expect(consumer.unfinishedCount <= 10)
            }
            #expect(messages.map(\.offset) == Array(0..<100))
            tasks.cancelAll()
        }
        await producer.close()
    }

    @Test("rebalance: finished work of revoked partitions is committed, the new member starts there")
    func rebalance() async throws {
        let topic = KafkaTestSupport.uniqueName("rebalance")
        let groupID = KafkaTestSupport.uniqueName("group")
        let cluster = try KafkaTestSupport.mockCluster(topics: [topic: 4])
        let producer = try KafkaProducer(configuration: .init(bootstrapServers: cluster.bootstrapServers), logger: logger)
        var perPartition: [Int32: [Int64]] = [:]
        for index in 0..<80 {
            let report = try await producer.send(topic: topic, key: "line-\(index)", value: "v\(index)")
            perPartition[report.partition, default: []].append(report.offset)
        }
        #expect(perPartition.count == 4)

        let first = try KafkaConsumer(configuration: consumerConfiguration(cluster, group: groupID, topic: topic), logger: logger)
        let second = try KafkaConsumer(configuration: consumerConfiguration(cluster, group: groupID, topic: topic), logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await first.run() }
            let firstCollector = KafkaMessageCollector(first)
            let firstMessages = try await firstCollector.wait(forCount: 80, timeout: .seconds(30))
            #expect(firstMessages.count == 80)
            #expect(first.assignment.count == 4)
            // The first member finishes the first half of every partition and commits it.
            var committedByFirst: [KafkaTopicPartition: Int64] = [:]
            for message in firstMessages {
                guard let offsets = perPartition[message.partition] else { continue }
                if message.offset < offsets[offsets.count / 2] {
                    first.markFinished(message)
                    committedByFirst[message.topicPartition] = message.offset + 1
                }
            }
            try await first.commitFinished()

            tasks.addTask { try await second.run() }
            let secondCollector = KafkaMessageCollector(second)
            let deadline = ContinuousClock.now + .seconds(40)
            // Wait until the group settled with two members sharing the partitions.
            while ContinuousClock.now < deadline {
                if second.assignment.count == 2 && first.assignment.count == 2 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(first.assignment.count == 2)
            #expect(second.assignment.count == 2)
            #expect(Set(first.assignment).isDisjoint(with: second.assignment))

            // The new member reads its partitions from the first member's committed offsets.
            let expected = second.assignment.reduce(0) { total, partition in
                total + (perPartition[partition.partition] ?? []).filter { $0 >= committedByFirst[partition] ?? 0 }.count
            }
            let secondMessages = try await secondCollector.wait(forCount: expected, timeout: .seconds(30))
            #expect(secondMessages.count == expected)
            for partition in second.assignment {
                let offsets = secondMessages.filter { $0.topicPartition == partition }.map(\.offset)
                #expect(offsets.first == committedByFirst[partition], "\(partition) resumes at the committed offset")
            }
            // A mark of a revoked partition from the old assignment changes nothing.
            for message in firstMessages where second.assignment.contains(message.topicPartition) {
                first.markFinished(message)
            }
            try await first.commitFinished()
            let committed = try await second.committedOffsets(for: second.assignment)
            for partition in second.assignment { #expect(committed[partition] == committedByFirst[partition]) }
            tasks.cancelAll()
        }
        await producer.close()
    }

    @Test("an unreachable broker gives typed retriable errors, logs and no crash")
    func unreachableBroker() async throws {
        let port = try freeLoopbackPort()
        var configuration = KafkaProducerConfiguration(bootstrapServers: "127.0.0.1:\(port)")
        configuration.messageTimeout = .seconds(2)
        configuration.reconnectBackoffMax = .milliseconds(500)
        let producer = try KafkaProducer(configuration: configuration, logger: logger)
        do {
            try await producer.checkConnectivity(timeout: .seconds(1))
            Issue.record("a metadata request to a closed port succeeded")
        } catch let error as KafkaError {
            #expect(error.isRetriable, "\(error)")
        }
        do {
            _ = try await producer.send(topic: "hes.readings", key: "meter-1", value: "x")
            Issue.record("a send to a closed port succeeded")
        } catch let error as KafkaError {
            #expect(error.code == .messageTimedOut, "\(error)")
            #expect(error.isRetriable && !error.isFatal)
        }
        await producer.close()

        var consumerConfiguration = KafkaConsumerConfiguration(
            bootstrapServers: "127.0.0.1:\(port)", groupID: "nobody", topics: ["hes.readings"])
        consumerConfiguration.reconnectBackoffMax = .milliseconds(500)
        let consumer = try KafkaConsumer(configuration: consumerConfiguration, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await consumer.run() }
            try await Task.sleep(for: .seconds(2))
            #expect(consumer.assignment.isEmpty)
            tasks.cancelAll()
            try await tasks.waitForAll()
        }
    }

    @Test("closing a producer that cannot deliver fails its pending sends instead of hanging")
    func closeFailsPendingSends() async throws {
        let port = try freeLoopbackPort()
        var configuration = KafkaProducerConfiguration(bootstrapServers: "127.0.0.1:\(port)")
        configuration.messageTimeout = .seconds(60)
        configuration.shutdownFlushTimeout = .seconds(1)
        let producer = try KafkaProducer(configuration: configuration, logger: logger)
        let pending = Task { try await producer.send(topic: "hes.results", key: "task-1", value: "x") }
        try await Task.sleep(for: .milliseconds(200))
        let started = ContinuousClock.now
        await producer.close()
        do {
            _ = try await pending.value
            Issue.record("a message to a closed port was acknowledged")
        } catch let error as KafkaError {
            #expect(!error.isFatal, "\(error)")
        }
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    @Test("a broker outage during consumption: the consumer resumes and misses nothing")
    func consumerThroughOutage() async throws {
        let topic = KafkaTestSupport.uniqueName("consumer-outage")
        let cluster = try KafkaTestSupport.mockCluster(topics: [topic: 2])
        var producerConfiguration = KafkaProducerConfiguration(bootstrapServers: cluster.bootstrapServers)
        producerConfiguration.reconnectBackoffMax = .milliseconds(500)
        let producer = try KafkaProducer(configuration: producerConfiguration, logger: logger)
        var consumerConfiguration = consumerConfiguration(cluster, group: KafkaTestSupport.uniqueName("group"), topic: topic)
        consumerConfiguration.reconnectBackoffMax = .milliseconds(500)
        let consumer = try KafkaConsumer(configuration: consumerConfiguration, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await consumer.run() }
            let collector = KafkaMessageCollector(consumer) { consumer.markFinished($0) }
            for index in 0..<50 { _ = try await producer.send(topic: topic, key: "line-\(index % 5)", value: "v\(index)") }
            #expect(try await collector.wait(forCount: 50, timeout: .seconds(30)).count == 50)

            try cluster.setBrokerDown(1)
            let during = Task {
                for index in 50..<100 { _ = try await producer.send(topic: topic, key: "line-\(index % 5)", value: "v\(index)") }
            }
            try await Task.sleep(for: .seconds(2))
            try cluster.setBrokerUp(1)
            try await during.value

            let messages = try await collector.wait(forCount: 100, timeout: .seconds(60))
            #expect(Set(messages.map { String(decoding: $0.value, as: UTF8.self) }) == Set((0..<100).map { "v\($0)" }))
            for partition in Set(messages.map(\.partition)) {
                let offsets = messages.filter { $0.partition == partition }.map(\.offset)
                #expect(offsets == offsets.sorted(), "partition \(partition) in order")
            }
            tasks.cancelAll()
        }
        await producer.close()
    }

    @Test("a broker outage delays delivery but loses nothing")
    func brokerOutage() async throws {
        let topic = KafkaTestSupport.uniqueName("outage")
        let cluster = try KafkaTestSupport.mockCluster(topics: [topic: 2])
        var configuration = KafkaProducerConfiguration(bootstrapServers: cluster.bootstrapServers)
        configuration.reconnectBackoffMax = .milliseconds(500)
        let producer = try KafkaProducer(configuration: configuration, logger: logger)
        _ = try await producer.send(topic: topic, key: "a", value: "before")
        try cluster.setBrokerDown(1)
        let during = Task { try await producer.send(topic: topic, key: "a", value: "during") }
        try await Task.sleep(for: .seconds(2))
        try cluster.setBrokerUp(1)
        let report = try await during.value
        #expect(report.offset >= 1)
        await producer.close()
    }
}

/// The offsets a consumer reported committing, in order.
private final class CommitLog: Sendable {
    private let commits = Mutex<[[KafkaTopicPartition: Int64]]>([])
    func append(_ committed: [KafkaTopicPartition: Int64]) { commits.withLock { $0.append(committed) } }
    var all: [[KafkaTopicPartition: Int64]] { commits.withLock { $0 } }
}
