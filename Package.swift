// swift-tools-version:6.1
// SwiftHES: a head-end system for DLMS/COSEM and IEC 62056-21 smart meters.
// Layout: Shared/<Module> libraries, Services/<Executable> executables, Tests/<Module>Tests.
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let nioCore: Target.Dependency = .product(name: "NIOCore", package: "swift-nio")
let nioPosix: Target.Dependency = .product(name: "NIOPosix", package: "swift-nio")
let logging: Target.Dependency = .product(name: "Logging", package: "swift-log")
let metrics: Target.Dependency = .product(name: "Metrics", package: "swift-metrics")
let prometheus: Target.Dependency = .product(name: "Prometheus", package: "swift-prometheus")
let lifecycle: Target.Dependency = .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
let argumentParser: Target.Dependency = .product(name: "ArgumentParser", package: "swift-argument-parser")
let postgresNIO: Target.Dependency = .product(name: "PostgresNIO", package: "postgres-nio")
let crypto: Target.Dependency = .product(name: "Crypto", package: "swift-crypto")
let hummingbird: Target.Dependency = .product(name: "Hummingbird", package: "hummingbird")
let hummingbirdTesting: Target.Dependency = .product(name: "HummingbirdTesting", package: "hummingbird")
let cryptoExtras: Target.Dependency = .product(name: "CryptoExtras", package: "swift-crypto")
let httpTypes: Target.Dependency = .product(name: "HTTPTypes", package: "swift-http-types")
let asyncHTTPClient: Target.Dependency = .product(name: "AsyncHTTPClient", package: "async-http-client")

/// The dependencies every executable shares: runtime, observability, lifecycle, flags.
let serviceBase: [Target.Dependency] = ["ServiceRuntime", "Observability", lifecycle, logging, argumentParser]

