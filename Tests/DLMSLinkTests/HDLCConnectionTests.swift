import COSEM
import NIOCore
import TestSupport
import Testing
@testable import DLMSLink

/// Drives an `HDLCConnection` against a scripted server: the test plays the meter, frame by frame.
private struct ScriptedLink {
    static let client = try! HDLCAddress.client(0x10)
    static let server = try! HDLCAddress.server(logical: 1, physical: 17)
    var connection: HDLCConnection

    init(_ configure: (inout HDLCConnection.Configuration) -> Void = { _ in }) {
        var configuration = HDLCConnection.Configuration(clientAddress: Self.client, serverAddress: Self.server)
        configure(&configuration)
        connection = HDLCConnection(configuration: configuration)
    }

    /// A frame from the meter to the client, encoded.
    static func fromServer(_ control: HDLCControl, _ information: ByteBuffer = ByteBuffer(), segmented: Bool = false) -> ByteBuffer {
        HDLCFrame(destination: client, source: server, control: control, segmented: segmented, information: information).encoded
    }

    /// Connects with a UA carrying `ua` parameters (or none).
    mutating func connect(ua: HDLCParameters? = nil) throws {
        _ = try connection.connect()
        let info = ua.map { $0.encoded() } ?? ByteBuffer()
        let actions = connection.receive(Self.fromServer(.unnumberedAcknowledge(pollFinal: true), info))
        #expect(actions.contains { if case .connected = $0 { true } else { false } })
    }
}

private func sent(_ actions: [HDLCConnection.Action]) -> [HDLCFrame] {
    actions.compactMap {
        guard case .send(var bytes) = $0 else { return nil }
        return try? HDLCFrame.decode(from: &bytes)
    }
}

private func delivered(_ actions: [HDLCConnection.Action]) -> [ByteBuffer] {
    actions.compactMap { if case .deliver(let apdu) = $0 { apdu } else { nil } }
}

private func closedError(_ actions: [HDLCConnection.Action]) -> DLMSLinkError?? {
    for action in actions { if case .closed(let error) = action { return .some(error) } }
    return .none
}

private func responseInformation(_ apdu: ByteBuffer) -> ByteBuffer {
    var info = ByteBuffer()
    HDLCLLCHeader.response.encode(into: &info)
    info.writeImmutableBuffer(apdu)
    return info
}

private func pattern(_ count: Int, seed: UInt8 = 0) -> ByteBuffer {
    ByteBuffer(dlmsBytes: (0..<count).map { UInt8(truncatingIfNeeded: $0) &+ seed })
}

@Suite struct HDLCConnectionTests {
    @Test func snrmWithoutParametersMatchesGolden() throws {
        var link = ScriptedLink { $0.sendsParameters = false }
        let actions = try link.connection.connect()
        #expect(actions == [.send(hexBuffer("7EA00802232193BD647E")), .startTimer(.seconds(3))])
    }

    @Test func connectNegotiatesFromUA() throws {
        var link = ScriptedLink {
            $0.proposedParameters = HDLCParameters(maximumInformationLengthTransmit: 512, maximumInformationLengthReceive: 512)
        }
        let snrm = sent(try link.connection.connect())
        #expect(snrm.count == 1 && snrm[0].control == .setNormalResponseMode(pollFinal: true))
        var info = snrm[0].information
        #expect(try HDLCParameters.decode(from: &info).maximumInformationLengthTransmit == 512)
        // The dlms-cosem UA: the server transmits and receives 154-byte fields.
        let actions = link.connection.receive(hexBuffer(goldenFrames[6].hex))
        let expected = HDLCParameters(maximumInformationLengthTransmit: 154, maximumInformationLengthReceive: 154)
        #expect(actions.contains(.connected(expected)))
        #expect(actions.contains(.startTimer(.seconds(120))))
        #expect(link.connection.parameters == expected)
        #expect(link.connection.isReady)
    }

    @Test func aarqAndAAREMatchGoldenFrames() throws {
        var link = ScriptedLink()
        try link.connect()
        let aarq = hexBuffer("601DA109060760857405080101BE10040E01000000065F1F0400001E1DFFFF")
        let actions = try link.connection.send(aarq)
        #expect(actions.first == .send(hexBuffer(goldenFrames[8].hex)))
        let response = link.connection.receive(hexBuffer(goldenFrames[9].hex))
        #expect(delivered(response).map(\.dlmsHex) == ["6129A109060760857405080101A203020100A305A103020100BE10040E0800065F1F0400001E1D04C80007"])
        #expect(link.connection.isReady)
    }

