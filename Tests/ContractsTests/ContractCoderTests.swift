import Foundation
import Testing
import TestSupport
@testable import Contracts

@Suite
struct ContractCoderTests {
    static let t0 = Date(timeIntervalSince1970: 1_764_115_200) // 2025-11-26T00:00:00Z

    static let task = CollectionTask(
        taskID: "daily/2025-11-26T00:00:00Z/EMH-1", origin: .schedule, region: "west", lineID: "rs485-7",
        meterID: "EMH-1",
        meter: MeterAccess(endpoint: .gatewayUDP(host: "10.1.2.3", port: 4001), protocol: .dlmsHDLC, clientSAP: 17, hdlcPhysicalAddress: 18,
                           authentication: .lls, manufacturerProfile: .named("emh"),
                           keys: .init(password: WrappedSecret(masterKeyID: "m1", wrapped: String(repeating: "ab", count: 24)))),
        configVersion: 42, slot: t0, createdAt: t0, deadline: t0.addingTimeInterval(900),
        actions: [
            .readObjects([ObjectReference(classID: 3, obis: "1.0.1.8.0.255", attribute: 2)]),
            .readProfile(profile: ObjectReference(classID: 7, obis: "1.0.99.1.0.255", attribute: 2), from: t0.addingTimeInterval(-86400), to: t0),
            .synchronizeClock(maximumDeviation: 2.5),
            .setSupplyState(.disconnected),
        ])

    static let batch = ReadingBatch(
        batchID: "daily/2025-11-26T00:00:00Z/EMH-1#1", taskID: "daily/2025-11-26T00:00:00Z/EMH-1", region: "west",
        meterID: "EMH-1", collectedAt: t0.addingTimeInterval(12.345),
        readings: [
            Reading(obis: "1.0.1.8.0.255", classID: 3, attribute: 2, captureTime: t0, valueType: .number, value: "12345.678", unit: "kWh"),
            Reading(obis: "0.0.96.3.10.255", classID: 70, attribute: 2, captureTime: t0, valueType: .boolean, value: "true", status: 8),
        ])

    static let result = TaskResult(
        taskID: "cmd-9", commandID: "9", region: "west", lineID: "tcp-1", meterID: "EMH-1", outcome: .failed,
        failure: .init(code: "meter.timeout", reason: "no answer within 5 s", retriable: true, step: "associate"),
        startedAt: t0, finishedAt: t0.addingTimeInterval(5), readingCount: 0, details: ["supplyState": "connected"])

    @Test
    func roundTrips() throws {
        #expect(try ContractCoder.decode(CollectionTask.self, from: ContractCoder.encode(Self.task)) == Self.task)
        #expect(try ContractCoder.decode(ReadingBatch.self, from: ContractCoder.encode(Self.batch)) == Self.batch)
        #expect(try ContractCoder.decode(TaskResult.self, from: ContractCoder.encode(Self.result)) == Self.result)
    }

    @Test
    func wireFormatIsStable() throws {
        let json = String(decoding: try ContractCoder.encode(Self.task), as: UTF8.self)
        #expect(json.contains(#""schema":"collection-task\/v2""#))
        #expect(json.contains(#""type":"read-profile""#))
        #expect(json.contains(#""slot":"2025-11-26T00:00:00.000Z""#))
        #expect(json.contains(#""origin":"schedule""#))
    }

    @Test("dates outside years 0001…9999 are malformed: a five-digit year would not survive being written again (found by FuzzContracts)")
    func fiveDigitYearIsRefused() throws {
        var object = try JSONSerialization.jsonObject(with: Data(ContractCoder.encode(Self.batch))) as! [String: Any]
        object["collectedAt"] = "20251-1-26T00:00:12.345Z"
        let bytes = Array(try JSONSerialization.data(withJSONObject: object))
        #expect(throws: ContractError.self) { try ContractCoder.decode(ReadingBatch.self, from: bytes) }
        #expect(ContractDate.parse("9999-12-31T23:59:59.999Z") != nil)
        #expect(ContractDate.parse("2025-11-26T00:00:00+01:00") == Date(timeIntervalSince1970: 1_764_111_600), "other ISO 8601 forms still read")
        #expect(ContractDate.parse("+12025-11-26T00:00:00Z") == nil)
    }

