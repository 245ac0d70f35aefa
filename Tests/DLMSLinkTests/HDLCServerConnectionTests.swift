import COSEM
import NIOCore
import TestSupport
import Testing
@testable import DLMSLink

/// Runs the client `HDLCConnection` against `HDLCServerConnection` in memory; `drop` decides
/// which frames (counted from 0 in each direction) are lost on the way.
private struct Loopback {
    static let clientAddress = try! HDLCAddress.client(0x10)
    static let serverAddress = try! HDLCAddress.server(logical: 1, physical: 17)
    var client: HDLCConnection
    var server: HDLCServerConnection
    var serverRequests: [ByteBuffer] = []
    var clientDeliveries: [ByteBuffer] = []
    var clientClosed: DLMSLinkError?? = .none
    var serverClosed = false
    var framesToServer = 0
    var framesToClient = 0
    var dropToServer: Set<Int> = []
    var dropToClient: Set<Int> = []
    var clientTimerRunning = false

    init(info: Int = 128, serverLimits: HDLCParameters? = nil) {
        let proposal = HDLCParameters(maximumInformationLengthTransmit: info, maximumInformationLengthReceive: info)
        client = HDLCConnection(configuration: .init(clientAddress: Self.clientAddress, serverAddress: Self.serverAddress,
                                                     proposedParameters: proposal))
        server = HDLCServerConnection(configuration: serverLimits.map { .init(serverAddress: Self.serverAddress, limits: $0) }
                                      ?? .init(serverAddress: Self.serverAddress))
    }

    /// Carries the client's actions out until both sides are quiet; a lost frame is recovered
    /// by firing the client's timer.
    mutating func run(_ actions: [HDLCConnection.Action]) {
        var pending = actions
        var rounds = 0
        while rounds < 1_000 {
            rounds += 1
            var toServer: [ByteBuffer] = []
            for action in pending {
                switch action {
                case .send(let bytes):
                    defer { framesToServer += 1 }
                    if !dropToServer.contains(framesToServer) { toServer.append(bytes) }
                case .deliver(let apdu): clientDeliveries.append(apdu)
                case .startTimer: clientTimerRunning = true
                case .cancelTimer: clientTimerRunning = false
                case .connected: break
                case .closed(let error): clientClosed = .some(error)
                }
            }
            pending = []
            var toClient: [ByteBuffer] = []
            for bytes in toServer {
                for action in server.receive(bytes) {
                    switch action {
                    case .send(let reply):
                        defer { framesToClient += 1 }
                        if !dropToClient.contains(framesToClient) { toClient.append(reply) }
                    case .deliver(let request): serverRequests.append(request)
                    case .closed: serverClosed = true
                    }
                }
            }
            for bytes in toClient { pending += client.receive(bytes) }
            if pending.isEmpty {
                // Nothing moves: a frame was lost (or the exchange is over).
                guard !client.isReady, !server.isProcessing, clientTimerRunning, clientClosed == .none else { return }
                pending = client.timerFired()
            }
        }
    }

    mutating func serverResponds(_ apdu: ByteBuffer) throws {
        var toClient: [ByteBuffer] = []
        for action in try server.respond(apdu) {
            if case .send(let bytes) = action {
                defer { framesToClient += 1 }
                if !dropToClient.contains(framesToClient) { toClient.append(bytes) }
            }
        }
        var pending: [HDLCConnection.Action] = []
        for bytes in toClient { pending += client.receive(bytes) }
        run(pending)
    }
}

private func pattern(_ count: Int, seed: UInt8 = 0) -> ByteBuffer {
    ByteBuffer(dlmsBytes: (0..<count).map { UInt8(truncatingIfNeeded: $0) &+ seed })
}

private func sentFrames(_ actions: [HDLCServerConnection.Action]) -> [HDLCFrame] {
    actions.compactMap {
        guard case .send(var bytes) = $0 else { return nil }
        return try? HDLCFrame.decode(from: &bytes)
    }
}

private func sentHex(_ actions: [HDLCServerConnection.Action]) -> [String] {
    actions.compactMap { if case .send(let bytes) = $0 { bytes.dlmsHex } else { nil } }
}

