import Contracts
import Foundation
import Logging
import Messaging

/// The uploader delivering a backlog to the IMS: 1,000 meters' reading batches (a day of
/// 15-minute values, three per row: 288,000 readings) waiting on `hes.readings` in kafka-dev, as
/// after an IMS outage; then the uploader starts against ims-sim (which stores each reading in
/// its PostgreSQL and deduplicates) and the figure is readings confirmed per second until all
/// are at the IMS. Processes: kafka-dev, a private PostgreSQL, ims-sim, uploader.
/// `uploader.delivery` sends native JSON, `uploader.delivery.cim` the same backlog as IEC 61968-9
/// MeterReadings (`--ims-format cim`, parsed by ims-sim's XMLParser); `uploader.cim_write` is the
/// CIM writer alone (readings written per second, one core).
enum UploaderBenchmarks {
    static let all: [Benchmark] = [
        Benchmark(name: "uploader.delivery") { try await delivery(meters: 1_000, format: "native") },
        Benchmark(name: "uploader.delivery.cim") { try await delivery(meters: 1_000, format: "cim") },
        Benchmark(name: "uploader.cim_write") { try cimWrite() },
    ]

    /// The CIM writer on requests of 50 batches of 288 readings (the uploader's default request
    /// holds up to 5,000 readings), against the native body built from the same batches' JSON.
    static func cimWrite() throws -> [BenchmarkResult] {
        let start = Date(timeIntervalSince1970: 1_796_000_000)
        var batches: [ReadingBatch] = []
        for meter in 0..<50 {
            var readings: [Reading] = []
            for quarter in 0..<96 {
                let status: Int? = quarter % 8 == 0 ? 0 : nil
                for obis in ["1.0.1.8.0.255", "1.0.2.8.0.255", "0.0.96.10.1.255"] {
                    readings.append(Reading(obis: obis, classID: 3, attribute: 2, captureTime: start.addingTimeInterval(Double(quarter) * 900),
                                            valueType: .number, value: String(meter * 1000 + quarter), unit: "Wh", status: status, profile: "1.0.99.1.0.255"))
                }
            }
            batches.append(ReadingBatch(batchID: "bench-\(meter)#readings", taskID: "bench-\(meter)", region: "bench", meterID: String(format: "BENCH%06d", meter),
                                        collectedAt: start.addingTimeInterval(86_400), readings: readings))
        }
        let readings = batches.reduce(0) { $0 + $1.readings.count }
        let raw = try batches.map { try ContractCoder.encode($0) }
        let clock = ContinuousClock()
        var bytes = 0
        let rounds = 40
        let cimStarted = clock.now
        for round in 0..<rounds { bytes &+= CIMMeterReadings.requestMessage(messageID: "readings-\(round)", timestamp: start, batches: batches).count }
        let cim = FleetBenchmarks.seconds(clock.now - cimStarted)
        let nativeStarted = clock.now
        for round in 0..<rounds { bytes &+= IMSRequestBody.readings(requestID: "readings-\(round)", rawBatches: raw).count }
        let native = FleetBenchmarks.seconds(clock.now - nativeStarted)
        guard bytes > 0 else { throw BenchmarkFailure("uploader.cim_write wrote nothing") }
        return [
            BenchmarkResult(name: "uploader.cim_write", value: Double(readings * rounds) / cim, unit: "readings/s"),
            BenchmarkResult(name: "uploader.cim_write.native_body", value: Double(readings * rounds) / native, unit: "readings/s"),
        ]
    }

