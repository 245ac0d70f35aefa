import ArgumentParser

/// `--database-url` for executables that use PostgreSQL, the store of record.
public struct DatabaseOptions: ParsableArguments, Sendable {
    @Option(help: ArgumentHelp("PostgreSQL URL, postgres://user:password@host:port/database (HES_DATABASE_URL). Default: postgres://hes@127.0.0.1:5432/hes", valueName: "url"))
    public var databaseURL: String?

    public init() {}

    public static let defaultURL = "postgres://hes@127.0.0.1:5432/hes"

    public func databaseURL(_ settings: SettingsResolver) -> String {
        settings.string(databaseURL, flagName: "database-url", env: "HES_DATABASE_URL", default: Self.defaultURL)
    }
}

/// `--kafka-brokers` for executables that produce or consume Kafka topics.
public struct KafkaOptions: ParsableArguments, Sendable {
    @Option(help: ArgumentHelp("Kafka bootstrap servers, host:port[,host:port…] (HES_KAFKA_BROKERS). Default: 127.0.0.1:9092", valueName: "list"))
    public var kafkaBrokers: String?

    public init() {}

    public static let defaultBrokers = "127.0.0.1:9092"

    public func kafkaBrokers(_ settings: SettingsResolver) -> String {
        settings.string(kafkaBrokers, flagName: "kafka-brokers", env: "HES_KAFKA_BROKERS", default: Self.defaultBrokers)
    }
}