    @Test func segmentationInBothDirectionsWith128ByteFields() throws {
        var link = ScriptedLink()
        try link.connect(ua: .defaults)
        let request = pattern(300)
        // Out: 3 + 300 bytes → 128 + 128 + 47, each segment acknowledged by RR.
        var frames = sent(try link.connection.send(request))
        #expect(frames.count == 1)
        #expect(frames[0].control == .information(sendSequence: 0, receiveSequence: 0, pollFinal: true) && frames[0].segmented)
        #expect(frames[0].information.readableBytes == 128)
        var outgoing = frames[0].information
        for (nr, last) in [(UInt8(1), false), (2, true)] {
            frames = sent(link.connection.receive(ScriptedLink.fromServer(.receiveReady(receiveSequence: nr, pollFinal: true))))
            #expect(frames.count == 1)
            #expect(frames[0].control == .information(sendSequence: nr, receiveSequence: 0, pollFinal: true))
            #expect(frames[0].segmented == !last)
            outgoing.writeImmutableBuffer(frames[0].information)
        }
        #expect(outgoing.readableBytes == 303)
        #expect(try HDLCLLCHeader.decode(from: &outgoing) == .command)
        #expect(outgoing == request)

        // In: a 330-byte response in three segments; each is acknowledged with RR.
        let response = pattern(330, seed: 7)
        var message = responseInformation(response)
        var ns: UInt8 = 0
        var result: [ByteBuffer] = []
        while message.readableBytes > 0 {
            let chunk = message.readSlice(length: min(128, message.readableBytes))!
            let more = message.readableBytes > 0
            let actions = link.connection.receive(ScriptedLink.fromServer(
                .information(sendSequence: ns, receiveSequence: 3, pollFinal: true), chunk, segmented: more))
            ns += 1
            if more {
                #expect(sent(actions).map(\.control) == [.receiveReady(receiveSequence: ns, pollFinal: true)])
            }
            result += delivered(actions)
        }
        #expect(result == [response])
        #expect(link.connection.isReady)
    }

    /// A large segmented profile read: 1,440 rows (40,328 bytes) in 316 I-frames of 128 bytes.
    /// Every segment but the last is acknowledged with RR in turn, and the response is delivered
    /// once, byte for byte, however the frames are cut into the buffers the transport delivers.
    @Test(arguments: Chunking.allCases)
    func reassemblesA1440RowProfileFrom128ByteSegments(chunking: Chunking) throws {
        var link = ScriptedLink()
        try link.connect(ua: .defaults)
        _ = try link.connection.send(hexBuffer("C001C100070100630100FF0200"))
        let apdu = profileResponseAPDU(rows: 1_440)
        #expect(apdu.readableBytes == 40_328)
        let frames = segmentedFrames(responseInformation(apdu), size: 128,
                                     destination: ScriptedLink.client, source: ScriptedLink.server, receiveSequence: 1)
        #expect(frames.count == 316)
        let stream = frames.flatMap { Array($0.readableBytesView) }
        var acknowledgements: [HDLCControl] = []
        var result: [ByteBuffer] = []
        for chunk in chunking.chunks(of: stream) {
            let actions = link.connection.receive(ByteBuffer(dlmsBytes: chunk))
            acknowledgements += sent(actions).map(\.control)
            result += delivered(actions)
        }
        #expect(acknowledgements == (1..<frames.count).map { .receiveReady(receiveSequence: UInt8($0 & 7), pollFinal: true) })
        #expect(result == [apdu])
        #expect(link.connection.isReady)

        // The link is ready for the next request, whose response arrives the same way.
        _ = try link.connection.send(hexBuffer("C001C200070100630100FF0200"))
        var second: [ByteBuffer] = []
        // N(S) continues from where the first response left off (316 mod 8 = 4).
        for frame in segmentedFrames(responseInformation(pattern(1_000, seed: 3)), size: 128, destination: ScriptedLink.client,
                                     source: ScriptedLink.server, sendSequence: 4, receiveSequence: 2) {
            second += delivered(link.connection.receive(frame))
        }
        #expect(second == [pattern(1_000, seed: 3)])
    }

    @Test func lostResponseIsRetransmittedThenSucceeds() throws {
        var link = ScriptedLink()
        try link.connect()
        let first = try link.connection.send(hexBuffer("C001C100080000010000FF0200"))
        let again = link.connection.timerFired()
        #expect(again == [first[0], .startTimer(.seconds(3))])
        let actions = link.connection.receive(ScriptedLink.fromServer(
            .information(sendSequence: 0, receiveSequence: 1, pollFinal: true), responseInformation(hexBuffer("C401C100090C07E80B1AFF102D0000000000"))))
        #expect(delivered(actions).map(\.dlmsHex) == ["C401C100090C07E80B1AFF102D0000000000"])
    }

