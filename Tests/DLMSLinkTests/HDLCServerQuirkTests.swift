import NIOCore
import Testing
@testable import DLMSLink

/// Server link settings that model meter families: four-byte addresses only, no SNRM
/// parameters, and the inactivity timeout.
@Suite struct HDLCServerQuirkTests {
    static let client = try! HDLCAddress.client(0x10)

    static func frame(to server: HDLCAddress, _ control: HDLCControl, information: ByteBuffer = ByteBuffer()) -> ByteBuffer {
        HDLCFrame(destination: server, source: client, control: control, segmented: false, information: information).encoded
    }

    static func replies(_ actions: [HDLCServerConnection.Action]) throws -> [HDLCFrame] {
        try actions.compactMap { action in
            guard case .send(var bytes) = action else { return nil }
            var decoder = HDLCFrameDecoder()
            return try decoder.decode(buffer: &bytes)
        }
    }

    static func fourByteServer() throws -> HDLCServerConnection {
        HDLCServerConnection(configuration: .init(
            serverAddress: try .server(logical: 1, physical: 17, size: .four),
            limits: HDLCParameters(maximumInformationLengthTransmit: 128, maximumInformationLengthReceive: 128),
            requiredAddressSize: .four, acceptsSNRMParameters: false))
    }

    @Test func fourByteOnlyServerIgnoresShorterAddresses() throws {
        var server = try Self.fourByteServer()
        #expect(server.receive(Self.frame(to: try .server(logical: 1, physical: 17), .setNormalResponseMode(pollFinal: true))).isEmpty)
        let ua = try Self.replies(server.receive(Self.frame(to: try .server(logical: 1, physical: 17, size: .four), .setNormalResponseMode(pollFinal: true))))
        #expect(ua.map(\.control) == [.unnumberedAcknowledge(pollFinal: true)])
        #expect(ua.first?.source.size == .four)
        #expect(server.isConnected)
        #expect(server.parameters.maximumInformationLengthTransmit == 128)
    }

    @Test func snrmWithParametersIsRejectedWhenNotAccepted() throws {
        var server = try Self.fourByteServer()
        let proposal = HDLCParameters(maximumInformationLengthTransmit: 256, maximumInformationLengthReceive: 256).encoded(options: .init())
        let reply = try Self.replies(server.receive(Self.frame(to: try .server(logical: 1, physical: 17, size: .four),
                                                               .setNormalResponseMode(pollFinal: true), information: proposal)))
        #expect(reply.map(\.control) == [.frameReject(pollFinal: true)])
        #expect(!server.isConnected)
    }

    @Test func inactivityTimeoutDisconnectsSilently() throws {
        let address = try HDLCAddress.server(logical: 1, physical: 17)
        var server = HDLCServerConnection(configuration: .init(serverAddress: address))
        _ = server.receive(Self.frame(to: address, .setNormalResponseMode(pollFinal: true)))
        #expect(server.isConnected)
        #expect(server.inactivityTimeout() == [.closed])
        #expect(!server.isConnected)
        #expect(server.inactivityTimeout().isEmpty)
        // The client's next frame finds the server in disconnected mode.
        let reply = try Self.replies(server.receive(Self.frame(to: address, .receiveReady(receiveSequence: 0, pollFinal: true))))
        #expect(reply.map(\.control) == [.disconnectedMode(pollFinal: true)])
    }
}
