import Contracts
import Foundation
import Logging
import Persistence
import PostgresNIO

/// ims-sim's durable store in its own PostgreSQL database (migrations in `Migrations/`):
/// requests by idempotency key with their replies, batches, readings by natural key, results
/// by task id, and counters of what was absorbed.
///
/// Each request is one transaction: its key is claimed first (a concurrent retry of the same
/// request waits for it and then gets the same reply), then the accepted items are inserted
/// with `ON CONFLICT DO NOTHING`, so a reading the IMS holds already is counted as a duplicate
/// and never stored twice.
struct IMSStore: Sendable {
    let database: DatabaseService
    let logger: Logger

    /// The migrations of ims-sim's own schema.
    static func migrations() throws -> [Migration] {
        guard let directory = Bundle.module.url(forResource: "Migrations", withExtension: nil) else {
            throw IMSSimError.storeFailed("the bundled migrations of ims-sim are missing")
        }
        return try Migration.load(from: directory)
    }

    /// Stores a readings request's accepted batches, or replays the reply of the same request id.
    func storeReadings(requestID: String, decision: IMSIntake.Decision<ReadingBatch>) async throws -> IMSDeliveryReply {
        try await database.withTransaction { connection in
            if let replay = try await claim(requestID: requestID, kind: "readings", on: connection) { return replay }
            var meterIDs: [String] = [], obis: [String] = [], attributes: [Int] = [], classIDs: [Int] = []
            var captureTimes: [Date] = [], valueTypes: [String] = [], values: [String] = [], units: [String] = []
            var statuses: [Int] = [], batchIDs: [String] = []
            let readingCount = decision.accepted.reduce(0) { $0 + $1.readings.count }
            meterIDs.reserveCapacity(readingCount); obis.reserveCapacity(readingCount); values.reserveCapacity(readingCount)
            for batch in decision.accepted {
                for reading in batch.readings {
                    meterIDs.append(batch.meterID)
                    obis.append(reading.obis)
                    attributes.append(reading.attribute)
                    classIDs.append(reading.classID)
                    captureTimes.append(reading.captureTime)
                    valueTypes.append(reading.valueType.rawValue)
                    values.append(reading.value)
                    units.append(reading.unit ?? "")
                    statuses.append(reading.status ?? -1)
                    batchIDs.append(batch.batchID)
                }
            }
            if !decision.accepted.isEmpty {
                let accepted = decision.accepted
                try await connection.query("""
                    INSERT INTO ims_batches (batch_id, task_id, region, meter_id, collected_at, reading_count)
                    SELECT * FROM unnest(\(accepted.map(\.batchID))::text[], \(accepted.map(\.taskID))::text[], \(accepted.map(\.region))::text[],
                                         \(accepted.map(\.meterID))::text[], \(accepted.map(\.collectedAt))::timestamptz[], \(accepted.map(\.readings.count))::int[])
                    ON CONFLICT DO NOTHING
                    """, logger: logger)
            }
            var stored = 0
            if readingCount > 0 {
                let rows = try await connection.query("""
                    WITH inserted AS (
                        INSERT INTO ims_readings (meter_id, obis, attribute, capture_time, class_id, value_type, value, unit, status, batch_id)
                        SELECT m, o, a, t, c, vt, v, NULLIF(u, ''), NULLIF(s, -1), b
                        FROM unnest(\(meterIDs)::text[], \(obis)::text[], \(attributes)::int[], \(captureTimes)::timestamptz[], \(classIDs)::int[],
                                    \(valueTypes)::text[], \(values)::text[], \(units)::text[], \(statuses)::int[], \(batchIDs)::text[])
                             AS incoming (m, o, a, t, c, vt, v, u, s, b)
                        ON CONFLICT DO NOTHING
                        RETURNING 1)
                    SELECT count(*)::bigint FROM inserted
                    """, logger: logger)
                for try await count in rows.decode(Int.self) { stored = count }
            }
            let reply = IMSDeliveryReply(
                requestID: requestID, status: IMSIntake.status(accepted: decision.accepted.count, rejected: decision.rejected.count),
                accepted: decision.accepted.count, stored: stored, duplicates: readingCount - stored, rejected: decision.rejected)
            try await finish(requestID: requestID, reply: reply, duplicateCounter: "duplicate_readings", on: connection)
            return reply
        }
    }

