import Contracts
import Foundation
import Testing
import TestSupport

/// What the CIM writer produces, checked by an independent parser: Python's `xmlschema`
/// (PyPI, in a venv the test creates: Tests/Interop/run_cim_validator.sh) against the XSDs of
/// the 61968-100 / 61968-9 subset we emit (Tests/Interop/cim/).
@Suite("CIM XML validates against the MeterReadings message schema (xmlschema)", .serialized, .timeLimit(.minutes(10)))
struct CIMSchemaTests {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let interop = repositoryRoot.appendingPathComponent("Tests/Interop")
    static let t0 = Date(timeIntervalSince1970: 1_764_547_200)

    /// The venv's interpreter (created on first use: needs PyPI once).
    static func python() async throws -> String {
        let result = try await ChildProcess.run(executable: "/bin/bash", name: "run_cim_validator.sh",
                                                arguments: [interop.appendingPathComponent("run_cim_validator.sh").path], timeout: .seconds(600))
        guard result.status == 0, let path = result.stdout.split(separator: "\n").last.map(String.init) else {
            throw ChildProcessError(reason: "creating the xmlschema venv failed: \(result.stderr)")
        }
        return path
    }

    /// Validates each document; returns the validator's exit status and output.
    static func validate(_ documents: [[UInt8]]) async throws -> (status: Int32, output: String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hes-cim-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var paths: [String] = []
        for (index, document) in documents.enumerated() {
            let path = directory.appendingPathComponent("doc\(index).xml").path
            try Data(document).write(to: URL(fileURLWithPath: path))
            paths.append(path)
        }
        let result = try await ChildProcess.run(executable: try await python(), name: "validate.py",
                                                arguments: [interop.appendingPathComponent("cim/validate.py").path] + paths, timeout: .seconds(120))
        return (result.status, result.stdout + result.stderr)
    }

    static func batches() -> [ReadingBatch] {
        (0..<3).map { meter in
            ReadingBatch(batchID: "task-\(meter)#readings", taskID: "task-\(meter)", region: meter == 1 ? "s\u{00FC}d & <west>" : "north",
                         meterID: meter == 2 ? "MTR\"<2>\"&'" : "MTR\(meter)", collectedAt: t0.addingTimeInterval(86_400),
                         readings: (0..<4).flatMap { quarter in
                             [
                                 Reading(obis: "1.0.1.8.0.255", classID: 3, attribute: 2, captureTime: t0.addingTimeInterval(Double(quarter) * 900),
                                         valueType: .number, value: "\(quarter)1234.567", unit: "Wh", status: quarter == 2 ? 0x88 : nil, profile: "1.0.99.1.0.255"),
                                 Reading(obis: "0.0.96.1.0.255", classID: 1, attribute: 2, captureTime: t0.addingTimeInterval(Double(quarter) * 900 + 0.5),
                                         valueType: .text, value: "a<b>&\"c\" 'd'\r\n\t\u{1}\u{00E9}\u{1F600}]]>", unit: "m3;x=%", status: quarter),
                             ]
                         })
        } + [ReadingBatch(batchID: "empty", taskID: "t-empty", region: "r", meterID: "M", collectedAt: t0, readings: [])]
    }

    @Test("requests and replies the code writes are valid; a broken document is not (the check can fail)")
    func validates() async throws {
        let request = CIMMeterReadings.requestMessage(messageID: "readings-\"odd\" <key>", timestamp: Self.t0, batches: Self.batches())
        let reply = CIMMeterReadings.responseMessage(
            IMSDeliveryReply(requestID: "readings-1", status: .partial, accepted: 3, stored: 24, duplicates: 0,
                             rejected: [.init(index: 3, id: "empty", code: "meter.unknown", reason: "meter <M> & co is not registered")]),
            timestamp: Self.t0, source: "ims-sim")
        let refusal = CIMMeterReadings.responseMessage(
            IMSDeliveryReply(requestID: "", status: .failed, accepted: 0, stored: 0, duplicates: 0,
                             rejected: [.init(index: -1, id: nil, code: "request.malformed", reason: "not XML")]),
            timestamp: Self.t0, source: "ims-sim")
        let valid = try await Self.validate([request, reply, refusal])
        #expect(valid.status == 0, "\(valid.output)")
        #expect(valid.output.components(separatedBy: "valid ").count - 1 == 3, "\(valid.output)")

        // Broken on purpose, each in another way: the validator must refuse every one.
        let text = String(decoding: request, as: UTF8.self)
        let broken = [
            text.replacingOccurrences(of: "<m:value>01234.567</m:value>", with: ""),  // a Reading without value
            text.replacingOccurrences(of: "type=number", with: "type=float"),  // a ReadingType ref of no known form
            text.replacingOccurrences(of: "<Verb>created</Verb>", with: "<Verb>made</Verb>"),  // not a 61968-100 verb
            text.replacingOccurrences(of: "http://iec.ch/TC57/2011/MeterReadings#", with: "urn:elsewhere"),  // the payload in another namespace
            text.replacingOccurrences(of: "2025-12-01T00:00:00.000Z", with: "2025-12-01 00:00"),  // not a UTC date-time
        ]
        for document in broken {
            #expect(document != text, "the mutation must change the document")
            let result = try await Self.validate([Array(document.utf8)])
            #expect(result.status != 0 && result.output.contains("invalid"), "\(result.output)")
        }
    }
}
