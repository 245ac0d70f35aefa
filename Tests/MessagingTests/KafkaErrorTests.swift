@testable import Messaging
import CRdKafka
import Logging
import Testing

@Suite("KafkaError")
struct KafkaErrorTests {
    @Test("== compares the code only")
    func equalityComparesCode() {
        let first = KafkaError.rdKafka(RD_KAFKA_RESP_ERR__TRANSPORT, "one")
        let second = KafkaError.rdKafka(RD_KAFKA_RESP_ERR__TRANSPORT, "two")
        #expect(first == second)
        #expect(first.code == .transport)
        #expect(first != KafkaError.rdKafka(RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, "one"))
        #expect(first.description.contains("one"))
        #expect(first.description.contains("KafkaErrorTests.swift"))
    }

    @Test("retriable and fatal are derived from the librdkafka code")
    func classification() {
        #expect(KafkaError.rdKafka(RD_KAFKA_RESP_ERR__TRANSPORT, "").isRetriable)
        #expect(KafkaError.rdKafka(RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, "").isRetriable)
        #expect(KafkaError.rdKafka(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, "").isRetriable)
        #expect(KafkaError.rdKafka(RD_KAFKA_RESP_ERR_NOT_COORDINATOR, "").isRetriable)
        #expect(!KafkaError.rdKafka(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, "").isRetriable)
        #expect(!KafkaError.rdKafka(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, "").isRetriable)
        let fatal = KafkaError.rdKafka(RD_KAFKA_RESP_ERR__FATAL, "")
        #expect(fatal.isFatal && !fatal.isRetriable)
        let fencedButFatal = KafkaError.rdKafka(RD_KAFKA_RESP_ERR__TRANSPORT, "", isFatal: true)
        #expect(!fencedButFatal.isRetriable)
        #expect(KafkaError.Code.allBrokersDown.description == "_ALL_BROKERS_DOWN")
        #expect(KafkaError.Code.shutdown.librdkafkaCode == nil)
    }

    @Test("a rejected property is a configuration error, not a crash")
    func badProperty() {
        var configuration = KafkaProducerConfiguration(bootstrapServers: "127.0.0.1:9")
        configuration.properties["no.such.property"] = "1"
        #expect(throws: KafkaError.self) { _ = try KafkaProducer(configuration: configuration, logger: .init(label: "test")) }
        do {
            _ = try KafkaProducer(configuration: configuration, logger: .init(label: "test"))
        } catch let error as KafkaError {
            #expect(error.code == .configuration)
            #expect(error.reason.contains("no.such.property"))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
}
