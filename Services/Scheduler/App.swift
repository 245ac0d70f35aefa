import ArgumentParser
import DLMSSecurity
import Foundation
import Persistence
import ServiceDependencies
import ServiceLifecycle
import ServiceRuntime

/// `scheduler`: turns schedules, commands and data gaps into collection tasks on Kafka.
@main
struct App: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scheduler",
        abstract: "Emits collection tasks from schedules, commands and detected gaps (active/standby).")

    @OptionGroup var common: CommonOptions
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var kafka: KafkaOptions
    @OptionGroup var masterKeyOptions: MasterKeyOptions

    @Option(help: ArgumentHelp("Slots missed while no scheduler led are emitted once if at most this old (HES_CATCH_UP). Default: 1h", valueName: "duration"))
    var catchUp: String?

    @Option(help: ArgumentHelp("How often confirmed progress is compared with the schedules to find gaps (HES_GAP_INTERVAL). Default: 5m", valueName: "duration"))
    var gapInterval: String?

    @Option(help: ArgumentHelp("Holes older than this are not recovered (HES_GAP_MAX_AGE). Default: 10d", valueName: "duration"))
    var gapMaxAge: String?

    @Option(help: ArgumentHelp("A region's scheduled and gap work is held back while this many of its tasks wait for its collectors; 0 = no limit (HES_MAX_OUTSTANDING_PER_REGION). Default: 50000", valueName: "count"))
    var maxOutstandingPerRegion: Int?

    func run() async throws {
        let settings = try common.settings()
        var scheduling = SchedulingSettings()
        scheduling.catchUp = try settings.duration(catchUp, flagName: "catch-up", env: "HES_CATCH_UP", default: .seconds(3600)).timeInterval
        scheduling.gapInterval = try settings.duration(gapInterval, flagName: "gap-interval", env: "HES_GAP_INTERVAL", default: .seconds(300)).timeInterval
        scheduling.gapLimits.maximumAge = try settings.duration(gapMaxAge, flagName: "gap-max-age", env: "HES_GAP_MAX_AGE", default: .seconds(10 * 86_400)).timeInterval
        scheduling.maxOutstandingPerRegion = try settings.int(
            maxOutstandingPerRegion, flagName: "max-outstanding-per-region", env: "HES_MAX_OUTSTANDING_PER_REGION", default: 50_000, range: 0...100_000_000)
        let configuration = SchedulerConfiguration(
            runtime: try common.runtimeConfiguration(executable: "scheduler", defaultAdminPort: 9102, settings: settings),
            database: try DatabaseConfiguration(url: database.databaseURL(settings)),
            kafkaBrokers: kafka.kafkaBrokers(settings),
            masterKeys: try masterKeyOptions.masterKeyRing(settings),
            scheduling: scheduling)
        try await App.serviceGroup(for: configuration).run()
    }
}

extension Duration {
    var timeInterval: TimeInterval { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
