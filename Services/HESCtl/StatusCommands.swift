import ArgumentParser
import Contracts
import Foundation
import Logging
import Messaging
import NIOHTTP1

/// `hesctl meters status <id>`: a meter's configuration, recent task outcomes and confirmed progress.
struct MetersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meters", abstract: "Meter status: where it is configured, its recent tasks, what the IMS holds (config-service API).",
        subcommands: [Status.self])

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one meter's status.")
        @OptionGroup var api: ControlPlaneOptions
        @Argument(help: "The meter id.") var meter: String

        func run() async throws {
            let reply = try await api.call(.GET, "/v1/meters/\(meter.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? meter)/status")
            if api.json { api.printJSON(reply.body); return }
            let view = try ContractCoder.makeDecoder().decode(MeterStatusView.self, from: reply.body)
            let time = ISO8601DateFormatter()
            print("meter \(view.meterID): region \(view.region), line \(view.lineID), template \(view.template ?? "-"), \(view.protocolName)")
            print("last task emitted: \(view.lastDispatchedAt.map { time.string(from: $0) } ?? "never"); open commands: \(view.openCommands)")
            if view.progress.isEmpty {
                print("the IMS confirmed no profile data yet")
            } else {
                for progress in view.progress { print("IMS holds \(progress.profile) up to \(time.string(from: progress.confirmedUntil))") }
            }
            print()
            printTable(["finished", "task", "command", "outcome", "failure", "readings"], view.recentOutcomes.map {
                [time.string(from: $0.finishedAt), $0.taskID, $0.commandID ?? "-", $0.outcome, $0.failureCode ?? "-", String($0.readings)]
            })
        }
    }
}

/// `hesctl regions`: each region's size, last hour of work and outstanding tasks; with Kafka
/// brokers, also the lag of the region's collector group on its task topics.
struct RegionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "regions",
        abstract: "Regions: meters, tasks of the last hour, tasks waiting for a result (config-service API); the collectors' Kafka lag with --kafka-brokers.")
    @OptionGroup var api: ControlPlaneOptions
    @Option(help: ArgumentHelp("Kafka bootstrap servers (HES_KAFKA_BROKERS): adds the lag of each region's collector group on its task topics.", valueName: "list"))
    var kafkaBrokers: String?

    func run() async throws {
        let reply = try await api.call(.GET, "/v1/regions/status")
        if api.json { api.printJSON(reply.body); return }
        let views = try ContractCoder.makeDecoder().decode([RegionStatusView].self, from: reply.body)
        var lags: [String: String] = [:]
        if let brokers = kafkaBrokers ?? ProcessInfo.processInfo.environment["HES_KAFKA_BROKERS"] {
            var logger = Logger(label: "hesctl.regions")
            logger.logLevel = .critical
            for view in views {
                do {
                    let probe = try KafkaGroupLag(bootstrapServers: brokers, groupID: KafkaTopics.collectorGroup(region: view.region), logger: logger)
                    let lag = try await probe.lag(topics: KafkaTopics.taskTopics(region: view.region), timeout: .seconds(3))
                    lags[view.region] = String(lag)
                } catch {
                    lags[view.region] = "unknown"
                }
            }
        }
        let time = ISO8601DateFormatter()
        var header = ["region", "lines", "meters", "emitted 1h", "succeeded 1h", "failed 1h", "awaiting result", "last confirmation"]
        if !lags.isEmpty { header.append("kafka lag") }
        printTable(header, views.map { view in
            var row = [view.region, String(view.lines), String(view.meters), String(view.dispatchedLastHour), String(view.succeededLastHour),
                       String(view.failedLastHour), String(view.awaitingResults), view.lastConfirmation.map { time.string(from: $0) } ?? "never"]
            if !lags.isEmpty { row.append(lags[view.region] ?? "unknown") }
            return row
        })
    }
}
