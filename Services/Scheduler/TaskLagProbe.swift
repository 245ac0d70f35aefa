import Contracts
import Foundation
import Logging
import Messaging
import Observability
import Synchronization

/// A region's outstanding work: the lag of its collector group (`hes-collector-<region>`) on
/// the region's two task topics, measured at most every `interval`. Unknown (`nil`, so no
/// limit applies) while the cluster does not answer.
final class TaskLagProbe: RegionLoad, Sendable {
    private struct Measured { var value: Int?; var at: ContinuousClock.Instant }

    private let brokers: String
    private let logger: Logger
    private let interval: Duration
    private let probes = Mutex<[String: KafkaGroupLag]>([:])
    private let measured = Mutex<[String: Measured]>([:])

    init(brokers: String, interval: Duration = .seconds(5), logger: Logger) throws {
        self.brokers = brokers
        self.interval = interval
        self.logger = logger
    }

    func outstanding(region: String) async -> Int? {
        let now = ContinuousClock.now
        if let last = measured.withLock({ $0[region] }), now - last.at < interval { return last.value }
        var value: Int?
        do {
            let probe = try probes.withLock { probes in
                if let probe = probes[region] { return probe }
                let probe = try KafkaGroupLag(bootstrapServers: brokers, groupID: KafkaTopics.collectorGroup(region: region), logger: logger)
                probes[region] = probe
                return probe
            }
            value = try await probe.lag(topics: KafkaTopics.taskTopics(region: region))
        } catch {
            logger.warning("the task lag of region \(region) is unknown (\(error)); no outstanding-work limit applies until it is measured",
                           metadata: [LogMetadataKey.region: "\(region)"])
        }
        measured.withLock { $0[region] = Measured(value: value, at: now) }
        return value
    }
}
