import DLMSClient
import Logging
import NIOConcurrencyHelpers

/// The physical lines the collector has open: a serial port or a gateway's UDP port is shared by
/// the meters behind it (`DLMSLine`, opened once and kept open between sessions); an IP meter
/// gets a connection of its own for each session.
final class LineRegistry: Sendable {
    private let lines = NIOLockedValueBox<[String: DLMSLine]>([:])

    init() {}

    /// Runs one association with the meter of `plan` (a DLMS meter) on line `lineID`.
    func withAssociation<Result>(
        plan: MeterSessionPlan, lineID: String, logger: Logger, _ body: (DLMSClient) async throws -> Result
    ) async throws -> Result {
        guard let connection = plan.connection else {
            throw CollectorError.invalidTask("meter.protocol", "an IEC 62056-21 mode C meter has no DLMS association")
        }
        guard plan.sharesLine else {
            return try await DLMSClient.withAssociation(to: connection, logger: logger, body)
        }
        return try await line(for: plan, lineID: lineID).withAssociation(to: connection, logger: logger, body)
    }

    /// Lends the port of line `lineID` to one IEC 62056-21 session with the meter of `plan`
    /// (one session on the line at a time, as for associations).
    func withPort<Result>(
        plan: MeterSessionPlan, lineID: String, _ body: (any DLMSTransport) async throws -> Result
    ) async throws -> Result {
        try await line(for: plan, lineID: lineID).withTransport(body)
    }

    private func line(for plan: MeterSessionPlan, lineID: String) async -> DLMSLine {
        let endpoint = plan.endpoint
        let (line, replaced) = lines.withLockedValue { lines -> (DLMSLine, DLMSLine?) in
            if let line = lines[lineID], line.endpoint == endpoint { return (line, nil) }
            // A new line, or the configuration moved it to another port.
            let line = DLMSLine(endpoint: endpoint, connectTimeout: plan.connectTimeout)
            defer { lines[lineID] = line }
            return (line, lines[lineID])
        }
        if let replaced { await replaced.close() }
        return line
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
