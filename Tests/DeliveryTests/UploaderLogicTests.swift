import Contracts
import Foundation
import Messaging
import Testing
@testable import Uploader

@Suite("uploader: breaker, backoff, request building and the queue")
struct UploaderLogicTests {
    typealias Breaker = CircuitBreaker<ContinuousClock.Instant>

    @Test("the breaker opens after the threshold, lets one probe through when the cool-down ends, and doubles the cool-down when it fails")
    func breakerCycle() {
        var breaker = Breaker(failureThreshold: 3, initialCooldown: .seconds(2), maximumCooldown: .seconds(5))
        let start = ContinuousClock.now
        for _ in 0..<2 {
            #expect(breaker.admit(now: start) == .proceed)
            breaker.recordFailure(now: start)
        }
        #expect(breaker.state == .closed(failures: 2))
        breaker.recordFailure(now: start)
        #expect(breaker.admit(now: start + .seconds(1)) == .waitUntil(start + .seconds(2)))
        // The cool-down is over: one probe, the others wait for it.
        #expect(breaker.admit(now: start + .seconds(2)) == .proceed)
        #expect(breaker.admit(now: start + .seconds(2)) == .waitForProbe)
        breaker.recordFailure(now: start + .seconds(3))
        #expect(breaker.state == .open(until: start + .seconds(7), cooldown: .seconds(4)))
        #expect(breaker.admit(now: start + .seconds(7)) == .proceed)
        breaker.recordFailure(now: start + .seconds(8))
        #expect(breaker.state == .open(until: start + .seconds(13), cooldown: .seconds(5)), "capped at the maximum")
        #expect(breaker.admit(now: start + .seconds(13)) == .proceed)
        breaker.recordSuccess()
        #expect(breaker.state == .closed(failures: 0))
        #expect(breaker.admit(now: start + .seconds(13)) == .proceed)
    }

    @Test("a success in between resets the count of failures in a row")
    func breakerCountsOnlyFailuresInARow() {
        var breaker = Breaker(failureThreshold: 2)
        let now = ContinuousClock.now
        breaker.recordFailure(now: now)
        breaker.recordSuccess()
        breaker.recordFailure(now: now)
        #expect(breaker.state == .closed(failures: 1))
    }

    @Test("backoff grows exponentially to its maximum and the jitter spans the whole interval")
    func backoff() {
        let backoff = RetryBackoff(initial: .milliseconds(100), maximum: .seconds(1))
        #expect(backoff.delay(attempt: 1, draw: 1) == .milliseconds(100))
        #expect(backoff.delay(attempt: 3, draw: 1) == .milliseconds(400))
        #expect(backoff.delay(attempt: 10, draw: 1) == .seconds(1))
        #expect(backoff.delay(attempt: 100, draw: 1) == .seconds(1))
        #expect(backoff.delay(attempt: 3, draw: 0.5) == .milliseconds(200))
        #expect(backoff.delay(attempt: 3, draw: 0) == .zero)
    }

    @Test("the idempotency key depends on the messages' coordinates, not their order")
    func idempotencyKey() {
        let a = message(partition: 0, offset: 7), b = message(partition: 1, offset: 7)
        let key = DeliveryKey.make(kind: "readings", messages: [a, b])
        #expect(key == DeliveryKey.make(kind: "readings", messages: [b, a]))
        #expect(key != DeliveryKey.make(kind: "readings", messages: [a]))
        #expect(key != DeliveryKey.make(kind: "results", messages: [a, b]))
        #expect(key != DeliveryKey.make(kind: "readings", messages: [a, message(partition: 1, offset: 8)]))
        #expect(key.hasPrefix("readings-") && key.count == "readings-".count + 32)
    }

