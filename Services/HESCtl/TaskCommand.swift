import ArgumentParser
import Contracts
import Foundation
import Logging
import Messaging

/// `hesctl task publish <file|->`: drives a collector by hand. Validates every task the way the
/// collector decodes it, then publishes each to its region's task topic (the priority topic for
/// commands and gap recovery, or with `--priority`) keyed by its line id, and prints where each
/// landed. Nothing is published when any task is invalid.
struct TaskCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "task",
        abstract: "Publish collection tasks to a region's task topics.",
        subcommands: [Publish.self])

    struct Publish: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate collection-task/v2 messages (one JSON object, an array, or one object per line) and publish them.")

        @Argument(help: "A file with the task(s), or - for standard input.")
        var input: String = "-"

        @Option(help: ArgumentHelp("Kafka bootstrap servers (HES_KAFKA_BROKERS). Default: 127.0.0.1:9092", valueName: "list"))
        var kafkaBrokers: String?

        @Flag(help: "Publish on hes.tasks.<region>.priority whatever the tasks' origin.")
        var priority = false

        @Flag(help: "Only validate; publish nothing.")
        var dryRun = false

        func run() async throws {
            let bytes: Data
            if input == "-" {
                bytes = FileHandle.standardInput.readDataToEndOfFile()
            } else {
                guard let data = FileManager.default.contents(atPath: input) else { throw ValidationError("cannot read '\(input)'") }
                bytes = data
            }
            let tasks: [CollectionTask]
            do {
                tasks = try Self.tasks(in: bytes)
            } catch let error as ContractError {
                FileHandle.standardError.write(Data("invalid collection-task: \(error)\n".utf8))
                throw ExitCode(2)
            }
            guard !tasks.isEmpty else { throw ValidationError("no task in '\(input)'") }
            if dryRun {
                for task in tasks { print(#"{"taskID":\#(Self.quoted(task.taskID)),"topic":\#(Self.quoted(topic(of: task))),"valid":true}"#) }
                return
            }
            let brokers = kafkaBrokers ?? ProcessInfo.processInfo.environment["HES_KAFKA_BROKERS"] ?? "127.0.0.1:9092"
            var logger = Logger(label: "hesctl.task")
            logger.logLevel = .error
            var configuration = KafkaProducerConfiguration(bootstrapServers: brokers)
            configuration.clientID = "hesctl"
            let producer = try KafkaProducer(configuration: configuration, logger: logger)
            for task in tasks {
                do {
                    let report = try await producer.send(topic: topic(of: task), key: task.lineID, value: try ContractCoder.encode(task))
                    print(#"{"offset":\#(report.offset),"partition":\#(report.partition),"taskID":\#(Self.quoted(task.taskID)),"topic":\#(Self.quoted(report.topic))}"#)
                } catch {
                    FileHandle.standardError.write(Data("publishing \(task.taskID) to \(brokers) failed: \(error)\n".utf8))
                    await producer.close()
                    throw ExitCode(1)
                }
            }
            await producer.close()
        }

        func topic(of task: CollectionTask) -> String {
            priority || task.origin != .schedule ? KafkaTopics.priorityTasks(region: task.region) : KafkaTopics.tasks(region: task.region)
        }

        /// One object, an array of objects, or one object per line; every one must decode.
        static func tasks(in data: Data) throws -> [CollectionTask] {
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if text.hasPrefix("[") {
                guard let array = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [Any] else {
                    throw ContractError(.malformed, "the array is not valid JSON")
                }
                return try array.enumerated().map { index, element in
                    do {
                        return try ContractCoder.decode(CollectionTask.self, from: Array(try JSONSerialization.data(withJSONObject: element)))
                    } catch let error as ContractError {
                        throw ContractError(error.code, "task [\(index)]: \(error.reason)")
                    }
                }
            }
            if let single = try? ContractCoder.decode(CollectionTask.self, from: Array(text.utf8)) { return [single] }
            let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            return try lines.enumerated().map { index, line in
                do {
                    return try ContractCoder.decode(CollectionTask.self, from: Array(line.utf8))
                } catch let error as ContractError {
                    throw ContractError(error.code, lines.count == 1 ? error.reason : "line \(index + 1): \(error.reason)")
                }
            }
        }

        static func quoted(_ text: String) -> String {
            String(decoding: (try? JSONEncoder().encode(text)) ?? Data("\"\"".utf8), as: UTF8.self)
        }
    }
}