let package = Package(
    name: "SwiftHES",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "config-service", targets: ["ConfigService"]),
        .executable(name: "scheduler", targets: ["Scheduler"]),
        .executable(name: "collector", targets: ["Collector"]),
        .executable(name: "uploader", targets: ["Uploader"]),
        .executable(name: "meter-sim", targets: ["MeterSim"]),
        .executable(name: "ims-sim", targets: ["IMSSim"]),
        .executable(name: "kafka-dev", targets: ["KafkaDev"]),
        .executable(name: "kafka-probe", targets: ["KafkaProbe"]),
        .executable(name: "hesctl", targets: ["HESCtl"]),
        .executable(name: "hes-bench", targets: ["Benchmarks"]),
        .library(name: "COSEM", targets: ["COSEM"]),
        .library(name: "DLMSCodec", targets: ["DLMSCodec"]),
        .library(name: "DLMSLink", targets: ["DLMSLink"]),
        .library(name: "DLMSClient", targets: ["DLMSClient"]),
        .library(name: "MeterSimulation", targets: ["MeterSimulation"]),
        .library(name: "Contracts", targets: ["Contracts"]),
        .library(name: "Messaging", targets: ["Messaging"]),
        .library(name: "Persistence", targets: ["Persistence"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        // Already in the graph through postgres-nio; declared because Persistence configures its TLS.
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        // Already in the graph through postgres-nio; declared for our own hashing (and ciphering later).
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        // The one HTTP server stack (admin endpoints, APIs); swift-configuration support left out.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: ["FullFoundation"]),
        // Already in the graph through hummingbird; declared for header names (HTTPField).
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        // The one HTTP client stack (the uploader toward the IMS).
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        // Configuration documents in YAML (config-service), turned into the JSON it reads.
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // MARK: - DLMS stack (sans-IO, bottom up)
        // The codec's hot loops inline ByteBuffer; dynamic exclusivity checks on its storage cost ~25% there.
        // Release builds only: debug builds (tests, fuzzing) keep the checks.
        .target(name: "COSEM", dependencies: [nioCore], path: "Shared/COSEM", swiftSettings: swiftSettings + [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]),
        .target(name: "DLMSCodec", dependencies: ["COSEM", nioCore], path: "Shared/DLMSCodec", swiftSettings: swiftSettings + [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]),
        .target(name: "DLMSLink", dependencies: ["COSEM", nioCore], path: "Shared/DLMSLink", swiftSettings: swiftSettings),
        .target(name: "DLMSClient", dependencies: ["DLMSLink", "DLMSCodec", "DLMSSecurity", "COSEM", "Observability", nioCore, nioPosix, logging, metrics, .product(name: "NIOConcurrencyHelpers", package: "swift-nio")], path: "Shared/DLMSClient", swiftSettings: swiftSettings),
        // The server side of our own stack: simulated meters' COSEM objects and associations (sans-IO).
        .target(name: "MeterSimulation", dependencies: ["DLMSCodec", "DLMSSecurity", "COSEM", nioCore, .product(name: "NIOConcurrencyHelpers", package: "swift-nio")], path: "Shared/MeterSimulation", swiftSettings: swiftSettings),
        // Security suite 0 (AES-GCM-128), HLS and invocation counters: pure functions over bytes and keys (sans-IO).
        // CryptoExtras (swift-crypto's, already built for postgres-nio): AES-CTR for the long texts of our GCM; its tests also use AES.permute.
        .target(name: "DLMSSecurity", dependencies: ["COSEM", "DLMSCodec", crypto, cryptoExtras, nioCore], path: "Shared/DLMSSecurity", swiftSettings: swiftSettings),

        // MARK: - Platform
        .systemLibrary(
            name: "CRdKafka", path: "Shared/CRdKafka", pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"])]
        ),
        .target(name: "Messaging", dependencies: ["CRdKafka", "Observability", logging, metrics, lifecycle, nioCore], path: "Shared/Messaging", swiftSettings: swiftSettings),
        .target(name: "Contracts", dependencies: [], path: "Shared/Contracts", swiftSettings: swiftSettings),
        .target(name: "Persistence", dependencies: ["Observability", postgresNIO, crypto, logging, nioCore, nioPosix, .product(name: "NIOSSL", package: "swift-nio-ssl"), lifecycle], path: "Shared/Persistence", resources: [.copy("Migrations")], swiftSettings: swiftSettings),
        .target(name: "Observability", dependencies: [logging, metrics, prometheus], path: "Shared/Observability", swiftSettings: swiftSettings),
        // One helper per dependency kind (PostgreSQL, Kafka): created, watched for readiness, wired the same way in every service.
        .target(name: "ServiceDependencies", dependencies: ["ServiceRuntime", "Observability", "Persistence", "Messaging", "DLMSSecurity", logging, argumentParser], path: "Shared/ServiceDependencies", swiftSettings: swiftSettings),
        .target(name: "ServiceRuntime", dependencies: ["Observability", logging, metrics, prometheus, lifecycle, .product(name: "UnixSignals", package: "swift-service-lifecycle"), argumentParser, nioCore, nioPosix, hummingbird, .product(name: "HummingbirdTLS", package: "hummingbird"), .product(name: "NIOSSL", package: "swift-nio-ssl")], path: "Shared/ServiceRuntime", swiftSettings: swiftSettings),

        // MARK: - Executables
        .executableTarget(name: "ConfigService", dependencies: serviceBase + ["Persistence", "ServiceDependencies", "Contracts", "DLMSClient", "DLMSSecurity", hummingbird, httpTypes, postgresNIO, crypto, nioCore, .product(name: "Yams", package: "Yams")], path: "Services/ConfigService", resources: [.copy("openapi.yaml"), .copy("hes-configuration-v1.schema.json")], swiftSettings: swiftSettings),
        .executableTarget(name: "Scheduler", dependencies: serviceBase + ["Persistence", "Messaging", "ServiceDependencies", "Contracts", "DLMSSecurity", "COSEM", postgresNIO, crypto, metrics], path: "Services/Scheduler", swiftSettings: swiftSettings),
        .executableTarget(name: "Collector", dependencies: serviceBase + ["Messaging", "Contracts", "COSEM", "DLMSCodec", "DLMSLink", "DLMSSecurity", "DLMSClient", "ServiceDependencies", metrics, nioCore, .product(name: "DequeModule", package: "swift-collections"), .product(name: "NIOConcurrencyHelpers", package: "swift-nio")], path: "Services/Collector", swiftSettings: swiftSettings),
        .executableTarget(name: "Uploader", dependencies: serviceBase + ["Persistence", "Messaging", "Contracts", "ServiceDependencies", asyncHTTPClient, postgresNIO, crypto, metrics, nioCore, .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl"), .product(name: "DequeModule", package: "swift-collections")], path: "Services/Uploader", swiftSettings: swiftSettings),
        .executableTarget(name: "MeterSim", dependencies: serviceBase + [hummingbird, asyncHTTPClient, .product(name: "NIOHTTP1", package: "swift-nio"), "MeterSimulation", "DLMSLink", "DLMSSecurity", "COSEM", metrics, nioCore, nioPosix], path: "Services/MeterSim", swiftSettings: swiftSettings),
        .executableTarget(name: "IMSSim", dependencies: serviceBase + ["Persistence", "Contracts", "ServiceDependencies", hummingbird, httpTypes, postgresNIO, metrics, nioCore, asyncHTTPClient, .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl")], path: "Services/IMSSim", resources: [.copy("Migrations")], swiftSettings: swiftSettings),
        .executableTarget(name: "KafkaDev", dependencies: serviceBase + ["Messaging", "Contracts", hummingbird, nioCore, nioPosix], path: "Services/KafkaDev", swiftSettings: swiftSettings),
        .executableTarget(name: "KafkaProbe", dependencies: ["Messaging", lifecycle, .product(name: "UnixSignals", package: "swift-service-lifecycle"), logging, argumentParser], path: "Tests/KafkaProbe", swiftSettings: swiftSettings),
        .executableTarget(name: "HESCtl", dependencies: ["Contracts", "COSEM", "DLMSCodec", "DLMSLink", "DLMSSecurity", "DLMSClient", "Messaging", argumentParser, logging, nioCore, asyncHTTPClient, .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl")], path: "Services/HESCtl", swiftSettings: swiftSettings),
        .executableTarget(name: "Benchmarks", dependencies: ["AllocationCounter", "COSEM", "DLMSCodec", "DLMSSecurity", "DLMSLink", "DLMSClient", "MeterSimulation", "Contracts", "Messaging", logging, nioCore, nioPosix], path: "Benchmarks", exclude: ["AllocationCounter"], swiftSettings: swiftSettings),
        .target(name: "AllocationCounter", path: "Benchmarks/AllocationCounter"),

        // MARK: - Tests
        .target(name: "TestSupport", dependencies: ["Persistence", "Messaging", "DLMSLink", "COSEM", logging, nioCore, nioPosix, .product(name: "NIOConcurrencyHelpers", package: "swift-nio")], path: "Tests/TestSupport", swiftSettings: swiftSettings),
        .testTarget(name: "COSEMTests", dependencies: ["COSEM", "TestSupport", nioCore], path: "Tests/COSEMTests", swiftSettings: swiftSettings),
        .testTarget(name: "DLMSLinkTests", dependencies: ["DLMSLink", "COSEM", "TestSupport", nioCore], path: "Tests/DLMSLinkTests", swiftSettings: swiftSettings),
        .testTarget(name: "DLMSCodecTests", dependencies: ["DLMSCodec", "COSEM", "TestSupport", nioCore], path: "Tests/DLMSCodecTests", swiftSettings: swiftSettings),
        .testTarget(name: "DLMSSecurityTests", dependencies: ["DLMSSecurity", "DLMSCodec", "COSEM", "TestSupport", crypto, cryptoExtras, nioCore], path: "Tests/DLMSSecurityTests", swiftSettings: swiftSettings),
        .testTarget(name: "DLMSClientTests", dependencies: ["DLMSClient", "DLMSLink", "DLMSCodec", "DLMSSecurity", "COSEM", "MeterSimulation", "TestSupport", nioCore, .product(name: "NIOConcurrencyHelpers", package: "swift-nio")], path: "Tests/DLMSClientTests", swiftSettings: swiftSettings),
        .testTarget(name: "MeterSimulationTests", dependencies: ["MeterSimulation", "DLMSCodec", "COSEM", "TestSupport", nioCore], path: "Tests/MeterSimulationTests", swiftSettings: swiftSettings),
        .testTarget(name: "MessagingTests", dependencies: ["Messaging", "CRdKafka", "TestSupport", logging, lifecycle], path: "Tests/MessagingTests", swiftSettings: swiftSettings),
        .testTarget(name: "ContractsTests", dependencies: ["Contracts", "TestSupport"], path: "Tests/ContractsTests", swiftSettings: swiftSettings),
        .testTarget(name: "PersistenceTests", dependencies: ["Persistence", "TestSupport", logging, lifecycle], path: "Tests/PersistenceTests", swiftSettings: swiftSettings),
        .testTarget(name: "ServiceRuntimeTests", dependencies: ["ServiceRuntime", "Observability", "TestSupport", hummingbird, hummingbirdTesting], path: "Tests/ServiceRuntimeTests", swiftSettings: swiftSettings),
        .testTarget(name: "CollectorTests", dependencies: ["Collector", "Contracts", "COSEM", "DLMSClient", "DLMSSecurity", "TestSupport", nioCore], path: "Tests/CollectorTests", swiftSettings: swiftSettings),
        // The services' serviceGroup(for:) built and run in-process (executable targets are testable).
        .testTarget(name: "ServiceAssemblyTests", dependencies: ["Collector", "ConfigService", "Scheduler", "Uploader", "MeterSim", "MeterSimulation", "Messaging", "TestSupport", "ServiceRuntime", "Persistence", "Contracts", lifecycle, logging, prometheus, hummingbird, hummingbirdTesting], path: "Tests/ServiceAssemblyTests", swiftSettings: swiftSettings),
        // The uploader's and ims-sim's delivery logic: batching, retries, the breaker, the IMS store (real PostgreSQL).
        .testTarget(name: "DeliveryTests", dependencies: ["Uploader", "IMSSim", "Contracts", "Messaging", "Persistence", "TestSupport", "ServiceRuntime", logging, hummingbird, hummingbirdTesting, httpTypes, postgresNIO, nioCore], path: "Tests/DeliveryTests", swiftSettings: swiftSettings),
        .testTarget(name: "SchedulerTests", dependencies: ["Scheduler", "Contracts", "COSEM", "DLMSSecurity", "Persistence", "Messaging", "TestSupport", logging, postgresNIO], path: "Tests/SchedulerTests", swiftSettings: swiftSettings),
        .testTarget(name: "ConfigServiceTests", dependencies: ["ConfigService", "Contracts", "DLMSSecurity", "Persistence", "TestSupport", "ServiceRuntime", logging, hummingbird, hummingbirdTesting, httpTypes, postgresNIO, nioCore], path: "Tests/ConfigServiceTests", swiftSettings: swiftSettings),
        .testTarget(name: "ExecutableTests", dependencies: ["TestSupport", "Messaging", "Persistence", "Contracts", postgresNIO, logging], path: "Tests/ExecutableTests", swiftSettings: swiftSettings),
        // The whole pipeline as processes: `make run`'s script and the chaos run (scripts/chaos.py).
        .testTarget(name: "EndToEndTests", dependencies: ["TestSupport"], path: "Tests/EndToEndTests", swiftSettings: swiftSettings),
    ]
)
