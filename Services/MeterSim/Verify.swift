import ArgumentParser
import AsyncHTTPClient
import COSEM
import Foundation
import MeterSimulation
import NIOCore
import NIOHTTP1

/// `meter-sim verify`: compares what the IMS (ims-sim) holds with what the running simulator's
/// meters hold. Every meter the simulator serves (its admin API's `GET /meters`, with the faults
/// each one has) is checked: a meter without faults must have every load-profile value of the
/// range at the IMS, with the simulated value, and a succeeded task result; a silent or garbage
/// meter must be reported failed (by reason). Ends with `SUMMARY {json}`; exits 0 only when the
/// numbers are right.
struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check what the IMS holds against what the simulated meters hold (SUMMARY line; exit 1 when readings are missing or wrong).")

    @Option(help: ArgumentHelp("The IMS simulator's API (its /v1/meters/{id}/readings and /v1/results).", valueName: "url"))
    var imsURL = "http://127.0.0.1:8090"

    @Option(help: ArgumentHelp("The running meter-sim's admin API (its GET /meters).", valueName: "url"))
    var simURL = "http://127.0.0.1:9105"

    @Option(help: ArgumentHelp("Load profile whose values must be at the IMS.", valueName: "obis"))
    var profile = "1.0.99.1.0.255"

    @Option(help: ArgumentHelp("Start of the profile range every healthy meter's values must cover (ISO 8601).", valueName: "time"))
    var from: String

    @Option(help: ArgumentHelp("End of that range (ISO 8601, inclusive).", valueName: "time"))
    var to: String

    @Option(help: "Seed of the simulator's deterministic data. Default: 0")
    var seed: UInt64 = 0

    @Option(help: "Meters checked at the same time. Default: 16")
    var concurrency = 16

    @Flag(help: "Print one line per meter that is not as expected (a healthy meter not read in full, a broken one not reported failed).")
    var verbose = false

    struct SimMeter: Decodable {
        struct Faults: Decodable { var silent: Bool; var garbage: Bool }
        var serial: String
        var faults: Faults
        var refusesAssociation: Bool

        /// Why this meter cannot be read, if it cannot.
        var deliberateFault: String? {
            if faults.silent { return "silent" }
            if faults.garbage { return "garbage" }
            if refusesAssociation { return "refuses-association" }
            return nil
        }
    }

    struct IMSReading: Decodable { var obis: String; var captureTime: Date; var value: String }
    struct IMSResult: Decodable { var taskID: String; var meterID: String; var outcome: String; var failureCode: String? }

    /// What one meter showed.
    struct MeterCheck: Sendable {
        var serial: String
        var fault: String?
        var expected = 0
        var confirmed = 0
        var wrong = 0
        var duplicates = 0
        var succeeded = false
        var failures: [String] = []
        var missingExample: String?
    }

    struct Summary: Encodable {
        var meters_expected = 0
        var meters_read = 0
        var meters_failed = 0
        var meters_failed_by_reason: [String: Int] = [:]
        var meters_faulty_expected = 0
        var meters_unexplained = 0
        var readings_expected = 0
        var readings_confirmed = 0
        var readings_wrong = 0
        var duplicates = 0
        var gaps = 0
        var ok = false
    }

    func run() async throws {
        guard let from = Expect.date(from), let to = Expect.date(to), from <= to else {
            throw ValidationError("--from and --to must be ISO 8601 times, from <= to")
        }
        guard (try? OBISCode(parsing: profile)) == OBISCode(1, 0, 99, 1, 0, 255) else {
            throw ValidationError("--profile: only the simulated load profile 1.0.99.1.0.255 is verified")
        }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let date = Expect.date(text) else { throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a date: \(text)")) }
            return date
        }
        let meters = try decoder.decode([SimMeter].self, from: try await Self.get(simURL + "/meters"))
        var checks: [MeterCheck] = []
        try await withThrowingTaskGroup(of: MeterCheck.self) { group in
            var pending = meters.makeIterator()
            func add(_ meter: SimMeter) {
                group.addTask { try await check(meter, from: from, to: to, decoder: decoder) }
            }
            for _ in 0..<max(1, concurrency) { if let meter = pending.next() { add(meter) } }
            while let check = try await group.next() {
                checks.append(check)
                if let meter = pending.next() { add(meter) }
            }
        }
        checks.sort { $0.serial < $1.serial }

        var summary = Summary()
        summary.meters_expected = checks.count
        for check in checks {
            let read = check.succeeded && check.confirmed == check.expected && check.wrong == 0
            // A healthy meter must be read in full; a broken one must be reported failed.
            let explained = check.fault == nil ? read : !check.failures.isEmpty
            summary.duplicates += check.duplicates
            if check.fault != nil { summary.meters_faulty_expected += 1 }
            if !explained { summary.meters_unexplained += 1 }
            if read {
                summary.meters_read += 1
            } else if !check.failures.isEmpty {
                summary.meters_failed += 1
                summary.meters_failed_by_reason[check.failures.last!, default: 0] += 1
            }
            if check.fault == nil {
                summary.readings_expected += check.expected
                summary.readings_confirmed += check.confirmed
                summary.readings_wrong += check.wrong
                summary.gaps += check.expected - check.confirmed
            }
            if verbose, !explained {
                print("\(check.serial): fault \(check.fault ?? "none"), \(check.confirmed)/\(check.expected) readings, \(check.wrong) wrong, results \(check.succeeded ? "succeeded" : "not succeeded") \(check.failures)\(check.missingExample.map { ", e.g. missing \($0)" } ?? "")")
            }
        }
        summary.ok = summary.meters_unexplained == 0 && summary.gaps == 0 && summary.readings_wrong == 0 && summary.duplicates == 0
            && summary.meters_read + summary.meters_failed == summary.meters_expected
        print("meters: \(summary.meters_read) read, \(summary.meters_failed) failed \(summary.meters_failed_by_reason.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")) of \(summary.meters_expected) (\(summary.meters_faulty_expected) deliberately faulty)")
        print("readings: \(summary.readings_confirmed) of \(summary.readings_expected) expected confirmed at the IMS, \(summary.readings_wrong) wrong, \(summary.duplicates) stored twice, \(summary.gaps) missing")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        print("SUMMARY " + String(decoding: try encoder.encode(summary), as: UTF8.self))
        if !summary.ok { throw ExitCode(1) }
    }

    private func check(_ meter: SimMeter, from: Date, to: Date, decoder: JSONDecoder) async throws -> MeterCheck {
        var check = MeterCheck(serial: meter.serial, fault: meter.deliberateFault)
        let results = try decoder.decode([IMSResult].self, from: try await Self.get(imsURL + "/v1/results?meter=\(meter.serial)"))
        check.succeeded = results.contains { $0.outcome == "succeeded" }
        check.failures = results.filter { $0.outcome != "succeeded" }.map { $0.failureCode ?? $0.outcome }
        guard meter.deliberateFault == nil, meter.serial.hasPrefix("SIM"), let number = Int(meter.serial.dropFirst(3)), number >= 1 else { return check }

        let simulated = SimulatedMeter(configuration: .fleetMember(index: number - 1, seed: seed))
        let columns = ["1.0.1.8.0.255", "1.0.2.8.0.255", "0.0.96.10.1.255"]
        var expected: [String: String] = [:]  // "obis|epoch" → value
        for row in simulated.expectedProfileRows(from: from, to: to) {
            guard case .string(let timeText) = row.first?.plainJSON, let time = Expect.date(timeText) else { continue }
            for (index, obis) in columns.enumerated() where index + 1 < row.count {
                expected["\(obis)|\(Int(time.timeIntervalSince1970))"] = Self.text(row[index + 1].plainJSON)
            }
        }
        check.expected = expected.count
        let held = try decoder.decode([IMSReading].self, from: try await Self.get(imsURL + "/v1/meters/\(meter.serial)/readings"))
        var seen = Set<String>()
        for reading in held {
            let key = "\(reading.obis)|\(Int(reading.captureTime.timeIntervalSince1970))"
            guard let value = expected[key] else { continue }
            guard seen.insert(key).inserted else {
                check.duplicates += 1
                continue
            }
            if value == reading.value { check.confirmed += 1 } else { check.wrong += 1 }
        }
        check.missingExample = expected.keys.sorted().first { !seen.contains($0) }
        return check
    }

    static func text(_ value: PlainJSONValue) -> String {
        switch value {
        case .integer(let number): String(number)
        case .unsigned(let number): String(number)
        case .number(let number): String(number)
        case .string(let text): text
        case .bool(let flag): flag ? "true" : "false"
        case .null: "null"
        case .array: "array"
        }
    }

    static func get(_ url: String) async throws -> Data {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(30))
        let body = Data((try await response.body.collect(upTo: 256 << 20)).readableBytesView)
        guard response.status == .ok else {
            throw ValidationError("GET \(url) answered \(response.status): \(String(decoding: body.prefix(300), as: UTF8.self))")
        }
        return body
    }
}
