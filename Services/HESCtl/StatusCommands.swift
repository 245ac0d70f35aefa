import ArgumentParser
import Contracts
import Foundation
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

/// `hesctl regions`: each region's size, last hour of work and outstanding tasks.
struct RegionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "regions", abstract: "Regions: meters, tasks of the last hour, tasks waiting for a result (config-service API).")
    @OptionGroup var api: ControlPlaneOptions

    func run() async throws {
        let reply = try await api.call(.GET, "/v1/regions/status")
        if api.json { api.printJSON(reply.body); return }
        let views = try ContractCoder.makeDecoder().decode([RegionStatusView].self, from: reply.body)
        let time = ISO8601DateFormatter()
        printTable(["region", "lines", "meters", "emitted 1h", "succeeded 1h", "failed 1h", "awaiting result", "last confirmation"], views.map {
            [$0.region, String($0.lines), String($0.meters), String($0.dispatchedLastHour), String($0.succeededLastHour), String($0.failedLastHour),
             String($0.awaitingResults), $0.lastConfirmation.map { time.string(from: $0) } ?? "never"]
        })
    }
}