    /// Stores a results request's accepted results, or replays the reply of the same request id.
    func storeResults(requestID: String, decision: IMSIntake.Decision<TaskResult>) async throws -> IMSDeliveryReply {
        try await database.withTransaction { connection in
            if let replay = try await claim(requestID: requestID, kind: "results", on: connection) { return replay }
            let results = decision.accepted
            var stored = 0
            if !results.isEmpty {
                let rows = try await connection.query("""
                    WITH inserted AS (
                        INSERT INTO ims_results (task_id, command_id, region, meter_id, outcome, failure_code, reading_count, finished_at)
                        SELECT t, NULLIF(c, ''), r, m, o, NULLIF(f, ''), n, e
                        FROM unnest(\(results.map(\.taskID))::text[], \(results.map { $0.commandID ?? "" })::text[], \(results.map(\.region))::text[],
                                    \(results.map(\.meterID))::text[], \(results.map(\.outcome.rawValue))::text[], \(results.map { $0.failure?.code ?? "" })::text[],
                                    \(results.map(\.readingCount))::int[], \(results.map(\.finishedAt))::timestamptz[])
                             AS incoming (t, c, r, m, o, f, n, e)
                        ON CONFLICT DO NOTHING
                        RETURNING 1)
                    SELECT count(*)::bigint FROM inserted
                    """, logger: logger)
                for try await count in rows.decode(Int.self) { stored = count }
            }
            let reply = IMSDeliveryReply(
                requestID: requestID, status: IMSIntake.status(accepted: results.count, rejected: decision.rejected.count),
                accepted: results.count, stored: stored, duplicates: results.count - stored, rejected: decision.rejected)
            try await finish(requestID: requestID, reply: reply, duplicateCounter: "duplicate_results", on: connection)
            return reply
        }
    }

    /// Claims `requestID`; returns the kept reply when the request was seen before.
    private func claim(requestID: String, kind: String, on connection: PostgresConnection) async throws -> IMSDeliveryReply? {
        let claimed = try await connection.query(
            "INSERT INTO ims_requests (request_id, kind) VALUES (\(requestID), \(kind)) ON CONFLICT DO NOTHING RETURNING 1", logger: logger)
        var isNew = false
        for try await _ in claimed { isNew = true }
        if isNew {
            try await connection.query("UPDATE ims_counters SET value = value + 1 WHERE name = 'requests'", logger: logger)
            return nil
        }
        let kept = try await connection.query("SELECT reply FROM ims_requests WHERE request_id = \(requestID)", logger: logger)
        var replyText: String?
        for try await text in kept.decode(String?.self) { replyText = text }
        try await connection.query("UPDATE ims_counters SET value = value + 1 WHERE name = 'replayed_requests'", logger: logger)
        guard let replyText, var reply = try? ContractCoder.decode(IMSDeliveryReply.self, from: Array(replyText.utf8)) else {
            throw IMSSimError.storeFailed("request \(requestID) was recorded without its reply")
        }
        reply.replayed = true
        return reply
    }

    private func finish(requestID: String, reply: IMSDeliveryReply, duplicateCounter: String, on connection: PostgresConnection) async throws {
        let replyText = String(decoding: try ContractCoder.encode(reply), as: UTF8.self)
        try await connection.query("UPDATE ims_requests SET reply = \(replyText) WHERE request_id = \(requestID)", logger: logger)
        try await connection.query("""
            UPDATE ims_counters SET value = value + CASE name WHEN \(duplicateCounter) THEN \(reply.duplicates) ELSE \(reply.rejected.count) END
            WHERE name IN (\(duplicateCounter), 'rejected_items')
            """, logger: logger)
    }

    // MARK: - What the IMS holds