@Suite struct HDLCServerConnectionTests {
    @Test func clientConnectsRequestsAndDisconnects() throws {
        var link = Loopback()
        link.run(try link.client.connect())
        #expect(link.client.isReady)
        #expect(link.server.isConnected)
        #expect(link.server.parameters == .defaults)

        link.run(try link.client.send(pattern(20)))
        #expect(link.serverRequests == [pattern(20)])
        try link.serverResponds(pattern(30, seed: 5))
        #expect(link.clientDeliveries == [pattern(30, seed: 5)])

        link.run(link.client.disconnect())
        #expect(link.clientClosed == .some(nil))
        #expect(link.serverClosed)
        #expect(!link.server.isConnected)
    }

    @Test(arguments: [1, 127, 128, 300, 1_000, 4_000])
    func segmentationBothWaysAt128ByteFields(length: Int) throws {
        var link = Loopback(info: 128)
        link.run(try link.client.connect())
        for round in 0..<3 {
            link.run(try link.client.send(pattern(length, seed: UInt8(round))))
            #expect(link.serverRequests.last == pattern(length, seed: UInt8(round)))
            try link.serverResponds(pattern(length + 7, seed: UInt8(round + 9)))
            #expect(link.clientDeliveries.last == pattern(length + 7, seed: UInt8(round + 9)))
        }
        #expect(link.serverRequests.count == 3)
        #expect(link.clientDeliveries.count == 3)
    }

    /// A 1,440-row profile (40,328 bytes) as a segmented request of 316 I-frames of 128 bytes:
    /// each segment but the last is acknowledged with RR in turn, and the request is delivered
    /// once, byte for byte, however the frames are cut into the buffers the transport delivers.
    @Test(arguments: Chunking.allCases)
    func reassemblesA1440RowRequestFrom128ByteSegments(chunking: Chunking) throws {
        var server = HDLCServerConnection(configuration: .init(serverAddress: Loopback.serverAddress))
        _ = server.receive(HDLCFrame(destination: Loopback.serverAddress, source: Loopback.clientAddress,
                                     control: .setNormalResponseMode(pollFinal: true)).encoded)
        #expect(server.isConnected)
        let apdu = profileResponseAPDU(rows: 1_440)
        var message = ByteBuffer()
        HDLCLLCHeader.command.encode(into: &message)
        message.writeImmutableBuffer(apdu)
        let frames = segmentedFrames(message, size: 128, destination: Loopback.serverAddress,
                                     source: Loopback.clientAddress, receiveSequence: 0)
        #expect(frames.count == 316)
        var acknowledgements: [HDLCControl] = []
        var requests: [ByteBuffer] = []
        for chunk in chunking.chunks(of: frames.flatMap { Array($0.readableBytesView) }) {
            for action in server.receive(ByteBuffer(dlmsBytes: chunk)) {
                switch action {
                case .send(var bytes): acknowledgements.append(try HDLCFrame.decode(from: &bytes).control)
                case .deliver(let request): requests.append(request)
                case .closed: Issue.record("the server closed the link")
                }
            }
        }
        #expect(acknowledgements == (1..<frames.count).map { .receiveReady(receiveSequence: UInt8($0 & 7), pollFinal: true) })
        #expect(requests == [apdu])
        #expect(server.isProcessing)
    }

