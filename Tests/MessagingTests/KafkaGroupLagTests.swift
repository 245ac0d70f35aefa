import Foundation
import Logging
import Messaging
import ServiceLifecycle
import Testing
import TestSupport

/// The lag probe the scheduler's backpressure uses, against the mock cluster.
@Suite("KafkaGroupLag (mock cluster)", .serialized, .timeLimit(.minutes(2)))
struct KafkaGroupLagTests {
    let logger = KafkaTestSupport.testLogger("kafka-lag")

    @Test("lag is what the group has not committed: everything before its first commit, the rest after")
    func lagFollowsCommits() async throws {
        let topic = KafkaTestSupport.uniqueName("lag")
        let other = KafkaTestSupport.uniqueName("lag-other")
        let cluster = try KafkaTestSupport.mockCluster(topics: [topic: 3, other: 1])
        let groupID = KafkaTestSupport.uniqueName("group")
        let probe = try KafkaGroupLag(bootstrapServers: cluster.bootstrapServers, groupID: groupID, logger: logger)
        let producer = try KafkaProducer(configuration: .init(bootstrapServers: cluster.bootstrapServers), logger: logger)
        var configuration = KafkaConsumerConfiguration(bootstrapServers: cluster.bootstrapServers, groupID: groupID, topics: [topic])
        configuration.sessionTimeout = .milliseconds(6000)
        configuration.heartbeatInterval = .milliseconds(500)
        configuration.commitInterval = .seconds(60)
        let consumer = try KafkaConsumer(configuration: configuration, logger: logger)
        let services = ServiceGroup(services: [producer, consumer], logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await services.run() }
            #expect(try await probe.lag(topics: [topic]) == 0)
            for index in 0..<30 { _ = try await producer.send(topic: topic, key: "line-\(index % 5)", value: "task-\(index)") }
            for index in 0..<4 { _ = try await producer.send(topic: other, key: nil, value: "x-\(index)") }
            #expect(try await probe.lag(topics: [topic]) == 30, "nothing committed yet: all of it is outstanding")
            #expect(try await probe.lag(topics: [topic, other]) == 34)

            let collector = KafkaMessageCollector(consumer)
            let messages = try await collector.wait(forCount: 30, timeout: .seconds(30))
            #expect(messages.count == 30)
            // Finish the first 12 by offset order per partition (contiguous), then commit.
            let byPartition = Dictionary(grouping: messages, by: \.partition).mapValues { $0.sorted { $0.offset < $1.offset } }
            var finished = 0
            for (_, partitionMessages) in byPartition.sorted(by: { $0.key < $1.key }) {
                for message in partitionMessages where finished < 12 {
                    consumer.markFinished(message)
                    finished += 1
                }
            }
            try await consumer.commitFinished()
            #expect(try await probe.lag(topics: [topic]) == 18)
            for message in messages { consumer.markFinished(message) }
            try await consumer.commitFinished()
            #expect(try await probe.lag(topics: [topic]) == 0)
            await services.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }
}
