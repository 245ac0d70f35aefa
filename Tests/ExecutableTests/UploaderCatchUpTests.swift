import Contracts
import Foundation
import Logging
import Persistence
import PostgresNIO
import Testing
import TestSupport

/// `--catch-up-order` with real processes: batches that piled up in the uploader during an IMS
/// outage reach the IMS last-arrived first with `newest` (after the request that was already
/// waiting for the IMS), first-arrived first with `oldest`, and every one of them arrives.
@Suite(.serialized, .timeLimit(.minutes(4)))
struct UploaderCatchUpTests {
    typealias Stack = UploaderDeliveryTests.Stack

    /// The batch ids in the order the IMS stored them (its requests' transaction times).
    static func storedOrder(_ database: PostgresTestDatabase) async throws -> [String] {
        let connection = try await database.configuration.connect(logger: UploaderDeliveryTests.logger)
        defer { Task { try? await connection.close() } }
        var ids: [String] = []
        let rows = try await connection.query("SELECT batch_id FROM ims_batches ORDER BY received_at, batch_id", logger: UploaderDeliveryTests.logger)
        for try await id in rows.decode(String.self) { ids.append(id) }
        return ids
    }

    @Test("after an outage, newest-first delivers the later wave before the rest of the earlier one, oldest-first the other way; nothing is lost",
          arguments: ["newest", "oldest"])
    func catchUpAfterOutage(order: String) async throws {
        let stack = try Stack()
        defer { Task { await stack.stop() } }
        try await stack.startBase(imsArguments: ["--outage", "0,30"])
        let uploader = try await stack.startUploader(["--catch-up-order", order, "--batch-readings", "48", "--in-flight", "1"])
        let old = (0..<12).map { UploaderDeliveryTests.batch(meter: String(format: "OLD%02d", $0), task: "old-\($0)", quarterHours: 24) }
        try await UploaderDeliveryTests.publish(old, brokers: stack.brokers)
        try await Task.sleep(for: .seconds(3))
        let new = (0..<12).map { UploaderDeliveryTests.batch(meter: String(format: "NEW%02d", $0), task: "new-\($0)", quarterHours: 24, start: 96) }
        try await UploaderDeliveryTests.publish(new, brokers: stack.brokers)
        #expect(try stack.stats().readings == 0, "the IMS is still down")

        let expected = (old + new).reduce(0) { $0 + $1.readings.count }
        let done = try await eventually(timeout: .seconds(90), interval: .milliseconds(250)) { try stack.stats().readings == expected }
        let held = try stack.stats().readings
        #expect(done, "IMS holds \(held) of \(expected)\n\(uploader.standardError.suffix(3000))")
        let stored = try await Self.storedOrder(stack.imsDatabase)
        #expect(stored.count == old.count + new.count)
        // The first request was formed before the outage was noticed (an old batch); after it,
        // newest-first sends every new batch before the old ones still waiting, oldest-first the reverse.
        let (first, second) = order == "newest" ? ("new-", "old-") : ("old-", "new-")
        let afterFirst = stored.dropFirst()
        let lastOfFirst = afterFirst.lastIndex { $0.hasPrefix(first) } ?? afterFirst.startIndex
        let firstOfSecond = afterFirst.firstIndex { $0.hasPrefix(second) } ?? afterFirst.endIndex
        #expect(stored.first?.hasPrefix("old-") == true && lastOfFirst < firstOfSecond, "stored order: \(stored)")
        uploader.signal(SIGTERM)
        #expect(await uploader.waitForExit(timeout: .seconds(20)) == 0, "\(uploader.standardError.suffix(2000))")
    }
}
