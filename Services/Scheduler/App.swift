import ArgumentParser
import ServiceLifecycle
import Persistence
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

    func run() async throws {
        let settings = try common.settings()
        let configuration = SchedulerConfiguration(
            runtime: try common.runtimeConfiguration(executable: "scheduler", defaultAdminPort: 9102, settings: settings),
            database: try DatabaseConfiguration(url: database.databaseURL(settings)),
            kafkaBrokers: kafka.kafkaBrokers(settings))
        try await App.serviceGroup(for: configuration).run()
    }
}
