import Foundation
import Testing
@testable import Contracts

/// The fast reader of reading batches takes what our writer writes and reads it to what
/// `JSONDecoder` reads; whatever else it leaves to `JSONDecoder` (so refusals read as before).
@Suite
struct ContractJSONReaderTests {
    static let t0 = Date(timeIntervalSince1970: 1_764_115_200.125)

    static let batch = ReadingBatch(
        batchID: "t-1#readings", taskID: "t-1", region: "west", meterID: "EMH-1é", collectedAt: t0.addingTimeInterval(12.345),
        readings: [
            Reading(obis: "1.0.1.8.0.255", classID: 3, attribute: 2, captureTime: t0, valueType: .number, value: "-12345.678", unit: "kWh"),
            Reading(obis: "0.0.96.3.10.255", classID: 70, attribute: 2, captureTime: t0, valueType: .boolean, value: "true", status: 8),
            Reading(obis: "1.0.2.8.0.255", classID: 7, attribute: 2, captureTime: t0.addingTimeInterval(900), valueType: .number, value: "0",
                    unit: "Wh", status: 0, profile: "1.0.99.1.0.255"),
            Reading(obis: "0.0.1.0.0.255", classID: 8, attribute: 2, captureTime: t0, valueType: .dateTime, value: "2025-11-26T00:00:00Z"),
        ])

    /// What JSONDecoder alone makes of `text` (nil when it refuses).
    static func foundation<Message: VersionedContract>(_ type: Message.Type, _ text: [UInt8]) -> Message? {
        try? ContractCoder.makeDecoder().decode(type, from: Data(text))
    }

    @Test("the writer's batches and requests take the fast path and read as JSONDecoder reads them")
    func writerOutput() throws {
        let bytes = try ContractCoder.encode(Self.batch)
        let fast = try #require(ContractCoder.fastPath(ReadingBatch.self, bytes), "the fast path took the writer's batch")
        #expect(fast == Self.batch)
        #expect(fast == Self.foundation(ReadingBatch.self, bytes))
        let body = IMSRequestBody.readings(requestID: "readings-1", rawBatches: [bytes, bytes])
        let request = try #require(ContractCoder.fastPath(IMSReadingsRequest.self, body))
        #expect(request.requestID == "readings-1" && request.batches == [.valid(Self.batch), .valid(Self.batch)])
        let slow = try #require(Self.foundation(IMSReadingsRequest.self, body))
        #expect(slow.requestID == request.requestID && slow.batches == request.batches)
    }

    @Test("other shapes go to JSONDecoder; what the fast path does take reads the same", arguments: [
        // Taken: whitespace, other key order, null optionals, negative and zero integers, escapes.
        (#" { "readings" : [ {"value":"1","obis":"1.0.1.8.0.255","classID":3,"attribute":2,"captureTime":"2025-11-26T00:00:00Z","valueType":"number","unit":null,"status":-0,"profile":null} ] , "schema":"reading-batch/v1","batchID":"b","taskID":"t","region":"r","meterID":"m","collectedAt":"2025-11-26T00:00:01.5Z"}"#, true),
        (#"{"schema":"reading-batch/v1","batchID":"b","taskID":"t","region":"r","meterID":"m","collectedAt":"2025-11-26T00:00:00Z","readings":[]}"#, true),
        (#"{"schema":"reading-batch/v1","batchID":"\ud83d","taskID":"t","region":"r","meterID":"m","collectedAt":"2025-11-26T00:00:00Z","readings":[]}"#, false),
        // Left to JSONDecoder: a lone surrogate (above), unknown or repeated keys, fractions, other schemas, broken JSON.
        (#"{"schema":"reading-batch\/v1","batchID":"b\"q\\ \u00e9\ud83d\ude00\n","taskID":"t","region":"r","meterID":"m","collectedAt":"2025-11-26T00:00:00Z","readings":[]}"#, true),
        (#"{"schema":"reading-batch/v1","batchID":"b","taskID":"t","region":"r","meterID":"m","collectedAt":"2025-11-26T00:00:00Z","readings":[],"extra":1}"#, false),
        (#"{"schema":"reading-batch/v1","batchID":"b","batchID":"c","taskID":"t","region":"r","meterID":"m","collectedAt":"2025-11-26T00:00:00Z","readings":[]}"#, false),
        (#"{"schema":"reading-batch/v1","batchID":"b","taskID":"t","region":"r","meterID":"m","collectedAt":"2025-11-26T00:00:00Z","readings":[{"value":"1","obis":"x","classID":3.0,"attribute":2,"captureTime":"2025-11-26T00:00:00Z","valueType":"number"}]}"#, false),
        (#"{"schema":"reading-batch/v1","batchID":"b","taskID":"t","region":"r","meterID":"m","collectedAt":"2025-11-26T00:00:00Z","readings":[{"value":"1","obis":"x","classID":03,"attribute":2,"captureTime":"2025-11-26T00:00:00Z","valueType":"number"}]}"#, false),
        (#"{"schema":"reading-batch/v2","batchID":"b","taskID":"t","region":"r","meterID":"m","collectedAt":"2025-11-26T00:00:00Z","readings":[]}"#, false),
        (#"{"schema":"reading-batch/v1","batchID":"b","taskID":"t","region":"r","meterID":"m","collectedAt":"yesterday","readings":[]}"#, false),
        (#"{"schema":"reading-batch/v1","batchID":"b","taskID":"t","region":"r","meterID":"m","collectedAt":"2025-11-26T00:00:00Z","readings":[]} x"#, false),
        (#"{"schema":"reading-batch/v1","batchID":"b","taskID":"t","region":"r","meterID":"m","collectedAt":"2025-11-26T00:00:00Z","readings":[{"value":"1","obis":"x","classID":99999999999999999999,"attribute":2,"captureTime":"2025-11-26T00:00:00Z","valueType":"number"}]}"#, false),
        (#"{"schema":"reading-batch/v1","batchID":"b","taskID":"t","region":"r","meterID":"m","collectedAt":"2025-11-26T00:00:00Z","readings":[{"value":"1","obis":"x","classID":3,"attribute":2,"captureTime":"2025-11-26T00:00:00Z","valueType":"kilowatts"}]}"#, false),
    ])
    func shapes(_ text: String, takesFastPath: Bool) {
        let bytes = Array(text.utf8)
        let fast = ContractCoder.fastPath(ReadingBatch.self, bytes)
        if let fast {
            #expect(fast == Self.foundation(ReadingBatch.self, bytes), "the fast path read \(text) differently")
        }
        #expect((fast != nil) == takesFastPath, "fast path \(fast == nil ? "not " : "")taken for \(text)")
        // ContractCoder.decode answers as JSONDecoder does either way.
        if let decoded = try? ContractCoder.decode(ReadingBatch.self, from: bytes) {
            #expect(decoded == Self.foundation(ReadingBatch.self, bytes))
        }
    }
}
