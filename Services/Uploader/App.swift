import ArgumentParser
import Persistence
import ServiceLifecycle
import ServiceRuntime

/// `uploader`: delivers readings and results to the IMS; commits offsets only after the IMS confirms.
@main
struct App: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "uploader",
        abstract: "Delivers readings and command results to the IMS, committing Kafka offsets after confirmation.")

    @OptionGroup var common: CommonOptions
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var kafka: KafkaOptions

    @Option(help: ArgumentHelp("Base URL of the IMS API (HES_IMS_URL). Default: http://127.0.0.1:8090", valueName: "url"))
    var imsURL: String?

    @Option(help: ArgumentHelp("Bearer token for the IMS (HES_IMS_TOKEN). Default: none", valueName: "token"))
    var imsToken: String?

    @Option(help: ArgumentHelp("PEM file of the CA of the IMS's certificate, for https (HES_IMS_CA_FILE)", valueName: "path"))
    var imsCAFile: String?

    @Option(help: ArgumentHelp("Seconds one IMS request may take. Default: 30", valueName: "seconds"))
    var imsTimeout: Double = 30

    @Option(help: ArgumentHelp("Readings (or results) per IMS request. Default: 5000", valueName: "count"))
    var batchReadings: Int = 5_000

    @Option(help: ArgumentHelp("Bytes per IMS request. Default: 4194304", valueName: "bytes"))
    var batchBytes: Int = 4 << 20

    @Option(help: ArgumentHelp("Milliseconds a request waits to fill. Default: 200", valueName: "ms"))
    var batchAgeMs: Int = 200

    @Option(help: ArgumentHelp("Bytes consumed and not yet confirmed, per kind, before reading pauses. Default: 33554432", valueName: "bytes"))
    var maxBufferedBytes: Int = 32 << 20

    @Option(help: ArgumentHelp("IMS requests in flight per kind (readings, results). Default: 2", valueName: "count"))
    var inFlight: Int = 2

    @Option(help: ArgumentHelp("""
        What reading batches are sent as (HES_IMS_FORMAT): native (JSON, POST /v1/readings) or cim (IEC 61968-9 MeterReadings \
        in a 61968-100 RequestMessage, POST /v1/cim/meter-readings). Task results are native JSON in both. Default: native
        """, valueName: "native|cim"))
    var imsFormat: String?

    @Option(help: ArgumentHelp("""
        Which buffered messages go to the IMS first when there is a backlog (HES_CATCH_UP_ORDER): oldest or newest, by arrival; \
        newest-first reorders only what is buffered (--max-buffered-bytes). Default: oldest
        """, valueName: "oldest|newest"))
    var catchUpOrder: String?

    @Option(help: ArgumentHelp("Seconds the group waits for a silent member before its partitions move. Default: 45", valueName: "seconds"))
    var kafkaSessionTimeout: Double = 45

    func validate() throws {
        guard batchReadings > 0, batchBytes >= 1024, batchAgeMs >= 0, maxBufferedBytes >= batchBytes, (1...64).contains(inFlight), imsTimeout > 0 else {
            throw ValidationError("batch sizes must be positive, --max-buffered-bytes at least --batch-bytes, --in-flight within 1…64, --ims-timeout positive")
        }
    }

    func run() async throws {
        let settings = try common.settings()
        let format: IMSFormat = try Self.choice(settings.value(flag: imsFormat, flagName: "ims-format", env: "HES_IMS_FORMAT"), default: .native)
        let order: CatchUpOrder = try Self.choice(settings.value(flag: catchUpOrder, flagName: "catch-up-order", env: "HES_CATCH_UP_ORDER"), default: .oldest)
        var delivery = DeliveryWorker.Configuration()
        delivery.limits = DeliveryLimits(maxItemsWeight: batchReadings, maxBytes: batchBytes, maxAge: .milliseconds(batchAgeMs), maxBufferedBytes: maxBufferedBytes,
                                         catchUpOrder: order)
        delivery.sendersPerKind = inFlight
        delivery.format = format
        let configuration = UploaderConfiguration(
            runtime: try common.runtimeConfiguration(executable: "uploader", defaultAdminPort: 9104, settings: settings),
            database: try DatabaseConfiguration(url: database.databaseURL(settings)),
            kafkaBrokers: kafka.kafkaBrokers(settings),
            ims: IMSClient.Configuration(
                baseURL: settings.string(imsURL, flagName: "ims-url", env: "HES_IMS_URL", default: "http://127.0.0.1:8090"),
                token: settings.optionalString(imsToken, flagName: "ims-token", env: "HES_IMS_TOKEN"),
                caFile: settings.optionalString(imsCAFile, flagName: "ims-ca-file", env: "HES_IMS_CA_FILE"),
                requestTimeout: .milliseconds(Int64(imsTimeout * 1000))),
            delivery: delivery,
            kafkaSessionTimeout: .milliseconds(Int64(kafkaSessionTimeout * 1000)))
        try await App.serviceGroup(for: configuration).run()
    }

    /// One of a closed set of names, from a flag, the environment or the settings file.
    static func choice<Choice: RawRepresentable & CaseIterable>(_ value: SettingsResolver.Value?, default defaultValue: Choice) throws -> Choice
    where Choice.RawValue == String {
        guard let value else { return defaultValue }
        guard let choice = Choice(rawValue: value.text) else {
            throw ValidationError("\(value.source): '\(value.text)' is not one of \(Choice.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return choice
    }
}
