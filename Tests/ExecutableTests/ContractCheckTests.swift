import Foundation
import Testing
import TestSupport

/// `hesctl contract check`: every contract kind decoded as its readers decode it.
@Suite(.timeLimit(.minutes(2)))
struct ContractCheckTests {
    static func check(_ kind: String, _ json: String) async throws -> (status: Int32, stdout: String, stderr: String) {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("contract-\(UUID().uuidString).json").path
        try json.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        return try await ChildProcess.run(product: "hesctl", arguments: ["contract", "check", kind, file])
    }

    @Test("IMS replies and dead letters print canonically; an IMS request with an unreadable item and an unknown kind are refused")
    func imsContracts() async throws {
        let reply = try await Self.check("ims-reply", #"{"status":"PARTIAL","schema":"ims-reply/v1","requestID":"k","accepted":1,"stored":2,"duplicates":0,"rejected":[{"index":1,"id":"b","code":"meter.unknown","reason":"no"}],"replayed":false}"#)
        #expect(reply.status == 0, "\(reply.stderr)")
        #expect(reply.stdout.hasPrefix(#"{"accepted":1,"#) && reply.stdout.contains(#""status":"PARTIAL""#))
        let letter = try await Self.check("dead-letter", #"{"schema":"dead-letter/v1","source":"hes.readings/0/7","code":"ims.meter.unknown","reason":"no","rejectedAt":"2025-12-01T00:00:00.000Z","payload":"{}"}"#)
        #expect(letter.status == 0, "\(letter.stderr)")
        let request = try await Self.check("ims-readings", #"{"schema":"ims-readings/v1","requestID":"k","batches":[{"schema":"reading-batch/v9","batchID":"x"}]}"#)
        #expect(request.status == 2 && request.stderr.contains("reading-batch/v9 is not accepted"), "\(request.stderr)")
        let unknown = try await Self.check("ims-nothing", "{}")
        #expect(unknown.status == 64 && unknown.stderr.contains("ims-readings"), "\(unknown.stderr)")
    }
}