    @Test
    func unknownMajorVersionIsRefused() throws {
        var object = try JSONSerialization.jsonObject(with: Data(ContractCoder.encode(Self.batch))) as! [String: Any]
        object["schema"] = "reading-batch/v2"
        let bytes = Array(try JSONSerialization.data(withJSONObject: object))
        #expect(throws: ContractError(.unsupportedVersion, "")) { try ContractCoder.decode(ReadingBatch.self, from: bytes) }
    }

    @Test
    func otherContractIsRefused() throws {
        let bytes = try ContractCoder.encode(Self.result)
        #expect(throws: ContractError(.wrongSchema, "")) { try ContractCoder.decode(ReadingBatch.self, from: bytes) }
    }

    @Test(arguments: [
        (#"{"taskID":"x"}"#, ContractError.Code.missingSchema),
        ("not json", .malformed),
        (#"[1,2]"#, .malformed),
        (#"{"schema":"task-result"}"#, .malformed),
        (#"{"schema":"task-result/vX"}"#, .malformed),
        (#"{"schema":"task-result/v1","taskID":"t"}"#, .malformed),
    ])
    func malformedInputIsATypedError(json: String, code: ContractError.Code) {
        do {
            _ = try ContractCoder.decode(TaskResult.self, from: Array(json.utf8))
            Issue.record("expected \(code)")
        } catch let error as ContractError {
            #expect(error.code == code, "\(error)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test
    func missingFieldIsNamedWithItsPath() throws {
        var object = try JSONSerialization.jsonObject(with: Data(ContractCoder.encode(Self.task))) as! [String: Any]
        var actions = object["actions"] as! [[String: Any]]
        actions[1]["profile"] = nil
        object["actions"] = actions
        do {
            _ = try ContractCoder.decode(CollectionTask.self, from: Array(try JSONSerialization.data(withJSONObject: object)))
            Issue.record("expected an error")
        } catch let error as ContractError {
            #expect(error.code == .malformed)
            #expect(error.reason.contains("actions.[1].profile"), "\(error.reason)")
        }
    }

    @Test
    func profileRangeMustBeOrdered() throws {
        let json = String(decoding: try ContractCoder.encode(Self.task), as: UTF8.self)
            .replacingOccurrences(of: #""from":"2025-11-25T00:00:00.000Z""#, with: #""from":"2025-11-27T00:00:00.000Z""#)
        #expect(throws: ContractError(.malformed, "")) { try ContractCoder.decode(CollectionTask.self, from: Array(json.utf8)) }
    }

    @Test
    func naturalKeyIdentifiesAReading() {
        let reading = Self.batch.readings[0]
        #expect(reading.naturalKey(meterID: "EMH-1") == "EMH-1|1.0.1.8.0.255|2|2025-11-26T00:00:00.000Z")
    }

    @Test
    func topicsOfARegion() {
        #expect(KafkaTopics.all(regions: ["west"]) == ["hes.tasks.west", "hes.tasks.west.priority", "hes.readings", "hes.results", "hes.readings.dlq"])
    }
}

@Suite
struct ContractDateTests {
    /// The hand-written formatter and parser agree with Foundation's ISO 8601 style over random
    /// instants from 1900 to 2200 (Foundation formats the whole seconds; the milliseconds are the
    /// instant's own), and parse back to the millisecond.
    @Test
    func agreesWithFoundation() {
        var generator = SystemRandomNumberGenerator()
        let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt)
        for _ in 0..<2000 {
            let milliseconds = Int64.random(in: -2_208_988_800_000...7_258_118_400_000, using: &generator)
            let date = Date(timeIntervalSince1970: Double(milliseconds) / 1000)
            let text = ContractDate.format(date)
            let seconds = milliseconds >= 0 ? milliseconds / 1000 : (milliseconds - 999) / 1000
            let whole = Date(timeIntervalSince1970: Double(seconds)).formatted(style)
            let expected = whole.dropLast(5) + String(format: ".%03dZ", Int(milliseconds - seconds * 1000))
            #expect(text == expected, "\(milliseconds)")
            #expect(ContractDate.parse(text).map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) } == milliseconds, "\(text)")
        }
        #expect(ContractDate.parse("2025-11-26T00:00:00Z") == Date(timeIntervalSince1970: 1_764_115_200))
        #expect(ContractDate.parse("2025-11-26T01:00:00+01:00") == Date(timeIntervalSince1970: 1_764_115_200))
        #expect(ContractDate.parse("2025-13-26T00:00:00Z") == nil)
        #expect(ContractDate.parse("yesterday") == nil)
    }
}

@Suite
struct ContractJSONWriterTests {
    static func randomText(_ generator: inout some RandomNumberGenerator) -> String {
        let alphabet: [Character] = ["a", "Z", "0", "/", "\\", "\"", "\n", "\t", "\r", "\u{08}", "\u{0C}", "\u{01}", "\u{1F}", "é", "€", "😀", " ", "|", "#"]
        return String((0..<Int.random(in: 0...12, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
    }

    /// The hand-written JSON of batches and results is byte for byte what JSONEncoder writes.
    @Test(arguments: 0..<50)
    func sameBytesAsJSONEncoder(seed: Int) throws {
        var generator = SeededGenerator(seed: UInt64(seed))
        func date() -> Date { Date(timeIntervalSince1970: Double(Int64.random(in: 0...4_102_444_800_000, using: &generator)) / 1000) }
        let readings = (0..<Int.random(in: 0...30, using: &generator)).map { _ in
            Reading(obis: Self.randomText(&generator), classID: Int.random(in: 0...70, using: &generator), attribute: Int.random(in: -1...20, using: &generator),
                    captureTime: date(), valueType: [.number, .text, .boolean, .octets, .dateTime].randomElement(using: &generator)!,
                    value: Self.randomText(&generator), unit: Bool.random(using: &generator) ? Self.randomText(&generator) : nil,
                    status: Bool.random(using: &generator) ? Int.random(in: 0...255, using: &generator) : nil)
        }
        let batch = ReadingBatch(batchID: Self.randomText(&generator), taskID: Self.randomText(&generator), region: "r/1", meterID: Self.randomText(&generator),
                                 collectedAt: date(), readings: readings)
        #expect(try ContractCoder.encode(batch) == ContractCoder.encodeWithFoundation(batch))
        var details: [String: String] = [:]
        for _ in 0..<Int.random(in: 0...5, using: &generator) { details[Self.randomText(&generator)] = Self.randomText(&generator) }
        let result = TaskResult(
            taskID: Self.randomText(&generator), commandID: Bool.random(using: &generator) ? Self.randomText(&generator) : nil, region: "r",
            lineID: Self.randomText(&generator), meterID: "m", outcome: [.succeeded, .partial, .failed, .expired].randomElement(using: &generator)!,
            failure: Bool.random(using: &generator) ? .init(code: Self.randomText(&generator), reason: Self.randomText(&generator),
                                                            retriable: Bool.random(using: &generator), step: Bool.random(using: &generator) ? "get" : nil) : nil,
            startedAt: date(), finishedAt: date(), readingCount: Int.random(in: 0...1000, using: &generator), details: details)
        #expect(try ContractCoder.encode(result) == ContractCoder.encodeWithFoundation(result))
        #expect(try ContractCoder.decode(ReadingBatch.self, from: ContractCoder.encode(batch)) == batch)
    }
}
