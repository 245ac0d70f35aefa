import ArgumentParser
import ServiceLifecycle
import DLMSSecurity
import Foundation
import ServiceDependencies
import ServiceRuntime

/// `collector`: a worker of a region's collector pool. Reads the region's task topics, runs
/// DLMS sessions with the meters and publishes readings and results.
@main
struct App: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "collector",
        abstract: "Collects meter data for one region: consumes tasks, talks DLMS/IEC 62056-21, publishes readings.")

    @OptionGroup var common: CommonOptions
    @OptionGroup var masterKeyOptions: MasterKeyOptions
    @OptionGroup var kafka: KafkaOptions

    @Option(help: ArgumentHelp("Region whose tasks this worker serves (HES_REGION).", valueName: "name"))
    var region: String?

    @Option(help: ArgumentHelp("Sessions (lines) served at the same time by this worker (HES_MAX_CONCURRENT_LINES). Default: 256", valueName: "count"))
    var maxConcurrentLines: Int?

    @Option(help: ArgumentHelp("Sessions per task at most when a session fails retriably (no answer, dropped connection), inside the task's deadline (HES_SESSION_ATTEMPTS). Default: 3", valueName: "count"))
    var sessionAttempts: Int?

    @Option(help: ArgumentHelp("New connections per second into one network segment (a GPRS cell or APN named by the task's meter.networkSegment); 0 = not paced (HES_SEGMENT_CONNECTION_RATE). Default: 0", valueName: "per-second"))
    var segmentConnectionRate: Double?

    @Option(help: ArgumentHelp("How long the group waits for a silent member (a killed collector) before its lines move to the others (HES_KAFKA_SESSION_TIMEOUT). Default: 45s", valueName: "duration"))
    var kafkaSessionTimeout: String?

    @Option(help: ArgumentHelp("Deadline of each session step for meters whose task gives none (HES_STEP_TIMEOUT). Default: 15s", valueName: "duration"))
    var stepTimeout: String?

    func run() async throws {
        let settings = try common.settings()
        let masterKeys = try masterKeyOptions.masterKeyRing(settings)
        var sessionDefaults = MeterSessionPlan.Defaults()
        sessionDefaults.stepTimeout = try settings.duration(stepTimeout, flagName: "step-timeout", env: "HES_STEP_TIMEOUT", default: .seconds(15))
        var configuration = CollectorConfiguration(
            runtime: try common.runtimeConfiguration(executable: "collector", defaultAdminPort: 9103, settings: settings),
            region: try settings.requiredString(region, flagName: "region", env: "HES_REGION"),
            kafkaBrokers: kafka.kafkaBrokers(settings),
            maxConcurrentLines: try settings.int(maxConcurrentLines, flagName: "max-concurrent-lines", env: "HES_MAX_CONCURRENT_LINES", default: 256, range: 1...100_000))
        configuration.masterKeys = masterKeys
        let rate = settings.value(flag: segmentConnectionRate.map { String($0) }, flagName: "segment-connection-rate", env: "HES_SEGMENT_CONNECTION_RATE")
        if let rate {
            guard let number = Double(rate.text), number >= 0, number.isFinite else {
                throw ValidationError("\(rate.source): '\(rate.text)' is not a rate (connections per second, 0 or more)")
            }
            configuration.segmentConnectionRate = number
        }
        configuration.retry.attempts = try settings.int(sessionAttempts, flagName: "session-attempts", env: "HES_SESSION_ATTEMPTS", default: 3, range: 1...10)
        configuration.kafkaSessionTimeout = try settings.duration(kafkaSessionTimeout, flagName: "kafka-session-timeout", env: "HES_KAFKA_SESSION_TIMEOUT", default: .seconds(45))
        configuration.sessionDefaults = sessionDefaults
        try await App.serviceGroup(for: configuration).run()
    }
}
