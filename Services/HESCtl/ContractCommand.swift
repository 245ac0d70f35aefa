import ArgumentParser
import Contracts
import Foundation

/// `hesctl contract check <kind> <file|->`: validates a Kafka message the way consumers do.
struct ContractCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "contract",
        abstract: "Validate a pipeline message (collection-task, reading-batch, task-result, dead-letter) or an IMS exchange (ims-readings, ims-results, ims-reply) as its readers do.",
        subcommands: [Check.self])

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Decode a message and print its canonical JSON, or the error.")

        @Argument(help: "collection-task | reading-batch | task-result | dead-letter | ims-readings | ims-results | ims-reply")
        var kind: String

        @Argument(help: "A file with the JSON message, or - for standard input.")
        var input: String = "-"

        func run() throws {
            let bytes: [UInt8]
            if input == "-" {
                bytes = Array(FileHandle.standardInput.readDataToEndOfFile())
            } else {
                guard let data = FileManager.default.contents(atPath: input) else {
                    throw ValidationError("cannot read '\(input)'")
                }
                bytes = Array(data)
            }
            let canonical: [UInt8]
            do {
                switch kind {
                case CollectionTask.schemaName: canonical = try ContractCoder.encode(ContractCoder.decode(CollectionTask.self, from: bytes))
                case ReadingBatch.schemaName: canonical = try ContractCoder.encode(ContractCoder.decode(ReadingBatch.self, from: bytes))
                case TaskResult.schemaName: canonical = try ContractCoder.encode(ContractCoder.decode(TaskResult.self, from: bytes))
                case DeadLetter.schemaName: canonical = try ContractCoder.encode(ContractCoder.decode(DeadLetter.self, from: bytes))
                case IMSReadingsRequest.schemaName: canonical = try ContractCoder.encode(ContractCoder.decode(IMSReadingsRequest.self, from: bytes))
                case IMSResultsRequest.schemaName: canonical = try ContractCoder.encode(ContractCoder.decode(IMSResultsRequest.self, from: bytes))
                case IMSDeliveryReply.schemaName: canonical = try ContractCoder.encode(ContractCoder.decode(IMSDeliveryReply.self, from: bytes))
                default:
                    throw ValidationError("unknown kind '\(kind)': use collection-task, reading-batch, task-result, dead-letter, ims-readings, ims-results or ims-reply")
                }
            } catch let error as ContractError {
                FileHandle.standardError.write(Data("invalid \(kind): \(error)\n".utf8))
                throw ExitCode(2)
            } catch let error as EncodingError {
                // An IMS request whose items are unreadable decodes (each item on its own) but cannot be written back.
                FileHandle.standardError.write(Data("invalid \(kind): \(error)\n".utf8))
                throw ExitCode(2)
            }
            print(String(decoding: canonical, as: UTF8.self))
        }
    }
}