    @Test func silentMeterFailsWithTimeoutAfterRetries() throws {
        var link = ScriptedLink { $0.maximumRetries = 2 }
        _ = try link.connection.connect()
        #expect(sent(link.connection.timerFired()).count == 1)
        #expect(sent(link.connection.timerFired()).count == 1)
        let last = link.connection.timerFired()
        #expect(closedError(last) == .some(.timeout("")))
        #expect(closedError(last)??.isRetriable == true)
        #expect(link.connection.timerFired().isEmpty)
    }

    @Test func lostAcknowledgementMakesServerRepeatSegment() throws {
        var link = ScriptedLink()
        try link.connect()
        _ = try link.connection.send(hexBuffer("C001C100070100630100FF0200"))
        let seg0 = ScriptedLink.fromServer(.information(sendSequence: 0, receiveSequence: 1, pollFinal: true),
                                           responseInformation(pattern(50)), segmented: true)
        _ = link.connection.receive(seg0)
        // Our RR got lost: the meter repeats the segment; we acknowledge again without duplicating it.
        let repeated = link.connection.receive(seg0)
        #expect(sent(repeated).map(\.control) == [.receiveReady(receiveSequence: 1, pollFinal: true)])
        // Timeout while waiting for the next segment: the RR is sent again (a poll).
        #expect(sent(link.connection.timerFired()).map(\.control) == [.receiveReady(receiveSequence: 1, pollFinal: true)])
        let last = link.connection.receive(ScriptedLink.fromServer(
            .information(sendSequence: 1, receiveSequence: 1, pollFinal: true), pattern(10, seed: 50)))
        var expected = pattern(50)
        expected.writeImmutableBuffer(pattern(10, seed: 50))
        #expect(delivered(last) == [expected])
    }

    @Test(arguments: [(UInt8(1), UInt8(1)), (0, 0), (0, 2)])
    func wrongSequenceNumbersFail(_ ns: UInt8, _ nr: UInt8) throws {
        var link = ScriptedLink()
        try link.connect()
        _ = try link.connection.send(hexBuffer("C001C100080000010000FF0200"))
        let actions = link.connection.receive(ScriptedLink.fromServer(
            .information(sendSequence: ns, receiveSequence: nr, pollFinal: true), responseInformation(hexBuffer("C401C10101"))))
        #expect(closedError(actions) == .some(.sequenceError("")))
        #expect(sent(actions).map(\.control) == [.disconnect(pollFinal: true)])
        #expect(delivered(actions).isEmpty)
        #expect(throws: DLMSLinkError.invalidState("")) { _ = try link.connection.send(ByteBuffer()) }
    }

    @Test(arguments: Chunking.allCases)
    func garbageBetweenFrames(_ chunking: Chunking) throws {
        var link = ScriptedLink()
        _ = try link.connection.connect()
        let noise: [UInt8] = [0x00, 0xFF, 0x41, 0x7E, 0xA0, 0x13, 0x55]
        var bytes = noise + Array(ScriptedLink.fromServer(.unnumberedAcknowledge(pollFinal: true)).readableBytesView) + noise
        var actions: [HDLCConnection.Action] = []
        for chunk in chunking.chunks(of: bytes) { actions += link.connection.receive(ByteBuffer(dlmsBytes: chunk)) }
        #expect(actions.contains(.connected(.defaults)))
        _ = try link.connection.send(hexBuffer("C001C100080000010000FF0200"))
        bytes = noise + Array(ScriptedLink.fromServer(.information(sendSequence: 0, receiveSequence: 1, pollFinal: true),
                                                       responseInformation(hexBuffer("C401C10101"))).readableBytesView)
        actions = []
        for chunk in chunking.chunks(of: bytes) { actions += link.connection.receive(ByteBuffer(dlmsBytes: chunk)) }
        #expect(delivered(actions).map(\.dlmsHex) == ["C401C10101"])
        #expect(link.connection.discardedBytes > 0)
    }

    @Test func framesForOtherAddressesAreIgnored() throws {
        var link = ScriptedLink()
        _ = try link.connection.connect()
        let other = HDLCFrame(destination: ScriptedLink.client, source: try .server(logical: 1, physical: 18),
                              control: .unnumberedAcknowledge(pollFinal: true)).encoded
        #expect(link.connection.receive(other).isEmpty)
        #expect(!link.connection.isReady)
    }

    @Test func disconnectedModeDuringConnect() throws {
        var link = ScriptedLink()
        _ = try link.connection.connect()
        let actions = link.connection.receive(ScriptedLink.fromServer(.disconnectedMode(pollFinal: true)))
        #expect(closedError(actions) == .some(.disconnectedByPeer("")))
    }