    /// A segmented request whose message has no LLC header is refused with FRMR as a whole:
    /// none of its segments stays to prefix the next request, which is delivered as sent.
    @Test func aMessageWithoutLLCHeaderLeavesNothingBehind() throws {
        var server = HDLCServerConnection(configuration: .init(serverAddress: Loopback.serverAddress))
        _ = server.receive(HDLCFrame(destination: Loopback.serverAddress, source: Loopback.clientAddress,
                                     control: .setNormalResponseMode(pollFinal: true)).encoded)
        func feed(_ frames: [ByteBuffer]) throws -> (controls: [HDLCControl], requests: [ByteBuffer]) {
            var controls: [HDLCControl] = []
            var requests: [ByteBuffer] = []
            for frame in frames {
                for action in server.receive(frame) {
                    switch action {
                    case .send(var bytes): controls.append(try HDLCFrame.decode(from: &bytes).control)
                    case .deliver(let request): requests.append(request)
                    case .closed: Issue.record("the server closed the link")
                    }
                }
            }
            return (controls, requests)
        }
        let garbage = ByteBuffer(dlmsBytes: [UInt8](repeating: 0x42, count: 200))
        let bad = try feed(segmentedFrames(garbage, size: 128, destination: Loopback.serverAddress, source: Loopback.clientAddress, receiveSequence: 0))
        #expect(bad.requests.isEmpty)
        guard case .frameReject = try #require(bad.controls.last) else {
            Issue.record("no FRMR for a message without LLC header: \(bad.controls)")
            return
        }
        var message = ByteBuffer()
        HDLCLLCHeader.command.encode(into: &message)
        let apdu = ByteBuffer(dlmsBytes: [0xC0, 0x01, 0xC1, 0x00, 0x08, 0x00, 0x00, 0x01, 0x00, 0x00, 0xFF, 0x02, 0x00])
        message.writeImmutableBuffer(apdu)
        let good = try feed(segmentedFrames(message, size: 128, destination: Loopback.serverAddress, source: Loopback.clientAddress,
                                            sendSequence: 2, receiveSequence: 0))
        #expect(good.requests == [apdu], "the next request is delivered alone")
    }

    /// The same profile both ways between the two state machines, twice: the client's segmented
    /// request reassembled by the server, the server's segmented response by the client.
    @Test func carriesA1440RowProfileBothWaysAt128ByteFields() throws {
        var link = Loopback(info: 128)
        link.run(try link.client.connect())
        let profile = profileResponseAPDU(rows: 1_440)
        for round in 1...2 {
            link.run(try link.client.send(profile))
            #expect(link.serverRequests.count == round && link.serverRequests.last == profile)
            try link.serverResponds(profile)
            #expect(link.clientDeliveries.count == round && link.clientDeliveries.last == profile)
        }
        // SNRM, then per round 316 request segments and 315 RRs for the response's segments.
        #expect(link.framesToServer == 1 + 2 * (316 + 315))
        #expect(link.clientClosed == .none)
    }

    @Test(arguments: Array(0..<8))
    func lostFramesAreRetransmitted(lost: Int) throws {
        // Frame `lost` in each direction is lost once; the client's timer recovers both.
        var link = Loopback(info: 128)
        link.dropToServer = [lost]
        link.dropToClient = [lost]
        link.run(try link.client.connect())
        for round in 0..<2 {
            if !link.client.isReady { link.run(link.client.timerFired()) }
            link.run(try link.client.send(pattern(300, seed: UInt8(round))))
            if link.server.isProcessing { try link.serverResponds(pattern(400, seed: UInt8(round))) }
            #expect(link.clientDeliveries.last == pattern(400, seed: UInt8(round)))
        }
        #expect(link.serverRequests.count == 2)
        #expect(link.clientClosed == .none)
    }

    @Test func negotiatesTheSmallerOfProposalAndLimits() throws {
        // The Gurux SNRM proposes 512-byte fields; a server limited to 154 answers exactly the
        // dlms-cosem UA (server 1/17, client 0x10).
        var server = HDLCServerConnection(configuration: .init(
            serverAddress: try .server(logical: 1, physical: 17),
            limits: HDLCParameters(maximumInformationLengthTransmit: 154, maximumInformationLengthReceive: 154)))
        let snrm = HDLCFrame(destination: try .server(logical: 1, physical: 17), source: try .client(0x10),
                             control: .setNormalResponseMode(pollFinal: true),
                             information: HDLCParameters(maximumInformationLengthTransmit: 512,
                                                         maximumInformationLengthReceive: 512).encoded()).encoded
        #expect(sentHex(server.receive(snrm)) == ["7EA01F21022373E6C781801205019A06019A070400000001080400000001CCA27E"])
        #expect(server.parameters.maximumInformationLengthTransmit == 154)
    }

    @Test func snrmWithoutParametersGivesDefaults() throws {
        var server = HDLCServerConnection(configuration: .init(serverAddress: try .server(logical: 1)))
        let frames = sentFrames(server.receive(hexBuffer("7EA0070321930F017E")))  // Gurux SNRM, no parameters
        #expect(frames.count == 1)
        #expect(frames.first?.control == .unnumberedAcknowledge(pollFinal: true))
        var info = frames.first!.information
        #expect(try HDLCParameters.decode(from: &info) == .defaults)
        #expect(server.parameters == .defaults)
    }

    @Test func answersTheGoldenAARQWithTheGoldenAARE() throws {
        var server = HDLCServerConnection(configuration: .init(serverAddress: try .server(logical: 1, physical: 17)))
        _ = server.receive(HDLCFrame(destination: try .server(logical: 1, physical: 17), source: try .client(0x10),
                                     control: .setNormalResponseMode(pollFinal: true)).encoded)
        let actions = server.receive(hexBuffer("7EA02C02232110AF9FE6E600601DA109060760857405080101BE10040E01000000065F1F0400001E1DFFFFC5E47E"))
        #expect(actions == [.deliver(hexBuffer("601DA109060760857405080101BE10040E01000000065F1F0400001E1DFFFF"))])
        let aare = hexBuffer("6129A109060760857405080101A203020100A305A103020100BE10040E0800065F1F0400001E1D04C80007")
        #expect(sentHex(try server.respond(aare))
                == ["7EA0382102233034E7E6E7006129A109060760857405080101A203020100A305A103020100BE10040E0800065F1F0400001E1D04C80007B86A7E"])
    }

    @Test func discWhenDisconnectedGetsDMAndWhenConnectedUA() throws {
        var server = HDLCServerConnection(configuration: .init(serverAddress: try .server(logical: 1)))
        let disc = hexBuffer("7EA00703215303C77E")  // Gurux DISC
        var frames = sentFrames(server.receive(disc))
        #expect(frames.map(\.control) == [.disconnectedMode(pollFinal: true)])
        _ = server.receive(hexBuffer("7EA0070321930F017E"))
        frames = sentFrames(server.receive(disc))
        #expect(frames.map(\.control) == [.unnumberedAcknowledge(pollFinal: true)])
        #expect(!server.isConnected)
    }

    @Test func ignoresOtherAddressesAndGarbage() throws {
        var server = HDLCServerConnection(configuration: .init(serverAddress: try .server(logical: 1, physical: 17)))
        // An SNRM for server 1 without physical address, and one for 1/18: neither is ours.
        #expect(server.receive(hexBuffer("7EA0070321930F017E")).isEmpty)
        let other = HDLCFrame(destination: try .server(logical: 1, physical: 18), source: try .client(0x10),
                              control: .setNormalResponseMode(pollFinal: true)).encoded
        #expect(server.receive(other).isEmpty)
        var stream = ByteBuffer(dlmsBytes: [0x00, 0xFF, 0x7E, 0x12, 0x34])
        stream.writeImmutableBuffer(hexBuffer("7EA00802232193BD647E"))  // Gurux SNRM to 1/17
        stream.writeBytes([0x55, 0xAA])
        let frames = sentFrames(server.receive(stream))
        #expect(frames.map(\.control) == [.unnumberedAcknowledge(pollFinal: true)])
        #expect(server.discardedBytes > 0)
    }

    @Test func outOfSequenceAndUnsupportedFramesGetFRMR() throws {
        let serverAddress = try HDLCAddress.server(logical: 1)
        var server = HDLCServerConnection(configuration: .init(serverAddress: serverAddress))
        _ = server.receive(hexBuffer("7EA0070321930F017E"))
        func frame(_ control: HDLCControl, _ info: ByteBuffer = ByteBuffer()) -> ByteBuffer {
            HDLCFrame(destination: serverAddress, source: try! .client(0x10), control: control, information: info).encoded
        }
        var frames = sentFrames(server.receive(frame(.information(sendSequence: 3, receiveSequence: 0, pollFinal: true), pattern(5))))
        #expect(frames.map(\.control) == [.frameReject(pollFinal: true)])
        frames = sentFrames(server.receive(frame(.unnumberedInformation(pollFinal: true), pattern(5))))
        #expect(frames.map(\.control) == [.frameReject(pollFinal: true)])
        // An I-frame while disconnected gets DM.
        var fresh = HDLCServerConnection(configuration: .init(serverAddress: serverAddress))
        frames = sentFrames(fresh.receive(frame(.information(sendSequence: 0, receiveSequence: 0, pollFinal: true), pattern(5))))
        #expect(frames.map(\.control) == [.disconnectedMode(pollFinal: true)])
    }
}
