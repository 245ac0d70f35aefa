import COSEM
import DLMSClient
import DLMSCodec
import Foundation
import MeterSimulation
import NIOConcurrencyHelpers
import NIOCore
import Testing
import TestSupport

/// SET with block transfer (Green Book 9.3.7) when the value does not fit the meter's PDU size.
@Suite("SET with block transfer", .serialized, .timeLimit(.minutes(1)))
struct SetBlockTransferTests {
    @Test("a clock SET larger than a 24-byte PDU goes in blocks and takes effect")
    func clockInBlocks() async throws {
        try await SecureAssociationTests.SecureMeter.with(configure: { $0.maximumServerPDUSize = 24; $0.offersSetBlockTransfer = true }) { secure in
            var connection = MeterConnection(endpoint: .tcp(host: "127.0.0.1", port: secure.server.port), clientSAP: 1,
                                             authentication: .low(password: Array("12345678".utf8)))
            // Generous for a loaded machine: the test is about the blocks, not the timing.
            connection.timeouts.step = .seconds(10)
            let target = Date().addingTimeInterval(3600)
            let read = try await DLMSClient.withAssociation(to: connection) { client in
                #expect(client.association.serverMaxReceivePDUSize == 24)
                try await client.setClock(CosemDateTime(unixTime: Int64(target.timeIntervalSince1970)))
                return try await client.readClock()
            }
            let readTime = read.unixTime.map(Double.init) ?? 0
            #expect(abs(readTime - target.timeIntervalSince1970) < 5, "\(read)")
            // On the wire: SET-Request-With-First-Datablock (C1 02), then With-Datablock (C1 03).
            let setKinds = secure.requests.withLockedValue { requests in
                requests.compactMap { r -> UInt8? in r.getInteger(at: r.readerIndex, as: UInt8.self) == 0xC1 ? r.getInteger(at: r.readerIndex + 1, as: UInt8.self) : nil }
            }
            #expect(setKinds.first == 2 && setKinds.dropFirst().allSatisfy { $0 == 3 } && setKinds.count >= 2, "\(setKinds)")
        }
    }

    @Test("server side: a block out of order or without a transfer is refused; the meter keeps working")
    func serverRefusesBadBlocks() throws {
        var configuration = SimulatedMeter.Configuration.fleetMember(index: 0)
        configuration.maximumServerPDUSize = 64
        configuration.offersSetBlockTransfer = true
        var session = COSEMServerSession(meter: SimulatedMeter(configuration: configuration), clientSAP: 1)
        let now = Date()
        let aarq = DLMSAPDU.aarq(.authenticated(mechanism: .low, secret: Array("12345678".utf8),
                                                initiate: InitiateRequest(proposedConformance: ManufacturerProfile.clientConformance, clientMaxReceivePDUSize: 64)))
        _ = session.handle(aarq.encoded, now: now)
        #expect(session.isAssociated)
        let id = InvokeIDAndPriority(invokeID: 1, confirmed: true, highPriority: true)
        func send(_ request: SetRequest) throws -> SetResponse? {
            guard let response = session.handle(DLMSAPDU.setRequest(request).encoded, now: now) else { return nil }
            guard case .setResponse(let set) = try DLMSAPDU(exactly: response) else { return nil }
            return set
        }
        #expect(try send(.withDataBlock(invokeID: id, block: DataBlockSA(lastBlock: true, blockNumber: 2, rawData: [0x00])))
                == .lastDataBlock(invokeID: id, result: .noLongSetInProgress, blockNumber: 2))
        let clock = CosemAttributeDescriptor(classID: .clock, instance: .clock, attribute: 2)
        #expect(try send(.withFirstDataBlock(invokeID: id, attribute: clock, accessSelection: nil, block: DataBlockSA(lastBlock: false, blockNumber: 1, rawData: [0x09, 0x0C])))
                == .dataBlock(invokeID: id, blockNumber: 1))
        #expect(try send(.withDataBlock(invokeID: id, block: DataBlockSA(lastBlock: true, blockNumber: 3, rawData: [0x00])))
                == .lastDataBlock(invokeID: id, result: .dataBlockNumberInvalid, blockNumber: 3))
        // Garbage as the value: type-unmatched, not a crash.
        _ = try send(.withFirstDataBlock(invokeID: id, attribute: clock, accessSelection: nil, block: DataBlockSA(lastBlock: false, blockNumber: 1, rawData: [0x09, 0x0C])))
        #expect(try send(.withDataBlock(invokeID: id, block: DataBlockSA(lastBlock: true, blockNumber: 2, rawData: [0xFF])))
                == .lastDataBlock(invokeID: id, result: .typeUnmatched, blockNumber: 2))
        #expect(session.isAssociated)
    }
}
