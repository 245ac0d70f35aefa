import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Persistence
import ServiceRuntime
import Testing
import TestSupport
@testable import IMSSim

/// ims-sim's API against its real store (a private PostgreSQL database per test).
@Suite("ims-sim: deduplication, rejections, faults and stats", .timeLimit(.minutes(3)))
struct IMSSimRouteTests {
    static let logger = Logger(label: "ims-sim-test")
    static let t0 = Date(timeIntervalSince1970: 1_764_547_200)  // 2025-12-01T00:00:00Z

    /// Runs `body` with the API's router over a fresh store.
    func withIMS(faults: IMSFaults = IMSFaults(), token: String? = nil, now: Date = t0.addingTimeInterval(3600),
                 _ body: @Sendable (any TestClientProtocol, IMSFaultSwitch) async throws -> Void) async throws {
        let database = try await PostgresTestCluster.shared.createDatabase(prefix: "ims_sim")
        _ = try await MigrationRunner(migrations: IMSStore.migrations(), logger: Self.logger).run(configuration: database.configuration)
        let service = DatabaseService(configuration: .init(database: database.configuration, runMigrations: false), logger: Self.logger)
        let faultSwitch = IMSFaultSwitch(faults)
        var routes = IMSRoutes(store: IMSStore(database: service, logger: Self.logger), faults: faultSwitch, token: token,
                               maxRequestBytes: 1 << 20, logger: Self.logger)
        routes.now = { now }
        routes.draw = { 0.5 }
        let configuredRoutes = routes
        let server = APIServer(configuration: .init(port: 0, name: "ims api"), logger: Self.logger) { configuredRoutes.register($0) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await service.client.run() }
            try await Application(router: server.makeRouter()).test(.router) { client in try await body(client, faultSwitch) }
            group.cancelAll()
        }
    }

    static func batch(_ meter: String, task: String, hours: Range<Int>) -> ReadingBatch {
        ReadingBatch(batchID: "\(task)#readings", taskID: task, region: "r", meterID: meter, collectedAt: t0.addingTimeInterval(3600),
                     readings: hours.map { Reading(obis: "1.0.1.8.0.255", classID: 3, attribute: 2, captureTime: t0.addingTimeInterval(Double($0) * 900),
                                                   valueType: .number, value: "\($0).5", unit: "Wh") })
    }

    static func post(_ client: any TestClientProtocol, _ path: String = IMSAPI.readingsPath, body: [UInt8], key: String? = nil,
                     token: String? = nil) async throws -> (HTTPResponse.Status, IMSDeliveryReply?, String) {
        var headers = HTTPFields()
        if let key { headers[HTTPField.Name(IMSAPI.idempotencyKeyHeader)!] = key }
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await client.execute(uri: path, method: .post, headers: headers, body: ByteBuffer(bytes: body)) { response in
            let bytes = Array(response.body.readableBytesView)
            return (response.status, try? ContractCoder.decode(IMSDeliveryReply.self, from: bytes), String(decoding: bytes, as: UTF8.self))
        }
    }

    static func stats(_ client: any TestClientProtocol) async throws -> IMSStats {
        try await client.execute(uri: "/v1/stats?meters=true", method: .get) { response in
            return try ContractCoder.makeDecoder().decode(IMSStats.self, from: Data(response.body.readableBytesView))
        }
    }

    @Test("a request sent twice is replayed, overlapping readings are stored once and counted as duplicates")
    func deduplication() async throws {
        try await withIMS { client, _ in
            let first = try ContractCoder.encode(IMSReadingsRequest(requestID: "r1", batches: [Self.batch("m1", task: "t1", hours: 0..<4)]))
            let (status, reply, text) = try await Self.post(client, body: first, key: "r1")
            #expect(status == .ok, "\(text)")
            #expect(reply?.status == .ok && reply?.stored == 4 && reply?.duplicates == 0 && reply?.replayed == false)
            let (_, again, _) = try await Self.post(client, body: first, key: "r1")
            #expect(again?.replayed == true && again?.stored == 4, "the same key gets the same reply")
            // Another request (a restarted uploader batching differently) with overlapping readings.
            let overlap = try ContractCoder.encode(IMSReadingsRequest(requestID: "r2", batches: [Self.batch("m1", task: "t2", hours: 2..<6)]))
            let (_, second, _) = try await Self.post(client, body: overlap)
            #expect(second?.stored == 2 && second?.duplicates == 2)
            let stats = try await Self.stats(client)
            #expect(stats.readings == 6 && stats.duplicateReadings == 2 && stats.replayedRequests == 1 && stats.requests == 2 && stats.batches == 2)
            #expect(stats.meters == [.init(meterID: "m1", readings: 6, lastCaptureTime: Self.t0.addingTimeInterval(5 * 900))])
            let held = try await client.execute(uri: "/v1/meters/m1/readings", method: .get) { response in String(buffer: response.body) }
            #expect(held.contains("\"5.5\"") && held.contains("\"0.5\""))
        }
    }

    @Test("items are rejected one by one: unknown meters, unreadable items and future readings; all rejected is 422 FAILED")
    func rejections() async throws {
        try await withIMS(faults: IMSFaults(rejectMeters: ["ghost"])) { client, _ in
            var future = Self.batch("m2", task: "t4", hours: 0..<1)
            future.readings[0].captureTime = Self.t0.addingTimeInterval(10 * 86_400)
            let body = IMSRequestBody.readings(requestID: "r3", rawBatches: [
                try ContractCoder.encode(Self.batch("m1", task: "t1", hours: 0..<2)),
                try ContractCoder.encode(Self.batch("ghost", task: "t2", hours: 0..<2)),
                Array(#"{"schema":"reading-batch/v7","batchID":"t3#readings"}"#.utf8),
                try ContractCoder.encode(future),
            ])
            let (status, reply, text) = try await Self.post(client, body: body)
            #expect(status == .ok, "\(text)")
            #expect(reply?.status == .partial && reply?.accepted == 1 && reply?.stored == 2)
            #expect(reply?.rejected.map(\.index) == [1, 2, 3])
            #expect(reply?.rejected.map(\.code) == ["meter.unknown", "item.invalid", "capture-time.future"])
            #expect(reply?.rejected[1].id == "t3#readings")
            let onlyGhost = IMSRequestBody.readings(requestID: "r4", rawBatches: [try ContractCoder.encode(Self.batch("ghost", task: "t5", hours: 0..<1))])
            let (failedStatus, failed, _) = try await Self.post(client, body: onlyGhost)
            #expect(failedStatus == .unprocessableContent && failed?.status == .failed && failed?.rejected.count == 1)
            #expect(try await Self.stats(client).rejectedItems == 4)
            let (malformed, _, problem) = try await Self.post(client, body: Array("not json".utf8))
            #expect(malformed == .badRequest && problem.contains("not a readings delivery request"), "\(problem)")
            let (mismatch, _, _) = try await Self.post(client, body: onlyGhost, key: "other")
            #expect(mismatch == .badRequest, "the header key must match the body's")
        }
    }

    @Test("outages and failures answer 503 and store nothing; faults switch at run time; a token is asked for")
    func faultsAndToken() async throws {
        try await withIMS(token: "s3cret") { client, faults in
            let body = try ContractCoder.encode(IMSReadingsRequest(requestID: "r5", batches: [Self.batch("m1", task: "t1", hours: 0..<1)]))
            #expect(try await Self.post(client, body: body).0 == .unauthorized)
            faults.replace(with: IMSFaults(outageFrom: Self.t0, outageUntil: Self.t0.addingTimeInterval(7200)))
            #expect(try await Self.post(client, body: body, token: "s3cret").0 == .serviceUnavailable)
            faults.replace(with: IMSFaults(failureRate: 0.6))  // the injected draw is 0.5
            #expect(try await Self.post(client, body: body, token: "s3cret").0 == .serviceUnavailable)
            faults.replace(with: IMSFaults(failureRate: 0.4))
            #expect(try await Self.post(client, body: body, token: "s3cret").0 == .ok)
            var headers = HTTPFields()
            headers[.authorization] = "Bearer s3cret"
            let badPlan = try await client.execute(uri: "/v1/faults", method: .put, headers: headers, body: ByteBuffer(string: #"{"failureRate": 2, "latencyMilliseconds": 0, "slowAcceptMilliseconds": 0, "rejectMeters": []}"#)) { $0.status }
            #expect(badPlan == .badRequest)
            let outage = try await client.execute(uri: "/v1/faults/outage", method: .post, headers: headers, body: ByteBuffer(string: #"{"seconds": 60}"#)) { $0.status }
            #expect(outage == .ok)
            #expect(try await Self.post(client, body: body, token: "s3cret").0 == .serviceUnavailable)
            let cleared = try await client.execute(uri: "/v1/faults", method: .delete, headers: headers) { $0.status }
            #expect(cleared == .ok)
            let (status, reply, _) = try await Self.post(client, body: body, token: "s3cret")
            #expect(status == .ok && reply?.replayed == true)
        }
    }

    @Test("CIM deliveries are stored with the native ones: same dedup by natural key and MessageID, per-item rejections as Errors, FAILED for the rest")
    func cimDelivery() async throws {
        try await withIMS(faults: IMSFaults(rejectMeters: ["ghost"])) { client, faults in
            var m1 = Self.batch("m1", task: "t1", hours: 0..<4)
            m1.readings[1].status = 8
            m1.readings[2].value = "a<b&c"
            m1.readings[2].valueType = .text
            let body = CIMMeterReadings.requestMessage(messageID: "cim-1", timestamp: Self.t0, batches: [m1, Self.batch("ghost", task: "t2", hours: 0..<2)])
            let (status, _, text) = try await Self.post(client, CIMMeterReadings.path, body: body, key: "cim-1")
            #expect(status == .ok, "\(text)")
            #expect(text.contains("<Result>PARTIAL</Result>") && text.contains("<code>meter.unknown</code>")
                && text.contains("<xpath>/RequestMessage/Payload/MeterReadings/MeterReading[2]</xpath>")
                && text.contains("<ID kind=\"name\" objectType=\"MeterReading\">t2#readings</ID>"), "\(text)")
            let held = try await client.execute(uri: "/v1/meters/m1/readings", method: .get) { response in
                try ContractCoder.makeDecoder().decode([Reading].self, from: Data(response.body.readableBytesView))
            }
            #expect(held == m1.readings, "the IMS holds what was sent, as the native path stores it")
            // The same message again is replayed; a native request overlapping it stores only what is new.
            let (_, _, again) = try await Self.post(client, CIMMeterReadings.path, body: body)
            #expect(again.contains("<Result>PARTIAL</Result>"))
            let overlap = try ContractCoder.encode(IMSReadingsRequest(requestID: "n1", batches: [Self.batch("m1", task: "t3", hours: 2..<6)]))
            #expect(try await Self.post(client, body: overlap).1.map { ($0.stored, $0.duplicates) } ?? (0, 0) == (2, 2))
            let stats = try await Self.stats(client)
            #expect(stats.readings == 6 && stats.replayedRequests == 1 && stats.requests == 2 && stats.rejectedItems == 1)
            // Every item rejected: 422 FAILED with the items.
            let ghost = CIMMeterReadings.requestMessage(messageID: "cim-2", timestamp: Self.t0, batches: [Self.batch("ghost", task: "t4", hours: 0..<1)])
            let (failedStatus, _, failed) = try await Self.post(client, CIMMeterReadings.path, body: ghost)
            #expect(failedStatus == .unprocessableContent && failed.contains("<Result>FAILED</Result>") && failed.contains("MeterReading[1]"))
            // Refused as a whole: malformed, a key that differs, an outage.
            for broken in ["<RequestMessage", "{\"schema\":\"ims-readings/v1\"}", "<RequestMessage xmlns=\"urn:other\"/>"] {
                let (malformed, _, reply) = try await Self.post(client, CIMMeterReadings.path, body: Array(broken.utf8))
                #expect(malformed == .badRequest && reply.contains("<Result>FAILED</Result>") && reply.contains("request.malformed"), "\(reply)")
            }
            #expect(try await Self.post(client, CIMMeterReadings.path, body: body, key: "other").0 == .badRequest)
            faults.replace(with: IMSFaults(outageFrom: Self.t0, outageUntil: Self.t0.addingTimeInterval(7200)))
            let (down, _, downReply) = try await Self.post(client, CIMMeterReadings.path, body: body)
            #expect(down == .serviceUnavailable && downReply.contains("<Result>FAILED</Result>"))
        }
    }

    @Test("results are stored once per task id")
    func results() async throws {
        try await withIMS { client, _ in
            let result = TaskResult(taskID: "cmd-1", commandID: "c1", region: "r", lineID: "l", meterID: "m1", outcome: .succeeded, failure: nil,
                                    startedAt: Self.t0, finishedAt: Self.t0, readingCount: 0, details: ["disconnect.state": "disconnected"])
            let body = IMSRequestBody.results(requestID: "x1", rawResults: [try ContractCoder.encode(result)])
            let (status, reply, text) = try await Self.post(client, IMSAPI.resultsPath, body: body)
            #expect(status == .ok && reply?.stored == 1, "\(text)")
            let again = IMSRequestBody.results(requestID: "x2", rawResults: [try ContractCoder.encode(result)])
            #expect(try await Self.post(client, IMSAPI.resultsPath, body: again).1?.duplicates == 1)
            #expect(try await Self.stats(client).results == 1)
        }
    }
}
