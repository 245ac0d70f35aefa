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
    final class Stack: ProcessStack, @unchecked Sendable {
        let kafkaPort: Int
        var brokers: String { "127.0.0.1:\(kafkaPort)" }

        init() throws {
            kafkaPort = try freeLoopbackPort()
            try super.init(prefix: "hes-pipe", stopGrace: .seconds(6))
        }

        /// kafka-dev on this stack's fixed port, with the region's topics.
        func startKafka(partitions: Int = 4) async throws {
            _ = try await start("kafka-dev", [
                "--port", String(kafkaPort), "--regions", CollectorPipelineTests.region, "--partitions", String(partitions),
                "--admin-port", "0", "--bootstrap-file", directory + "/bootstrap",
            ], ready: "kafka-dev bootstrap")
        }

        /// meter-sim serving `fleet` (a fleet file's JSON); returns its admin port.
        func startMeterSim(fleet: String) async throws -> Int {
            try fleet.write(toFile: directory + "/fleet.json", atomically: true, encoding: .utf8)
            let adminPort = try freeLoopbackPort()
            _ = try await start("meter-sim", ["--fleet", directory + "/fleet.json", "--admin-port", String(adminPort)], ready: "meter-sim ready")
            return adminPort
        }

        func startCollector(_ extra: [String] = [], masterKeyFile: String? = nil) async throws -> ChildProcess {
            var environment = ["HES_KAFKA_BROKERS": brokers]
            environment["HES_MASTER_KEY_FILE"] = masterKeyFile
            return try await start("collector", ["--admin-port", "0", "--region", CollectorPipelineTests.region] + extra,
                                   environment: environment, ready: "Kafka consumer started")
        }

        /// A consumer of hes.readings and hes.results keeping what it reads.
        func resultReader() throws -> (KafkaMessageCollector, Task<Void, any Error>) {
            var configuration = KafkaConsumerConfiguration(
                bootstrapServers: brokers, groupID: KafkaTestSupport.uniqueName("pipe-check"), topics: [KafkaTopics.readings, KafkaTopics.results])
            configuration.offsetReset = .earliest
            let consumer = try KafkaConsumer(configuration: configuration, logger: KafkaTestSupport.testLogger("pipe-check"))
            let running = Task { try await consumer.run() }
            return (KafkaMessageCollector(consumer) { consumer.markFinished($0) }, running)
        }

        /// Publishes `tasks` with `hesctl task publish`.
        func publish(_ tasks: [CollectionTask]) async throws {
            let lines = try tasks.map { String(decoding: try ContractCoder.encode($0), as: UTF8.self) }.joined(separator: "\n")
            let file = directory + "/tasks-\(UUID().uuidString.prefix(6)).jsonl"
            try lines.write(toFile: file, atomically: true, encoding: .utf8)
            let published = try await ChildProcess.run(product: "hesctl", arguments: ["task", "publish", file, "--kafka-brokers", brokers])
            #expect(published.status == 0, "\(published.stderr)")
        }

        /// A master key file for the collector and meter-sim's LLS password wrapped with it.
        func wrappedPassword() async throws -> (masterKeyFile: String, password: WrappedSecret) {
            let file = directory + "/master.key"
            try "000102030405060708090A0B0C0D0E0F".write(toFile: file, atomically: true, encoding: .utf8)
            let wrapped = try await ChildProcess.run(product: "hesctl", arguments: [
                "key", "wrap-secret", "--secret", "12345678", "--master-key-file", file], environment: ["HES_MASTER_KEY_ID": "default"])
            #expect(wrapped.status == 0, "\(wrapped.stderr)")
            return (file, try JSONDecoder().decode(WrappedSecret.self, from: Data(wrapped.stdout.utf8)))
        }

    }

    struct Meter {
        var index: Int
        var lineID: String
        var access: MeterAccess
        var serial: String { String(format: "SIM%08d", index + 1) }
    }

    @Test("tasks through kafka-dev to a collector and on through the uploader to ims-sim: every reading at the IMS equals meter-sim expect, malformed tasks fail cleanly")
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
        // The thin path on to the IMS: the uploader and ims-sim, each with its own database.
        let hesDatabase = try await PostgresTestCluster.shared.createDatabase(prefix: "pipe_hes")
        let imsDatabase = try await PostgresTestCluster.shared.createDatabase(prefix: "pipe_ims")
        let imsPort = try freeLoopbackPort()
        _ = try await stack.start("ims-sim", ["--port", String(imsPort), "--admin-port", "0"], environment: ["HES_IMS_DATABASE_URL": imsDatabase.url],
                                  ready: "ims api listening")
        _ = try await stack.start("uploader", ["--admin-port", "0", "--ims-url", "http://127.0.0.1:\(imsPort)"], environment: [
            "HES_KAFKA_BROKERS": stack.brokers, "HES_DATABASE_URL": hesDatabase.url,
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

        // The IMS holds exactly these readings, each once, and every task's result; the results of
        // the malformed tasks name no meter, and the IMS rejects them (they go to the dead-letter topic).
        let expectedCount = batches.reduce(0) { $0 + $1.readings.count }
        let withoutMeter = results.filter { $0.meterID.isEmpty }.count
        #expect(withoutMeter == 2)
        let delivered = try await eventually(timeout: .seconds(60), interval: .milliseconds(250)) {
            let stats = try httpGet(port: imsPort, path: "/v1/stats")
            return stats.body.contains("\"readings\":\(expectedCount),") && stats.body.contains("\"results\":\(results.count - withoutMeter)")
                && stats.body.contains("\"rejectedItems\":\(withoutMeter),")
        }
        #expect(delivered, "ims-sim stats: \((try? httpGet(port: imsPort, path: "/v1/stats").body) ?? "none")")
        let decoder = ContractCoder.makeDecoder()
        for batch in batches {
            let held = try decoder.decode([Reading].self, from: Data(try httpGet(port: imsPort, path: "/v1/meters/\(batch.meterID)/readings").body.utf8))
            let key = { (reading: Reading) in "\(reading.obis)|\(reading.attribute)|\(reading.captureTime.timeIntervalSince1970)" }
            // The IMS keeps the values, not which profile row held them (that is the head-end's progress bookkeeping).
            let published = batch.readings.map { reading in
                var reading = reading
                reading.profile = nil
                return reading
            }
            #expect(Dictionary(uniqueKeysWithValues: held.map { (key($0), $0) }) == Dictionary(uniqueKeysWithValues: published.map { (key($0), $0) }),
                    "\(batch.meterID): the IMS holds other readings than the collector published")
        }
    }

    static func task(_ id: String, serial: String, line: String, access: MeterAccess, origin: CollectionTask.Origin = .command,
                     deadline: TimeInterval = 60, actions: [TaskAction]) -> CollectionTask {
        let now = Date()
        return CollectionTask(taskID: id, origin: origin, region: region, lineID: line, meterID: serial, meter: access, configVersion: 1,
                              commandID: origin == .command ? id : nil, createdAt: now, deadline: now.addingTimeInterval(deadline), actions: actions)
    }

    static func results(_ messages: [KafkaConsumerMessage]) -> [TaskResult] {
        messages.filter { $0.topic == KafkaTopics.results }.compactMap { try? ContractCoder.decode(TaskResult.self, from: $0.value) }
    }

    @Test("commands: time sync with 200 ms latency leaves the clock within 100 ms; a disconnect delivered twice acts once")
    func commands() async throws {
        try await Self.withStack { stack in
            try await stack.startKafka()
            let port = try freeLoopbackPorts(count: 2)
            let admin = try await stack.startMeterSim(fleet: """
                {"seed": 0, "groups": [
                  {"count": 1, "transport": "tcp", "framing": "wrapper", "port": \(port), "faults": {"latency": "200ms", "clockDrift": "-90s"}},
                  {"count": 1, "transport": "tcp", "framing": "hdlc", "port": \(port + 1)}
                ]}
                """)
            let (masterKeyFile, password) = try await stack.wrappedPassword()
            _ = try await stack.startCollector(masterKeyFile: masterKeyFile)
            let (reader, running) = try stack.resultReader()
            defer { running.cancel() }
            // The reading client (17, LLS) may set the clock and operate the disconnector.
            let clockMeter = MeterAccess(endpoint: .tcp(host: "127.0.0.1", port: port), protocol: .dlmsWrapper, clientSAP: 17,
                                         authentication: .lls, keys: .init(password: password))
            let breakerMeter = MeterAccess(endpoint: .tcp(host: "127.0.0.1", port: port + 1), protocol: .dlmsHDLC, clientSAP: 17,
                                           hdlcPhysicalAddress: 16, authentication: .lls, keys: .init(password: password))
            try await stack.publish([
                Self.task("sync-1", serial: "SIM00000001", line: "tcp-0", access: clockMeter, actions: [.synchronizeClock(maximumDeviation: 0.05)]),
                Self.task("cut-1", serial: "SIM00000002", line: "tcp-1", access: breakerMeter, actions: [.setSupplyState(.disconnected)]),
            ])
            let first = Self.results(try await reader.wait(forCount: 2, timeout: .seconds(60)))
            let sync = try #require(first.first { $0.taskID == "sync-1" })
            #expect(sync.outcome == .succeeded, "\(sync)")
            #expect(sync.details["clockSet"] == "true")
            #expect(Double(sync.details["clockOffsetBeforeSeconds"] ?? "") .map { abs($0 + 90) < 1 } == true, "\(sync.details)")
            let meters = try JSONSerialization.jsonObject(with: Data(httpGet(port: admin, path: "/meters").body.utf8)) as? [[String: Any]] ?? []
            let offset = try #require(meters.first?["clockOffsetSeconds"] as? Double)
            #expect(abs(offset) <= 0.1, "the simulated clock is \(offset) s off after the sync: \(sync.details)")

            let cut = try #require(first.first { $0.taskID == "cut-1" })
            #expect(cut.outcome == .succeeded, "\(cut)")
            #expect(cut.details["supplyAction"] == "remote-disconnect" && cut.details["supplyState"] == "disconnected", "\(cut.details)")
            // Delivered again (a redelivery after a crash looks the same): nothing more is done.
            try await stack.publish([
                Self.task("cut-1", serial: "SIM00000002", line: "tcp-1", access: breakerMeter, actions: [.setSupplyState(.disconnected)]),
            ])
            let again = Self.results(try await reader.wait(forCount: 3, timeout: .seconds(60))).filter { $0.taskID == "cut-1" }
            #expect(again.count == 2)
            #expect(again.last?.details["supplyAction"] == "none" && again.last?.details["supplyStateBefore"] == "disconnected", "\(String(describing: again.last))")
            let after = try JSONSerialization.jsonObject(with: Data(httpGet(port: admin, path: "/meters/SIM00000002").body.utf8)) as? [String: Any]
            #expect(after?["disconnectState"] as? String == "disconnected")
        }
    }

    @Test("IEC 62056-21 mode C meters on a serial line and behind a gateway: registers and the load profile equal meter-sim expect; a disconnect is refused alone")
    func iec21ModeCMeters() async throws {
        try await Self.withStack { stack in
            try await stack.startKafka()
            let port = try freeLoopbackPort()
            let linePath = stack.directory + "/optical"
            _ = try await stack.startMeterSim(fleet: """
                {"seed": 0, "groups": [
                  {"count": 2, "transport": "serial", "framing": "iec21", "quirk": "emh", "metersPerLine": 2, "linePath": "\(linePath)"},
                  {"count": 2, "transport": "gateway-udp", "framing": "iec21", "quirk": "emh", "metersPerLine": 2, "port": \(port)}
                ]}
                """)
            let (masterKeyFile, password) = try await stack.wrappedPassword()
            let adminPort = try freeLoopbackPort()
            _ = try await stack.start("collector", ["--admin-port", String(adminPort), "--region", Self.region],
                                      environment: ["HES_KAFKA_BROKERS": stack.brokers, "HES_MASTER_KEY_FILE": masterKeyFile], ready: "Kafka consumer started")
            let (reader, running) = try stack.resultReader()
            defer { running.cancel() }

            let period: TimeInterval = 900
            let to = (Date().timeIntervalSince1970 / period).rounded(.down) * period
            let from = Date(timeIntervalSince1970: to - 2 * 3600)
            let objects = [
                ObjectReference(classID: 8, obis: "0.0.1.0.0.255", attribute: 2),
                ObjectReference(classID: 3, obis: "1.0.1.8.0.255", attribute: 2),
                ObjectReference(classID: 3, obis: "1.0.2.8.0.255", attribute: 2),
            ]
            let profile = ObjectReference(classID: 7, obis: "1.0.99.1.0.255", attribute: 2)
            var tasks: [CollectionTask] = []
            for index in 0..<4 {
                let serial = String(format: "SIM%08d", index + 1)
                let endpoint: MeterEndpoint = index < 2 ? .serial(device: linePath, baudRate: 9600) : .gatewayUDP(host: "127.0.0.1", port: port)
                let access = MeterAccess(endpoint: endpoint, protocol: .iec62056_21, deviceAddress: serial, authentication: .lls,
                                         manufacturerProfile: .named("emh"), keys: .init(password: password))
                var actions: [TaskAction] = [.readObjects(objects), .readProfile(profile: profile, from: from, to: Date(timeIntervalSince1970: to))]
                if index == 3 { actions.append(.setSupplyState(.disconnected)) }
                tasks.append(Self.task("modec/\(serial)", serial: serial, line: index < 2 ? "optical" : "gateway", access: access, origin: .schedule,
                                       deadline: 120, actions: actions))
            }
            try await stack.publish(tasks)
            let messages = try await reader.wait(forCount: 8, timeout: .seconds(120))
            let results = Self.results(messages)
            let batches = messages.filter { $0.topic == KafkaTopics.readings }.compactMap { try? ContractCoder.decode(ReadingBatch.self, from: $0.value) }
            for index in 0..<4 {
                let serial = String(format: "SIM%08d", index + 1)
                let result = try #require(results.first { $0.meterID == serial }, "no result for \(serial): \(results)")
                if index == 3 {
                    #expect(result.outcome == .partial && result.failure?.code == "task.unsupported", "\(result)")
                } else {
                    #expect(result.outcome == .succeeded, "\(result)")
                }
                let batch = try #require(batches.first { $0.meterID == serial }, "no batch for \(serial)")
                // The load profile: average power per quarter hour, 4 × the energy of the interval, in kW.
                let energy = try await Self.expectedProfile(meter: index, from: from.addingTimeInterval(-period), to: Date(timeIntervalSince1970: to))
                #expect(energy.rows.count == 10, "\(serial): \(energy.rows.count) expected energy rows")
                var profileReadings = 0
                for (previous, row) in zip(energy.rows, energy.rows.dropFirst()) {
                    for (column, obis) in [(0, "1.0.1.5.0.255"), (1, "1.0.2.5.0.255")] {
                        let watts = 4 * ((Decimal(string: row.values[column]) ?? 0) - (Decimal(string: previous.values[column]) ?? 0))
                        let reading = batch.readings.first { $0.obis == obis && $0.captureTime == row.time }
                        #expect(reading.flatMap { Decimal(string: $0.value) } == watts / 1000, "\(serial) \(obis) at \(row.time): \(String(describing: reading))")
                        #expect(reading?.unit == "kW" && reading?.profile == profile.obis)
                        profileReadings += 1
                    }
                }
                #expect(batch.readings.filter { $0.profile != nil }.count == profileReadings && profileReadings == 18, "\(serial)")
                // Registers in kWh at the meter's own time (its clock reading).
                let clock = try #require(batch.readings.first { $0.obis == "0.0.1.0.0.255" }, "\(serial): no clock")
                #expect(clock.valueType == .dateTime && abs(clock.captureTime.timeIntervalSinceNow) < 120)
                for obis in ["1.0.1.8.0.255", "1.0.2.8.0.255"] {
                    let register = try #require(batch.readings.first { $0.obis == obis }, "\(serial) \(obis)")
                    let wattHours = try await Self.expectedRegister(meter: index, obis: obis, at: register.captureTime)
                    #expect(Decimal(string: register.value) == (Decimal(string: wattHours) ?? -1) / 1000 && register.unit == "kWh",
                            "\(serial) \(obis): \(register.value) \(register.unit ?? "") at \(register.captureTime), expected \(wattHours) Wh")
                }
            }

            // The collector's metrics: bytes on the wire by kind of line, and its group's lag (0: all done).
            func sample(_ text: String, _ name: String, _ labels: [String]) -> Double? {
                text.split(separator: "\n").first { $0.hasPrefix(name + "{") && labels.allSatisfy($0.contains) }
                    .flatMap { $0.split(separator: " ").last.flatMap { Double($0) } }
            }
            func lagLines(_ text: String) -> [Substring] {
                text.split(separator: "\n").filter { $0.hasPrefix("hes_kafka_consumer_lag{") && $0.contains(#"group="hes-collector-pipe""#) }
            }
            var metrics = ""
            let deadline = ContinuousClock.now + .seconds(20)
            repeat {
                // The gauges are refreshed every 5 s: wait for a refresh after the last task finished.
                metrics = try httpGet(port: adminPort, path: "/metrics").body
                let lags = lagLines(metrics)
                if !lags.isEmpty && lags.allSatisfy({ $0.hasSuffix(" 0") || $0.hasSuffix(" 0.0") }) { break }
                try await Task.sleep(for: .milliseconds(500))
            } while ContinuousClock.now < deadline
            for (direction, line) in [("sent", "serial"), ("received", "serial"), ("sent", "gateway-udp"), ("received", "gateway-udp")] {
                let bytes = sample(metrics, "hes_meter_wire_bytes_total", [#"direction="\#(direction)""#, #"line="\#(line)""#]) ?? 0
                #expect(bytes > 100, "\(direction) on \(line) lines: \(bytes) bytes")
            }
            let lags = lagLines(metrics)
            #expect(!lags.isEmpty, "no lag gauge for the collector's group")
            #expect(lags.allSatisfy { $0.hasSuffix(" 0") || $0.hasSuffix(" 0.0") }, "\(lags)")
        }
    }

    @Test("faults end as typed failures with their codes while other lines keep being served")
    func faultsAreTypedFailures() async throws {
        try await Self.withStack { stack in
            try await stack.startKafka()
            let port = try freeLoopbackPorts(count: 6)
            _ = try await stack.startMeterSim(fleet: """
                {"seed": 0, "groups": [
                  {"count": 1, "transport": "tcp", "framing": "wrapper", "port": \(port), "faults": {"silent": 1}},
                  {"count": 1, "transport": "tcp", "framing": "wrapper", "port": \(port + 1), "faults": {"garbage": 1}},
                  {"count": 1, "transport": "tcp", "framing": "wrapper", "port": \(port + 2), "faults": {"refuse": 1}},
                  {"count": 1, "transport": "tcp", "framing": "wrapper", "port": \(port + 3), "faults": {"latency": "3s"}},
                  {"count": 1, "transport": "tcp", "framing": "wrapper", "port": \(port + 4)}
                ]}
                """)
            let collector = try await stack.startCollector(["--step-timeout", "1s"])
            let (reader, running) = try stack.resultReader()
            defer { running.cancel() }
            let read: [TaskAction] = [.readObjects([ObjectReference(classID: 8, obis: "0.0.1.0.0.255", attribute: 2)])]
            var tasks = (0..<5).map { index in
                Self.task("fault-\(index)", serial: String(format: "SIM%08d", index + 1), line: "tcp-\(index)",
                          access: MeterAccess(endpoint: .tcp(host: "127.0.0.1", port: port + index), protocol: .dlmsWrapper), origin: .schedule,
                          actions: read)
            }
            // Nothing listens on the sixth port; an expired task is reported, not run.
            tasks.append(Self.task("fault-5", serial: "SIM00000099", line: "tcp-5",
                                   access: MeterAccess(endpoint: .tcp(host: "127.0.0.1", port: port + 5), protocol: .dlmsWrapper), origin: .schedule, actions: read))
            tasks.append(Self.task("expired", serial: "SIM00000005", line: "tcp-4",
                                   access: MeterAccess(endpoint: .tcp(host: "127.0.0.1", port: port + 4), protocol: .dlmsWrapper), origin: .schedule,
                                   deadline: -1, actions: read))
            try await stack.publish(tasks)
            let results = Self.results(try await reader.wait(forCount: 7 + 1, timeout: .seconds(60)))
            func code(_ id: String) -> String? { results.first { $0.taskID == id }?.failure?.code }
            #expect(code("fault-0") == "meter.timeout", "\(results)")
            #expect(["meter.malformed-response", "meter.link-failed", "meter.unexpected-response"].contains(code("fault-1") ?? ""), "\(results)")
            #expect(code("fault-2") == "association.refused", "\(results)")
            #expect(code("fault-3") == "meter.timeout", "\(results)")
            #expect(results.first { $0.taskID == "fault-4" }?.outcome == .succeeded, "\(results)")
            #expect(code("fault-5") == "meter.unreachable", "\(results)")
            #expect(results.first { $0.taskID == "expired" }?.outcome == .expired)
            #expect(results.first { $0.taskID == "fault-0" }?.failure?.retriable == true)
            #expect(results.first { $0.taskID == "fault-0" }?.details["attempts"] == "3", "a silent meter is tried three times within the deadline")
            #expect(results.first { $0.taskID == "fault-2" }?.details["attempts"] == nil, "a refused association is not retried")
            #expect(results.first { $0.taskID == "fault-2" }?.failure?.retriable == false)
            #expect(collector.isRunning)
        }
    }

    @Test("200 meters on 60 lines (TCP, gateway multi-drop, serial buses), two collectors, one SIGKILLed mid-run and restarted: nothing is lost")
    func killedCollectorLosesNothing() async throws {
        try await Self.withStack { stack in
            try await stack.startKafka(partitions: 8)
            let tcpPort = try freeLoopbackPorts(count: 40), gatewayPort = try freeLoopbackPorts(count: 10)
            let busPath = stack.directory + "/bus"
            let admin = try await stack.startMeterSim(fleet: """
                {"seed": 0, "groups": [
                  {"count": 40, "transport": "tcp", "framing": "wrapper", "port": \(tcpPort)},
                  {"count": 80, "transport": "gateway-udp", "framing": "hdlc", "metersPerLine": 8, "physicalBase": 16, "port": \(gatewayPort)},
                  {"count": 80, "transport": "serial", "framing": "hdlc", "metersPerLine": 8, "physicalBase": 16, "linePath": "\(busPath)", "baud": 38400}
                ]}
                """)
            let (masterKeyFile, password) = try await stack.wrappedPassword()
            let collectorArguments = ["--kafka-session-timeout", "6s", "--step-timeout", "5s"]
            let first = try await stack.startCollector(collectorArguments, masterKeyFile: masterKeyFile)
            _ = try await stack.startCollector(collectorArguments, masterKeyFile: masterKeyFile)
            let (reader, running) = try stack.resultReader()
            defer { running.cancel() }

            let now = Date()
            let to = Date(timeIntervalSince1970: (now.timeIntervalSince1970 / 900).rounded(.down) * 900)
            let from = to.addingTimeInterval(-3600)
            var tasks: [CollectionTask] = []
            for index in 0..<200 {
                let serial = String(format: "SIM%08d", index + 1)
                let (line, endpoint, physical): (String, MeterEndpoint, Int?) = switch index {
                case 0..<40: ("tcp-\(index)", .tcp(host: "127.0.0.1", port: tcpPort + index), nil)
                case 40..<120: ("gateway-\((index - 40) / 8)", .gatewayUDP(host: "127.0.0.1", port: gatewayPort + (index - 40) / 8), 16 + (index - 40) % 8)
                default: ("bus-\((index - 120) / 8)", .serial(device: "\(busPath)-\((index - 120) / 8)", baudRate: 38400), 16 + (index - 120) % 8)
                }
                let access = MeterAccess(endpoint: endpoint, protocol: index < 40 ? .dlmsWrapper : .dlmsHDLC, clientSAP: 17,
                                         hdlcPhysicalAddress: physical, authentication: .lls, keys: .init(password: password))
                tasks.append(Self.task("hourly/\(serial)", serial: serial, line: line, access: access, origin: .schedule, deadline: 240, actions: [
                    .readObjects([ObjectReference(classID: 3, obis: "1.0.1.8.0.255", attribute: 2)]),
                    .readProfile(profile: ObjectReference(classID: 7, obis: "1.0.99.1.0.255", attribute: 2), from: from, to: to),
                ]))
            }
            try await stack.publish(tasks)

            // Kill one collector once about a third of the tasks are done, then start another.
            _ = try await reader.wait(forCount: 120, timeout: .seconds(120))
            first.signal(SIGKILL)
            _ = await first.waitForExit(timeout: .seconds(5))
            _ = try await stack.startCollector(collectorArguments, masterKeyFile: masterKeyFile)

            let deadline = ContinuousClock.now + .seconds(200)
            var results: [TaskResult] = []
            while ContinuousClock.now < deadline {
                results = Self.results(reader.received)
                if Set(results.map(\.taskID)).count >= tasks.count { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            let done = Set(results.map(\.taskID))
            #expect(done == Set(tasks.map(\.taskID)), "missing: \(Set(tasks.map(\.taskID)).subtracting(done).sorted().prefix(20))")
            let failed = results.filter { $0.outcome != .succeeded }
            #expect(failed.isEmpty, "\(failed.prefix(10).map { "\($0.taskID) \($0.outcome) \($0.failure?.code ?? "") \($0.failure?.reason ?? "")" })")

            // Every expected profile reading was published (at least once).
            let batches = reader.received.filter { $0.topic == KafkaTopics.readings }.compactMap { try? ContractCoder.decode(ReadingBatch.self, from: $0.value) }
            var published: Set<String> = []
            for batch in batches {
                for reading in batch.readings where reading.obis == "1.0.1.8.0.255" && reading.classID == 3 && reading.captureTime.timeIntervalSince1970.truncatingRemainder(dividingBy: 900) == 0 {
                    published.insert("\(batch.meterID)|\(Int(reading.captureTime.timeIntervalSince1970))|\(reading.value)")
                }
            }
            let formatter = ISO8601DateFormatter()
            let expectation = try await ChildProcess.run(product: "meter-sim", arguments: [
                "expect", "--meter", "0-199", "--profile", "1.0.99.1.0.255", "--from", formatter.string(from: from), "--to", formatter.string(from: to)])
            var expected: Set<String> = []
            for line in expectation.stdout.split(separator: "\n") {
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
                let serial = object["meter"] as? String ?? "?"
                for row in object["rows"] as? [[Any]] ?? [] {
                    guard let time = (row.first as? String).flatMap(formatter.date(from:)) else { continue }
                    expected.insert("\(serial)|\(Int(time.timeIntervalSince1970))|\(row[1])")
                }
            }
            #expect(expected.count == 200 * 5)
            let missing = expected.subtracting(published)
            #expect(missing.isEmpty, "\(missing.count) expected readings not published, e.g. \(missing.sorted().prefix(5))")

            let metrics = try httpGet(port: admin, path: "/metrics").body
            let contentions = metrics.split(separator: "\n").first { $0.hasPrefix("hes_sim_bus_contentions_total") }
            #expect(contentions == nil || contentions?.hasSuffix(" 0") == true, "\(String(describing: contentions))")
        }
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
