import DLMSClient
import Logging
import NIOConcurrencyHelpers

/// The physical lines the collector has open: a serial port or a gateway's UDP port is shared by
/// the meters behind it (`DLMSLine`, opened once and kept open between sessions); an IP meter
/// gets a connection of its own for each session.
final class LineRegistry: Sendable {
    private let lines = NIOLockedValueBox<[String: DLMSLine]>([:])

    init() {}

    /// Runs one association with the meter of `plan` on line `lineID`.
    func withAssociation<Result>(
        plan: MeterSessionPlan, lineID: String, logger: Logger, _ body: (DLMSClient) async throws -> Result
    ) async throws -> Result {
        guard plan.sharesLine else {
            return try await DLMSClient.withAssociation(to: plan.connection, logger: logger, body)
        }
        let endpoint = plan.connection.endpoint
        let (line, replaced) = lines.withLockedValue { lines -> (DLMSLine, DLMSLine?) in
            if let line = lines[lineID], line.endpoint == endpoint { return (line, nil) }
            // A new line, or the configuration moved it to another port.
            let line = DLMSLine(endpoint: endpoint, connectTimeout: plan.connection.timeouts.connect)
            defer { lines[lineID] = line }
            return (line, lines[lineID])
        }
        if let replaced { await replaced.close() }
        return try await line.withAssociation(to: plan.connection, logger: logger, body)
    }

    /// Closes every shared port (on shutdown).
    func closeAll() async {
        let open = lines.withLockedValue { lines in
            defer { lines = [:] }
            return Array(lines.values)
        }
        for line in open { await line.close() }
    }
}