    func stats(perMeter: Bool) async throws -> IMSStats {
        try await database.withConnection { connection in
            var stats = IMSStats()
            let counters = try await connection.query("SELECT name, value FROM ims_counters", logger: logger)
            for try await (name, value) in counters.decode((String, Int).self) {
                switch name {
                case "requests": stats.requests = value
                case "replayed_requests": stats.replayedRequests = value
                case "duplicate_readings": stats.duplicateReadings = value
                case "duplicate_results": stats.duplicateResults = value
                case "rejected_items": stats.rejectedItems = value
                default: break
                }
            }
            let totals = try await connection.query("""
                SELECT (SELECT count(*) FROM ims_batches)::bigint, (SELECT count(*) FROM ims_readings)::bigint, (SELECT count(*) FROM ims_results)::bigint
                """, logger: logger)
            for try await (batches, readings, results) in totals.decode((Int, Int, Int).self) {
                stats.batches = batches
                stats.readings = readings
                stats.results = results
            }
            if perMeter {
                var meters: [IMSStats.Meter] = []
                let rows = try await connection.query(
                    "SELECT meter_id, count(*)::bigint, max(capture_time) FROM ims_readings GROUP BY meter_id ORDER BY meter_id", logger: logger)
                for try await (meterID, readings, last) in rows.decode((String, Int, Date).self) {
                    meters.append(.init(meterID: meterID, readings: readings, lastCaptureTime: last))
                }
                stats.meters = meters
            }
            return stats
        }
    }

    /// The readings held for one meter, in capture-time order.
    func readings(meterID: String) async throws -> [Reading] {
        try await database.withConnection { connection in
            let rows = try await connection.query("""
                SELECT obis, class_id, attribute, capture_time, value_type, value, unit, status
                FROM ims_readings WHERE meter_id = \(meterID) ORDER BY capture_time, obis, attribute
                """, logger: logger)
            var readings: [Reading] = []
            for try await (obis, classID, attribute, captureTime, valueType, value, unit, status) in rows.decode((String, Int, Int, Date, String, String, String?, Int?).self) {
                readings.append(Reading(obis: obis, classID: classID, attribute: attribute, captureTime: captureTime,
                                        valueType: Reading.ValueType(rawValue: valueType) ?? .text, value: value, unit: unit, status: status))
            }
            return readings
        }
    }

    /// The results held, optionally for one meter.
    func results(meterID: String?) async throws -> [IMSStats.StoredResult] {
        try await database.withConnection { connection in
            let rows = try await connection.query("""
                SELECT task_id, command_id, meter_id, outcome, failure_code, reading_count
                FROM ims_results WHERE \(meterID == nil) OR meter_id = \(meterID ?? "") ORDER BY task_id
                """, logger: logger)
            var results: [IMSStats.StoredResult] = []
            for try await (taskID, commandID, meterID, outcome, failureCode, readingCount) in rows.decode((String, String?, String, String, String?, Int).self) {
                results.append(.init(taskID: taskID, commandID: commandID, meterID: meterID, outcome: outcome, failureCode: failureCode, readingCount: readingCount))
            }
            return results
        }
    }
}

/// `GET /v1/stats`: what the simulated IMS holds and what it absorbed.
struct IMSStats: Codable, Sendable, Equatable {
    struct Meter: Codable, Sendable, Equatable {
        var meterID: String
        var readings: Int
        var lastCaptureTime: Date
    }

    struct StoredResult: Codable, Sendable, Equatable {
        var taskID: String
        var commandID: String?
        var meterID: String
        var outcome: String
        var failureCode: String?
        var readingCount: Int
    }

    var requests = 0
    /// Requests answered from the idempotency store (a retry of a request already stored).
    var replayedRequests = 0
    var batches = 0
    var readings = 0
    /// Readings received again and not stored again (redelivery, deduplicated by natural key).
    var duplicateReadings = 0
    var results = 0
    var duplicateResults = 0
    var rejectedItems = 0
    /// Per meter, with `?meters=true`.
    var meters: [Meter]?
}
