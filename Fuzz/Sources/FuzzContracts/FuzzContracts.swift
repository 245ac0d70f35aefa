import Contracts
import Foundation
import FuzzSupport

/// What reaches the services from outside the process as JSON, as any byte string. The first
/// byte picks the reader: the Kafka contracts (collection-task, reading-batch, task-result,
/// dead-letter), the IMS's reply (native JSON, and CIM XML: a 61968-100 `ResponseMessage`), the configuration document (parsed and validated as
/// config-service does), or a command request. A contract that decodes must encode and decode
/// again to the same canonical bytes; refusals must be `ContractError` (or, for a command,
/// `DecodingError`); the configuration parser never throws and must not crash.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzContracts(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    switch data[0] % 8 {
    case 0: roundTrip(CollectionTask.self, bytes)
    case 1:
        roundTrip(ReadingBatch.self, bytes)
        sameAsFoundation(ReadingBatch.self, bytes)
    case 2: roundTrip(TaskResult.self, bytes)
    case 3: roundTrip(DeadLetter.self, bytes)
    case 4: roundTrip(IMSDeliveryReply.self, bytes)
    case 5: configuration(bytes)
    case 6: cimReply(bytes)
    default:
        refusesCleanly({ $0 is DecodingError }) { _ = try ContractCoder.makeDecoder().decode(CommandRequest.self, from: Data(bytes)) }
    }
    return 0
}

private let validator = ConfigurationValidator(builtInProfiles: ["standard", "four-byte-address", "disc-only", "gurux", "emh"])

private func roundTrip<Message: VersionedContract>(_ type: Message.Type, _ bytes: [UInt8]) {
    refusesCleanly({ $0 is ContractError }) {
        let message = try ContractCoder.decode(type, from: bytes)
        let first = try ContractCoder.encode(message)
        let again = try ContractCoder.encode(try ContractCoder.decode(type, from: first))
        precondition(again == first, "\(type) does not re-encode stably:\n\(String(decoding: first, as: UTF8.self))\n\(String(decoding: again, as: UTF8.self))")
    }
}

/// What ContractCoder reads (through ContractJSONReader's fast path where it takes the bytes)
/// equals what Foundation's JSONDecoder alone reads.
private func sameAsFoundation<Message: VersionedContract & Equatable>(_ type: Message.Type, _ bytes: [UInt8]) {
    guard let decoded = try? ContractCoder.decode(type, from: bytes) else { return }
    let foundation = try? ContractCoder.makeDecoder().decode(type, from: Data(bytes))
    precondition(foundation == decoded, "\(type) reads differently from JSONDecoder: \(String(decoding: bytes, as: UTF8.self))")
}

/// The CIM reply never crashes the reader; what it accepts names items by their position.
private func cimReply(_ bytes: [UInt8]) {
    guard let reply = CIMReplyParser.parse(bytes) else { return }
    precondition(reply.rejected.allSatisfy { $0.index >= 0 }, "a rejection at a negative position")
}

private func configuration(_ bytes: [UInt8]) {
    switch ConfigurationParser.parse(Data(bytes), validator: validator) {
    case .success(let document):
        precondition(ConfigurationParser.nullProblems(in: Data(bytes)).isEmpty, "a document with null was accepted")
        _ = document.meters.count
    case .failure(let problems):
        precondition(!problems.problems.isEmpty, "refused without a problem")
    }
}
