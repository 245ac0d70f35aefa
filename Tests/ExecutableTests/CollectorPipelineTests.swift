import Contracts
import Foundation
import Logging
import Messaging
import Testing
import TestSupport

/// The collector as a process between kafka-dev and meter-sim: tasks published with
/// `hesctl task publish` are executed against simulated meters (TCP wrapper meters and HDLC
/// meters behind one UDP serial gateway), and the readings on `hes.readings` equal what
/// `meter-sim expect` says the meters hold.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct CollectorPipelineTests {
    static let region = "pipe"

    /// The processes of one test, stopped in reverse order at the end.
    final class Stack: @unchecked Sendable {
        var processes: [ChildProcess] = []
        let directory: String
        let kafkaPort: Int
        var brokers: String { "127.0.0.1:\(kafkaPort)" }

        init() throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("hes-pipe-\(UUID().uuidString.prefix(8))").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            kafkaPort = try freeLoopbackPort()
        }

        func start(_ product: String, _ arguments: [String], environment: [String: String] = [:], ready: String) async throws -> ChildProcess {
            let child = try ChildProcess(product: product, arguments: arguments, environment: environment)
            processes.append(child)
            try await child.waitForOutput(containing: ready, timeout: .seconds(30))
            return child
        }

        func stop() async {
            for child in processes.reversed() where child.isRunning {
                child.signal(SIGTERM)
                _ = await child.waitForExit(timeout: .seconds(6))
                if child.isRunning { child.signal(SIGKILL) }
            }
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    struct Meter {
        var index: Int
        var lineID: String
        var access: MeterAccess
        var serial: String { String(format: "SIM%08d", index + 1) }
    }

    @Test("tasks through kafka-dev to a collector: every reading equals meter-sim expect, malformed tasks fail cleanly")
    func readingsEqualMeterSimExpect() async throws {
        try await Self.withStack { stack in try await Self.readingsEqualMeterSimExpect(stack) }
    }

    /// Runs `body` with a new stack and stops its processes afterwards, whatever happened.
    static func withStack(_ body: (Stack) async throws -> Void) async throws {
        let stack = try Stack()
        do {
            try await body(stack)
        } catch {
            await stack.stop()
            throw error
        }
        await stack.stop()
    }

    static func readingsEqualMeterSimExpect(_ stack: Stack) async throws {
        let masterKeyFile = stack.directory + "/master.key"
        try "000102030405060708090A0B0C0D0E0F".write(toFile: masterKeyFile, atomically: true, encoding: .utf8)

        _ = try await stack.start("kafka-dev", [
            "--port", String(stack.kafkaPort), "--regions", Self.region, "--partitions", "4", "--admin-port", "0",
            "--bootstrap-file", stack.directory + "/bootstrap",
        ], ready: "kafka-dev bootstrap")

        let tcpPort = try freeLoopbackPorts(count: 4), gatewayPort = try freeLoopbackPort()
        let fleet = """
            {"seed": 0, "groups": [
              {"count": 4, "transport": "tcp", "framing": "wrapper", "port": \(tcpPort)},
              {"count": 3, "transport": "gateway-udp", "framing": "hdlc", "metersPerLine": 3, "physicalBase": 16, "port": \(gatewayPort)}
            ]}
            """
        try fleet.write(toFile: stack.directory + "/fleet.json", atomically: true, encoding: .utf8)
        _ = try await stack.start("meter-sim", ["--fleet", stack.directory + "/fleet.json", "--admin-port", "0"], ready: "meter-sim ready")

        let collector = try await stack.start("collector", ["--admin-port", "0", "--region", Self.region, "--step-timeout", "10s"], environment: [
            "HES_KAFKA_BROKERS": stack.brokers, "HES_MASTER_KEY_FILE": masterKeyFile, "HES_LOG_LEVEL": "debug",
        ], ready: "Kafka consumer started")

        // The LLS password, wrapped with the master key as the configuration would hold it.
        let wrapped = try await ChildProcess.run(product: "hesctl", arguments: [
            "key", "wrap-secret", "--secret", "12345678", "--master-key-file", masterKeyFile], environment: ["HES_MASTER_KEY_ID": "default"])
        #expect(wrapped.status == 0, "\(wrapped.stderr)")
        let password = try JSONDecoder().decode(WrappedSecret.self, from: Data(wrapped.stdout.utf8))
        #expect(!wrapped.stdout.contains("12345678"))

        var meters: [Meter] = []
        for index in 0..<4 {
            meters.append(Meter(index: index, lineID: "tcp-\(index)", access: MeterAccess(
                endpoint: .tcp(host: "127.0.0.1", port: tcpPort + index), protocol: .dlmsWrapper, clientSAP: 17,
                authentication: .lls, keys: .init(password: password))))
        }
        for position in 0..<3 {
            meters.append(Meter(index: 4 + position, lineID: "gateway-0", access: MeterAccess(
                endpoint: .gatewayUDP(host: "127.0.0.1", port: gatewayPort), protocol: .dlmsHDLC, clientSAP: 17,
                hdlcPhysicalAddress: 16 + position, authentication: .lls, keys: .init(password: password))))
        }
        let now = Date()
        let to = Date(timeIntervalSince1970: (now.timeIntervalSince1970 / 900).rounded(.down) * 900)
        let from = to.addingTimeInterval(-2 * 3600)
        let tasks = meters.map { meter in
            CollectionTask(
                taskID: "daily/\(meter.serial)", origin: .schedule, region: Self.region, lineID: meter.lineID, meterID: meter.serial,
                meter: meter.access, configVersion: 1, createdAt: now, deadline: now.addingTimeInterval(120),
                actions: [
                    .readObjects([
                        ObjectReference(classID: 3, obis: "1.0.1.8.0.255", attribute: 2),
                        ObjectReference(classID: 3, obis: "1.0.2.8.0.255", attribute: 2),
                        ObjectReference(classID: 8, obis: "0.0.1.0.0.255", attribute: 2),
                    ]),
                    .readProfile(profile: ObjectReference(classID: 7, obis: "1.0.99.1.0.255", attribute: 2), from: from, to: to),
                ])
        }
        let lines = try tasks.map { String(decoding: try ContractCoder.encode($0), as: UTF8.self) }.joined(separator: "\n")
        try lines.write(toFile: stack.directory + "/tasks.jsonl", atomically: true, encoding: .utf8)

        // A collector reading hes.readings and hes.results, as the uploader will.
        var consumerConfiguration = KafkaConsumerConfiguration(
            bootstrapServers: stack.brokers, groupID: KafkaTestSupport.uniqueName("pipe-check"), topics: [KafkaTopics.readings, KafkaTopics.results])
        consumerConfiguration.offsetReset = .earliest
        let consumer = try KafkaConsumer(configuration: consumerConfiguration, logger: KafkaTestSupport.testLogger("pipe-check"))
        let consuming = Task { try await consumer.run() }
        defer { consuming.cancel() }
        let received = KafkaMessageCollector(consumer) { consumer.markFinished($0) }

        let published = try await ChildProcess.run(product: "hesctl", arguments: [
            "task", "publish", stack.directory + "/tasks.jsonl", "--kafka-brokers", stack.brokers])
        #expect(published.status == 0, "\(published.stderr)")
        #expect(published.stdout.split(separator: "\n").count == tasks.count, "\(published.stdout)")

        // A malformed task: logged, counted and answered with a failed result.
        var producerConfiguration = KafkaProducerConfiguration(bootstrapServers: stack.brokers)
        producerConfiguration.clientID = "pipe-test"
        let producer = try KafkaProducer(configuration: producerConfiguration, logger: KafkaTestSupport.testLogger("pipe-test"))
        _ = try await producer.send(topic: KafkaTopics.tasks(region: Self.region), key: "tcp-0", value: Array(#"{"schema":"collection-task/v2","taskID":"broken-1"}"#.utf8))
        _ = try await producer.send(topic: KafkaTopics.tasks(region: Self.region), key: "tcp-1", value: Array("not json at all".utf8))
        await producer.close()

        let expectedMessages = tasks.count * 2 + 2  // a batch and a result per task, a result per malformed one
        let messages = try await received.wait(forCount: expectedMessages, timeout: .seconds(90))
        let results = try messages.filter { $0.topic == KafkaTopics.results }.map { try ContractCoder.decode(TaskResult.self, from: $0.value) }
        let batches = try messages.filter { $0.topic == KafkaTopics.readings }.map { try ContractCoder.decode(ReadingBatch.self, from: $0.value) }
        #expect(results.count == tasks.count + 2, "results: \(results.map { "\($0.taskID) \($0.outcome) \($0.failure?.code ?? "")" })\ncollector:\n\(collector.standardError.suffix(4000))")

        for task in tasks {
            let result = results.first { $0.taskID == task.taskID }
            #expect(result?.outcome == .succeeded, "\(task.taskID): \(String(describing: result))")
        }
        #expect(results.first { $0.taskID == "broken-1" }.map { $0.outcome == .failed && $0.failure?.code == "task.malformed" } == true)
        #expect(results.contains { $0.failure?.code == "task.malformed" && $0.taskID.hasPrefix("kafka:") && $0.lineID == "tcp-1" })

        // Every reading equals what the simulated meter holds.
        for meter in meters {
            let batch = try #require(batches.first { $0.meterID == meter.serial }, "no batch for \(meter.serial)")
            #expect(batch.batchID == "daily/\(meter.serial)#readings")
            let profile = try await Self.expectedProfile(meter: meter.index, from: from, to: to)
            var profileReadings = 0
            for row in profile.rows {
                for (column, obis) in [(1, "1.0.1.8.0.255"), (2, "1.0.2.8.0.255")] {
                    let reading = batch.readings.first { $0.obis == obis && $0.captureTime == row.time && $0.unit == "Wh" }
                    #expect(reading?.value == row.values[column - 1], "\(meter.serial) \(obis) at \(row.time)")
                    profileReadings += 1
                }
            }
            #expect(profileReadings == 18, "\(meter.serial): 9 quarter-hours in two hours, two registers")
            for obis in ["1.0.1.8.0.255", "1.0.2.8.0.255"] {
                let register = try #require(batch.readings.first { $0.obis == obis && $0.classID == 3 }, "\(meter.serial) \(obis)")
                let expected = try await Self.expectedRegister(meter: meter.index, obis: obis, at: register.captureTime)
                #expect(register.value == expected, "\(meter.serial) \(obis) at \(register.captureTime)")
                #expect(register.unit == "Wh" && register.valueType == .number)
            }
            let clock = batch.readings.first { $0.obis == "0.0.1.0.0.255" }
            #expect(clock?.valueType == .dateTime)
        }
        #expect(!collector.standardError.contains("12345678"), "the password never appears in the collector's log")
    }

    struct ExpectedProfile {
        struct Row { var time: Date; var values: [String] }
        var rows: [Row]
    }

    static func expectedProfile(meter: Int, from: Date, to: Date) async throws -> ExpectedProfile {
        let formatter = ISO8601DateFormatter()
        let result = try await ChildProcess.run(product: "meter-sim", arguments: [
            "expect", "--meter", String(meter), "--profile", "1.0.99.1.0.255", "--from", formatter.string(from: from), "--to", formatter.string(from: to)])
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] ?? [:]
        let rows = (object["rows"] as? [[Any]] ?? []).compactMap { row -> ExpectedProfile.Row? in
            guard let time = (row.first as? String).flatMap(formatter.date(from:)) else { return nil }
            return ExpectedProfile.Row(time: time, values: row.dropFirst().prefix(2).map { "\($0)" })
        }
        return ExpectedProfile(rows: rows)
    }

    static func expectedRegister(meter: Int, obis: String, at: Date) async throws -> String {
        let result = try await ChildProcess.run(product: "meter-sim", arguments: [
            "expect", "--meter", String(meter), "--obis", obis, "--at", ISO8601DateFormatter().string(from: at)])
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] ?? [:]
        return object["value"].map { "\($0)" } ?? "?"
    }
}