    @Test func frameRejectWhileWaiting() throws {
        var link = ScriptedLink()
        try link.connect()
        _ = try link.connection.send(hexBuffer("C001C100080000010000FF0200"))
        let actions = link.connection.receive(ScriptedLink.fromServer(.frameReject(pollFinal: true), hexBuffer("100000")))
        #expect(closedError(actions) == .some(.frameRejected("")))
        #expect(closedError(actions)??.isRetriable == false)
    }

    @Test func orderlyDisconnect() throws {
        var link = ScriptedLink()
        try link.connect()
        let disc = link.connection.disconnect()
        #expect(sent(disc).map(\.control) == [.disconnect(pollFinal: true)])
        let actions = link.connection.receive(ScriptedLink.fromServer(.unnumberedAcknowledge(pollFinal: true)))
        #expect(closedError(actions) == .some(nil))
    }

    @Test func inactivityClosesIdleLink() throws {
        var link = ScriptedLink { $0.inactivityTimeout = .seconds(30) }
        try link.connect()
        let actions = link.connection.timerFired()
        #expect(closedError(actions) == .some(.inactivityTimeout("")))
    }

    @Test func oversizedResponseIsRejected() throws {
        var link = ScriptedLink { $0.maximumMessageLength = 200 }
        try link.connect()
        _ = try link.connection.send(hexBuffer("C001C100070100630100FF0200"))
        var actions: [HDLCConnection.Action] = []
        for ns in UInt8(0)..<2 {
            actions = link.connection.receive(ScriptedLink.fromServer(
                .information(sendSequence: ns, receiveSequence: 1, pollFinal: true), pattern(128), segmented: true))
        }
        #expect(closedError(actions) == .some(.lengthLimitExceeded("")))
    }

    @Test func missingLLCHeaderIsMalformed() throws {
        var link = ScriptedLink()
        try link.connect()
        _ = try link.connection.send(hexBuffer("C001C100080000010000FF0200"))
        let actions = link.connection.receive(ScriptedLink.fromServer(
            .information(sendSequence: 0, receiveSequence: 1, pollFinal: true), hexBuffer("C401C10101")))
        #expect(closedError(actions) == .some(.malformedFrame("")))
    }

    @Test func transportClosedMidExchange() throws {
        var link = ScriptedLink()
        try link.connect()
        _ = try link.connection.send(hexBuffer("C001C100080000010000FF0200"))
        #expect(closedError(link.connection.transportClosed()) == .some(.connectionClosed("")))
    }

    @Test func receiveWindowAcknowledgesOnFinalBitOnly() throws {
        var link = ScriptedLink { $0.proposedParameters = HDLCParameters(windowSizeReceive: 3) }
        try link.connect(ua: HDLCParameters(windowSizeTransmit: 3))
        #expect(link.connection.parameters.windowSizeReceive == 3)
        _ = try link.connection.send(hexBuffer("C001C100070100630100FF0200"))
        var all = responseInformation(pattern(20))
        for ns in UInt8(0)..<3 {
            let chunk = ns == 0 ? responseInformation(pattern(20)) : pattern(20, seed: ns)
            if ns > 0 { all.writeImmutableBuffer(chunk) }
            let actions = link.connection.receive(ScriptedLink.fromServer(
                .information(sendSequence: ns, receiveSequence: 1, pollFinal: ns == 2), chunk, segmented: true))
            #expect(sent(actions).map(\.control) == (ns == 2 ? [.receiveReady(receiveSequence: 3, pollFinal: true)] : []))
        }
        let actions = link.connection.receive(ScriptedLink.fromServer(
            .information(sendSequence: 3, receiveSequence: 1, pollFinal: true), pattern(5, seed: 9)))
        all.writeImmutableBuffer(pattern(5, seed: 9))
        _ = try HDLCLLCHeader.decode(from: &all)
        #expect(delivered(actions) == [all])
    }

    @Test func receiveNotReadyRestartsTheTimerAndDuplicateUAIsIgnored() throws {
        var link = ScriptedLink()
        try link.connect()
        #expect(link.connection.receive(ScriptedLink.fromServer(.unnumberedAcknowledge(pollFinal: true))).isEmpty)
        _ = try link.connection.send(hexBuffer("C001C100080000010000FF0200"))
        let actions = link.connection.receive(ScriptedLink.fromServer(.receiveNotReady(receiveSequence: 1, pollFinal: true)))
        #expect(actions == [.startTimer(.seconds(3))])
        #expect(throws: DLMSLinkError.invalidState("")) { _ = try link.connection.send(ByteBuffer()) }
        #expect(throws: DLMSLinkError.invalidState("")) { _ = try link.connection.connect() }
    }
}
