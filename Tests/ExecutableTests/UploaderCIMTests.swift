import Contracts
import Foundation
import Logging
import Messaging
import Persistence
import PostgresNIO
import Testing
import TestSupport

/// The uploader with `--ims-format cim` between kafka-dev and ims-sim, as processes: reading
/// batches travel as IEC 61968-9 MeterReadings (61968-100 RequestMessage) and arrive exactly once,
/// equal to what was published (odd characters and statuses included), through SIGKILLs of the
/// uploader; an item the IMS rejects in its CIM reply lands on `hes.readings.dlq`.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct UploaderCIMTests {
    typealias Stack = UploaderDeliveryTests.Stack
    static let t0 = UploaderDeliveryTests.t0

    /// A day's quarter hours of one meter, with a text register whose value needs XML escaping
    /// and statuses on some profile rows.
    static func batch(meter: String, quarterHours: Int) -> ReadingBatch {
        var batch = UploaderDeliveryTests.batch(meter: meter, task: "cim-\(meter)", quarterHours: quarterHours)
        for index in batch.readings.indices where index % 5 == 0 { batch.readings[index].status = index % 256 }
        batch.readings.append(Reading(obis: "0.0.96.1.0.255", classID: 1, attribute: 2, captureTime: t0.addingTimeInterval(0.25), valueType: .text,
                                      value: "<\(meter)> & \"id\" 'x'\r\n\u{00E9}\u{1F600}]]>", unit: "m3;x=%"))
        return batch
    }

    @Test("--ims-format cim: every reading reaches ims-sim exactly once and equal to what was published, through SIGKILLs; a rejected item goes to the DLQ")
    func cimDelivery() async throws {
        let stack = try Stack()
        defer { Task { await stack.stop() } }
        try await stack.startBase(imsArguments: ["--reject-meter", "GHOST", "--latency-ms", "40"])

        var configuration = KafkaConsumerConfiguration(bootstrapServers: stack.brokers, groupID: KafkaTestSupport.uniqueName("dlq-cim"), topics: [KafkaTopics.readingsDeadLetter])
        configuration.offsetReset = .earliest
        let dlqConsumer = try KafkaConsumer(configuration: configuration, logger: KafkaTestSupport.testLogger("dlq-cim"))
        let dlqRunning = Task { try await dlqConsumer.run() }
        let deadLetters = KafkaMessageCollector(dlqConsumer) { dlqConsumer.markFinished($0) }
        defer { dlqRunning.cancel() }

        let meters = (0..<120).map { String(format: "C%04d", $0) }
        var batches = meters.map { Self.batch(meter: $0, quarterHours: 24) }
        batches.insert(Self.batch(meter: "GHOST", quarterHours: 4), at: 60)
        let results = meters.prefix(10).map { UploaderDeliveryTests.result(meter: $0, task: "cim-\($0)") }
        let expectedReadings = batches.filter { $0.meterID != "GHOST" }.reduce(0) { $0 + $1.readings.count }
        try await UploaderDeliveryTests.publish(batches, results: Array(results), brokers: stack.brokers)

        let arguments = ["--ims-format", "cim", "--batch-readings", "300", "--in-flight", "1"]
        var seenBeforeKills: [Int] = []
        for round in 0..<3 {
            let uploader = try await stack.startUploader(arguments)
            try await Task.sleep(for: .milliseconds(500 + 200 * round))
            uploader.signal(SIGKILL)
            _ = await uploader.waitForExit(timeout: .seconds(5))
            seenBeforeKills.append(try stack.stats().readings)
        }
        #expect(seenBeforeKills.last.map { $0 < expectedReadings } == true, "the kills must land before the end: \(seenBeforeKills)")
        let last = try await stack.startUploader(arguments)
        let done = try await eventually(timeout: .seconds(90), interval: .milliseconds(250)) {
            let stats = try stack.stats()
            return stats.readings == expectedReadings && stats.results == results.count
        }
        let stats = try stack.stats()
        #expect(done, "IMS holds \(stats.readings) of \(expectedReadings) readings, \(stats.results) of \(results.count) results (kills at \(seenBeforeKills))\n\(last.standardError.suffix(3000))")

        // Equal to what was published, meter by meter (the IMS keeps no profile column).
        #expect(stats.meters?.count == meters.count)
        let decoder = ContractCoder.makeDecoder()
        for batch in batches where batch.meterID != "GHOST" {
            let response = try httpGet(port: stack.imsPort, path: "/v1/meters/\(batch.meterID)/readings")
            let held = try decoder.decode([Reading].self, from: Data(response.body.utf8))
            let sent = batch.readings.map { reading -> Reading in
                var reading = reading
                reading.profile = nil
                return reading
            }
            let order: (Reading, Reading) -> Bool = { ($0.captureTime, $0.obis, $0.attribute) < ($1.captureTime, $1.obis, $1.attribute) }
            #expect(held.sorted(by: order) == sent.sorted(by: order), "meter \(batch.meterID)")
        }

        // The deliveries went the CIM way: ims-sim counted them under its CIM route.
        let metrics = try httpGet(port: stack.imsAdminPort, path: "/metrics").body
        #expect(metrics.contains("kind=\"cim-readings\""), "\(metrics.prefix(2000))")

        let letters = try await deadLetters.wait(forCount: 1, timeout: .seconds(30))
        let letter = try ContractCoder.decode(DeadLetter.self, from: letters[0].value)
        #expect(letter.meterID == "GHOST" && letter.code == "ims.meter.unknown" && letter.reason.contains("not registered"), "\(letter)")
        #expect(letter.payload.contains("cim-GHOST#readings"))
        #expect(try await UploaderDeliveryTests.auditRejections(stack.hesDatabase) == ["meter:GHOST"])
        last.signal(SIGTERM)
        #expect(await last.waitForExit(timeout: .seconds(20)) == 0, "\(last.standardError.suffix(2000))")
    }
}