    /// - Parameter format: the uploader's `--ims-format` (`native` or `cim`).
    static func delivery(meters: Int, format: String) async throws -> [BenchmarkResult] {
        let name = format == "native" ? "uploader.delivery" : "uploader.delivery.\(format)"
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hes-bench-uploader-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let postgres = PrivatePostgres(directory: directory + "/pg", port: 19_433)
        let hesURL = try await postgres.start()
        defer { postgres.stop() }
        let imsURL = try await postgres.start(database: "ims_sim")

        let kafkaPort = 19_094, imsPort = 19_095
        let brokers = "127.0.0.1:\(kafkaPort)"
        var processes: [ChildProcessHandle] = []
        defer { for process in processes.reversed() { process.stop() } }
        processes.append(try await ChildProcessHandle.start(
            "kafka-dev", ["--port", String(kafkaPort), "--regions", "bench", "--partitions", "12", "--admin-port", "0",
                          "--bootstrap-file", directory + "/bootstrap"], log: directory + "/kafka-dev.log", ready: "kafka-dev bootstrap"))
        processes.append(try await ChildProcessHandle.start(
            "ims-sim", ["--port", String(imsPort), "--database-url", imsURL, "--admin-port", "0", "--log-level", "warning"],
            log: directory + "/ims-sim.log", ready: "", timeout: .seconds(5)))

        // The backlog.
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        var producerConfiguration = KafkaProducerConfiguration(bootstrapServers: brokers)
        producerConfiguration.linger = .milliseconds(20)
        let producer = try KafkaProducer(configuration: producerConfiguration, logger: logger)
        let producing = Task { try await producer.run() }
        let start = Date(timeIntervalSince1970: 1_796_000_000)
        var total = 0
        try await withThrowingTaskGroup(of: Void.self) { group in
            for meter in 0..<meters {
                let meterID = String(format: "BENCH%06d", meter)
                let readings = (0..<96).flatMap { quarter in
                    ["1.0.1.8.0.255", "1.0.2.8.0.255", "0.0.96.10.1.255"].map { obis in
                        Reading(obis: obis, classID: 3, attribute: 2, captureTime: start.addingTimeInterval(Double(quarter) * 900),
                                valueType: .number, value: String(meter * 1000 + quarter), unit: "Wh", profile: "1.0.99.1.0.255")
                    }
                }
                total += readings.count
                let batch = ReadingBatch(batchID: "bench-\(meter)#readings", taskID: "bench-\(meter)", region: "bench", meterID: meterID,
                                         collectedAt: start.addingTimeInterval(86_400), readings: readings)
                let bytes = try ContractCoder.encode(batch)
                group.addTask { _ = try await producer.send(topic: KafkaTopics.readings, key: meterID, value: bytes) }
                if meter % 200 == 199 { try await group.waitForAll() }
            }
            try await group.waitForAll()
        }
        await producer.close()
        producing.cancel()

        // Deliver.
        let clock = ContinuousClock()
        let began = clock.now
        processes.append(try await ChildProcessHandle.start(
            "uploader", ["--admin-port", "0", "--database-url", hesURL, "--kafka-brokers", brokers, "--ims-url", "http://127.0.0.1:\(imsPort)",
                         "--ims-format", format, "--log-level", "warning"], log: directory + "/uploader.log", ready: "", timeout: .seconds(5)))
        var confirmed = 0
        let deadline = began + .seconds(600)
        while confirmed < total, clock.now < deadline {
            try await Task.sleep(for: .milliseconds(250))
            confirmed = (try? await readings(imsPort: imsPort)) ?? confirmed
        }
        let elapsed = clock.now - began
        guard confirmed == total else {
            throw BenchmarkFailure("\(name): \(confirmed) of \(total) readings at the IMS after 600 s; see \(directory)")
        }
        let seconds = FleetBenchmarks.seconds(elapsed)
        return [
            BenchmarkResult(name: name, value: Double(total) / seconds, unit: "readings/s"),
            BenchmarkResult(name: "\(name).backlog_seconds", value: seconds, unit: "s"),
        ]
    }

    /// Readings the IMS holds (`GET /v1/stats`).
    static func readings(imsPort: Int) async throws -> Int {
        let output = try runTool("/usr/bin/curl", ["-s", "http://127.0.0.1:\(imsPort)/v1/stats"])
        let object = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any]
        return object?["readings"] as? Int ?? 0
    }
}