    @Test("a request body built from raw messages decodes as the IMS reads it; an unreadable item stays one item")
    func requestBody() throws {
        let batch = ReadingBatch(batchID: "t1#readings", taskID: "t1", region: "r", meterID: "m1", collectedAt: Date(timeIntervalSince1970: 1_700_000_000),
                                 readings: [Reading(obis: "1.0.1.8.0.255", classID: 3, attribute: 2, captureTime: Date(timeIntervalSince1970: 1_700_000_000), valueType: .number, value: "12.5", unit: "Wh")])
        let newer = Array(#"{"schema":"reading-batch/v9","batchID":"future"}"#.utf8)
        let body = IMSRequestBody.readings(requestID: "key-\"1\"", rawBatches: [try ContractCoder.encode(batch), newer, Array(#"{"batchID":"x"}"#.utf8)])
        let request = try ContractCoder.decode(IMSReadingsRequest.self, from: body)
        #expect(request.requestID == "key-\"1\"")
        #expect(request.batches.count == 3)
        #expect(request.batches[0] == .valid(batch))
        guard case .invalid(let id, let reason) = request.batches[1] else { Issue.record("a v9 batch must be invalid"); return }
        #expect(id == "future" && reason.contains("reading-batch/v9"))
        guard case .invalid(let missing, _) = request.batches[2] else { Issue.record("a batch without schema must be invalid"); return }
        #expect(missing == "x")
        // The same bytes as JSONEncoder would write for the typed request.
        let typed = IMSReadingsRequest(requestID: "k", batches: [batch])
        #expect(try ContractCoder.decode(IMSReadingsRequest.self, from: ContractCoder.encode(typed)).batches == typed.batches)
    }

    @Test("IMS answers: 2xx and itemised 422 are decisions, 400 refuses the whole, 413 asks for smaller requests, the rest is undecided")
    func classify() throws {
        let reply = IMSDeliveryReply(requestID: "k", status: .failed, accepted: 0, stored: 0, duplicates: 0,
                                     rejected: [.init(index: 0, id: "b", code: "meter.unknown", reason: "no")])
        let replyBytes = try ContractCoder.encode(reply)
        #expect(IMSClient.classify(status: 200, body: replyBytes) == .decided(status: 200, reply: reply))
        #expect(IMSClient.classify(status: 204, body: []) == .decided(status: 204, reply: nil))
        #expect(IMSClient.classify(status: 422, body: replyBytes) == .decided(status: 422, reply: reply))
        if case .refused = IMSClient.classify(status: 422, body: Array("nope".utf8)) {} else { Issue.record("422 without items refuses the request") }
        if case .refused = IMSClient.classify(status: 400, body: []) {} else { Issue.record("400 refuses the request") }
        if case .tooLarge = IMSClient.classify(status: 413, body: []) {} else { Issue.record("413 is too large") }
        for status in [401, 403, 404, 408, 429, 500, 502, 503] {
            if case .undecided = IMSClient.classify(status: status, body: []) {} else { Issue.record("\(status) must be retried") }
        }
    }

    @Test("the queue cuts requests by weight and bytes, waits for age, and drains after close")
    func queue() async throws {
        let queue = DeliveryQueue(limits: DeliveryLimits(maxItemsWeight: 10, maxBytes: 1 << 20, maxAge: .milliseconds(50), maxBufferedBytes: 1 << 20))
        for offset in 0..<5 { #expect(await queue.push(pending(offset: Int64(offset), weight: 4))) }
        let first = try #require(await queue.nextRequest())
        #expect(first.map(\.message.offset) == [0, 1], "two of weight 4 fit 10, a third does not")
        let second = try #require(await queue.nextRequest())
        #expect(second.map(\.message.offset) == [2, 3])
        let started = ContinuousClock.now
        let third = try #require(await queue.nextRequest())
        #expect(third.map(\.message.offset) == [4])
        #expect(ContinuousClock.now - started >= .milliseconds(40), "a lone small item waits for its age")
        #expect(await queue.push(pending(offset: 5, weight: 1)))
        queue.close()
        #expect(await queue.nextRequest()?.map(\.message.offset) == [5], "closing flushes at once")
        #expect(await queue.nextRequest() == nil)
        #expect(await queue.push(pending(offset: 6, weight: 1)) == false)
    }

    @Test("a full buffer holds the intake back until a request is taken")
    func queueBackpressure() async throws {
        let queue = DeliveryQueue(limits: DeliveryLimits(maxItemsWeight: 1, maxBytes: 1 << 20, maxAge: .zero, maxBufferedBytes: 100))
        #expect(await queue.push(pending(offset: 0, weight: 1, bytes: 100)))
        let blocked = Task { await queue.push(pending(offset: 1, weight: 1, bytes: 10)) }
        try await Task.sleep(for: .milliseconds(50))
        #expect(queue.bufferedBytes == 100, "the second push waits")
        #expect(await queue.nextRequest()?.count == 1)
        #expect(await blocked.value)
        #expect(queue.bufferedBytes == 10)
    }

    @Test("catch-up order: oldest takes the first arrived, newest the last arrived first; both cut by the same limits", arguments: CatchUpOrder.allCases)
    func queueOrder(order: CatchUpOrder) async throws {
        let queue = DeliveryQueue(limits: DeliveryLimits(maxItemsWeight: 6, maxBytes: 1 << 20, maxAge: .zero, maxBufferedBytes: 1 << 20, catchUpOrder: order))
        for offset in 0..<7 { #expect(await queue.push(pending(offset: Int64(offset), weight: 2))) }
        var requests: [[Int64]] = []
        queue.close()
        while let request = await queue.nextRequest() { requests.append(request.map(\.message.offset)) }
        switch order {
        case .oldest: #expect(requests == [[0, 1, 2], [3, 4, 5], [6]])
        case .newest: #expect(requests == [[6, 5, 4], [3, 2, 1], [0]])
        }
    }

    @Test("newest-first serves what arrives during a backlog before the older rest, and every item exactly once")
    func queueNewestDuringBacklog() async throws {
        let queue = DeliveryQueue(limits: DeliveryLimits(maxItemsWeight: 2, maxBytes: 1 << 20, maxAge: .zero, maxBufferedBytes: 1 << 20, catchUpOrder: .newest))
        for offset in 0..<6 { #expect(await queue.push(pending(offset: Int64(offset), weight: 1))) }
        let first = try #require(await queue.nextRequest())
        #expect(first.map(\.message.offset) == [5, 4])
        for offset in 6..<8 { #expect(await queue.push(pending(offset: Int64(offset), weight: 1))) }
        var seen = first.map(\.message.offset)
        let second = try #require(await queue.nextRequest())
        #expect(second.map(\.message.offset) == [7, 6], "what arrived meanwhile is newer than the backlog")
        seen += second.map(\.message.offset)
        queue.close()
        while let request = await queue.nextRequest() { seen += request.map(\.message.offset) }
        #expect(seen == [5, 4, 7, 6, 3, 2, 1, 0])
        #expect(queue.bufferedBytes == 0)
    }

    private func message(partition: Int32, offset: Int64, bytes: Int = 10) -> KafkaConsumerMessage {
        KafkaConsumerMessage(topic: KafkaTopics.readings, partition: partition, offset: offset, key: nil, value: Array(repeating: 0x20, count: bytes))
    }

    private func pending(offset: Int64, weight: Int, bytes: Int = 10) -> PendingDelivery {
        PendingDelivery(message: message(partition: 0, offset: offset, bytes: bytes), itemID: "b\(offset)", meterID: "m", weight: weight)
    }
}
