import COSEM
import DLMSClient
import DLMSCodec
import Foundation
import NIOCore
import Testing
import TestSupport

/// The client against a scripted wrapper/TCP meter: answers captured from Gurux's server where
/// one exists, and every way a meter misbehaves.
@Suite("DLMS client against scripted meters", .serialized, .timeLimit(.minutes(2)))
struct DLMSClientFaultTests {
    // Gurux 1.0.203 server answers (Tests/DLMSCodecTests/GuruxVectors.swift).
    static let guruxAARE = "6129A109060760857405080101A203020100A305A103020100BE10040E0800065F1F0400401E5D04000007"
    static let guruxAARERejectedPassword = "6129A109060760857405080101A203020101A305A10302010DBE10040E0800065F1F0400401E5DFFFF0007"
    static let guruxClockResponse = "C401C100090C07E80B1AFF102D0000000000"
    static let guruxRLRE = "630E800100BE0F040E0800065F1F0400401E5D04000007"

    /// Puts the request's invoke id into a captured response (byte 2 of GET/SET/ACTION APDUs).
    static func answering(_ request: ByteBuffer, with response: String) -> ByteBuffer {
        var answer = hexBuffer(response)
        if let id = request.getInteger(at: request.readerIndex + 2, as: UInt8.self) {
            answer.setInteger(id, at: answer.readerIndex + 2)
        }
        return answer
    }

    static func connection(port: Int, step: Duration = .seconds(5), password: String? = nil) -> MeterConnection {
        MeterConnection(endpoint: .tcp(host: "127.0.0.1", port: port), clientSAP: password == nil ? 16 : 17,
                        authentication: password.map { .low(password: Array($0.utf8)) } ?? .none,
                        timeouts: .init(connect: .seconds(2), step: step, retransmission: .milliseconds(200), retries: 2, release: .milliseconds(300)))
    }

    /// A well-behaved meter for the association, clock and release; `other` scripts the rest.
    static func meter(_ other: @escaping @Sendable (ByteBuffer, Int) -> ScriptedMeterServer.Reply = { _, _ in .silence }) -> ScriptedMeterServer.Script {
        { request, index in
            switch request.getInteger(at: request.readerIndex, as: UInt8.self) {
            case 0x60: return .apdu(hexBuffer(guruxAARE))
            case 0x62: return .apdu(hexBuffer(guruxRLRE))
            default: return other(request, index)
            }
        }
    }

    @Test("reads the clock from Gurux's captured answers and releases")
    func readsClock() async throws {
        try await ScriptedMeterServer.withServer(script: Self.meter { request, _ in .apdu(Self.answering(request, with: Self.guruxClockResponse)) }) { server in
            let time = try await DLMSClient.withAssociation(to: Self.connection(port: server.port)) { client in
                #expect(client.association.serverMaxReceivePDUSize == 0x0400)
                #expect(client.association.conformance.contains(.get))
                return try await client.readClock()
            }
            #expect(time.iso8601 == "2024-11-26T16:45:00Z")
            #expect(server.requestCount == 3) // AARQ, GET, RLRQ
        }
    }

    @Test("a rejected password is a typed, non-retriable association error")
    func rejectedPassword() async throws {
        try await ScriptedMeterServer.withServer(script: { _, _ in .apdu(hexBuffer(Self.guruxAARERejectedPassword)) }) { server in
            let error = await #expect(throws: DLMSClientError.self) {
                try await DLMSClient.withAssociation(to: Self.connection(port: server.port, password: "wrong")) { _ in }
            }
            #expect(error?.code == .associationRejected)
            #expect(error?.step == .associate)
            #expect(error?.isRetriable == false)
            #expect(error?.reason.contains("authentication-failure") == true)
        }
    }

    @Test("a silent meter times out within the step deadline, retriably")
    func silentMeter() async throws {
        try await ScriptedMeterServer.withServer(script: Self.meter { _, _ in .silence }) { server in
            let started = ContinuousClock.now
            let error = await #expect(throws: DLMSClientError.self) {
                try await DLMSClient.withAssociation(to: Self.connection(port: server.port, step: .milliseconds(500))) { client in
                    try await client.readClock()
                }
            }
            let elapsed = ContinuousClock.now - started
            #expect(error?.code == .timeout)
            #expect(error?.step == .get)
            #expect(error?.isRetriable == true)
            // 500 ms deadline + 300 ms release; the bound only has to tell a deadline that holds from
            // one that does not (the session would then hang), on a CI machine with a load of 11.
            #expect(elapsed < .seconds(10), "deadline 500 ms + release 300 ms, took \(elapsed)")
        }
    }

    @Test("garbage instead of a wrapper frame fails the step, no crash")
    func garbage() async throws {
        try await ScriptedMeterServer.withServer(script: Self.meter { _, _ in .raw(hexBuffer("DEADBEEF00112233445566778899")) }) { server in
            let error = await #expect(throws: DLMSClientError.self) {
                try await DLMSClient.withAssociation(to: Self.connection(port: server.port)) { client in try await client.readClock() }
            }
            #expect(error?.code == .linkFailed)
            #expect(error?.step == .get)
        }
    }

    @Test("a garbage APDU in a valid wrapper frame is a malformed response")
    func garbageAPDU() async throws {
        try await ScriptedMeterServer.withServer(script: Self.meter { request, _ in .apdu(Self.answering(request, with: "C401C100090C07E80B")) }) { server in
            let error = await #expect(throws: DLMSClientError.self) {
                try await DLMSClient.withAssociation(to: Self.connection(port: server.port)) { client in try await client.readClock() }
            }
            #expect(error?.code == .malformedResponse)
        }
    }

    @Test("a meter that resets mid-block gives connectionClosed in the GET step")
    func resetMidBlock() async throws {
        // First block of a long answer, then the connection drops when the next block is asked for.
        try await ScriptedMeterServer.withServer(script: Self.meter { request, _ in
            if request.getInteger(at: request.readerIndex + 1, as: UInt8.self) == 1 {
                var block = ByteBuffer()
                GetResponse.withDataBlock(invokeID: InvokeIDAndPriority(rawValue: request.getInteger(at: request.readerIndex + 2)!),
                                          block: DataBlockG(lastBlock: false, blockNumber: 1, result: .rawData(DLMSBytes([0x01, 0x02, 0x12, 0x00])))).encode(into: &block)
                return .apdu(block)
            }
            return .close
        }) { server in
            let error = await #expect(throws: DLMSClientError.self) {
                try await DLMSClient.withAssociation(to: Self.connection(port: server.port)) { client in
                    try await client.get(ProfileGeneric.descriptor(OBISCode(1, 0, 99, 1, 0, 255), .buffer))
                }
            }
            #expect(error?.code == .connectionClosed)
            #expect(error?.step == .get)
            #expect(error?.isRetriable == true)
        }
    }

    @Test("blocks are reassembled into one value")
    func blockTransfer() async throws {
        var value = ByteBuffer()
        DLMSData.array(DLMSDataList((0..<40).map { DLMSData.uint32(UInt32($0)) })).encode(into: &value)
        let whole = DLMSBytes(value.readableBytesView)
        try await ScriptedMeterServer.withServer(script: Self.meter { request, _ in
            let id = InvokeIDAndPriority(rawValue: request.getInteger(at: request.readerIndex + 2)!)
            let number: UInt32 = request.getInteger(at: request.readerIndex + 1, as: UInt8.self) == 1 ? 1 : request.getInteger(at: request.readerIndex + 3)! + 1
            let size = 70
            let start = Int(number - 1) * size
            let slice = Array(whole.bytes[start..<min(start + size, whole.count)])
            var answer = ByteBuffer()
            GetResponse.withDataBlock(invokeID: id, block: DataBlockG(lastBlock: start + size >= whole.count, blockNumber: number, result: .rawData(DLMSBytes(slice)))).encode(into: &answer)
            return .apdu(answer)
        }) { server in
            let data = try await DLMSClient.withAssociation(to: Self.connection(port: server.port)) { client in
                try await client.get(ProfileGeneric.descriptor(OBISCode(1, 0, 99, 1, 0, 255), .buffer))
            }
            #expect(data == .array(DLMSDataList((0..<40).map { DLMSData.uint32(UInt32($0)) })))
            #expect(server.requestCount == 5) // AARQ, GET, 2 × GET-next (202 bytes in 70-byte blocks), RLRQ
        }
    }

    /// A GET answered with data blocks cut from `value` (or, without one, endless empty blocks).
    static func blocks(of value: [UInt8]?, size: Int) -> @Sendable (ByteBuffer, Int) -> ScriptedMeterServer.Reply {
        { request, _ in
            let id = InvokeIDAndPriority(rawValue: request.getInteger(at: request.readerIndex + 2)!)
            let number: UInt32 = request.getInteger(at: request.readerIndex + 1, as: UInt8.self) == 1 ? 1 : request.getInteger(at: request.readerIndex + 3)! + 1
            var answer = ByteBuffer()
            if let value {
                let start = Int(number - 1) * size
                GetResponse.withDataBlock(invokeID: id, block: DataBlockG(lastBlock: start + size >= value.count, blockNumber: number,
                                                                          result: .rawData(DLMSBytes(value[start..<min(start + size, value.count)])))).encode(into: &answer)
            } else {
                GetResponse.withDataBlock(invokeID: id, block: DataBlockG(lastBlock: false, blockNumber: number, result: .rawData([]))).encode(into: &answer)
            }
            return .apdu(answer)
        }
    }

    @Test("endless empty data blocks, each in time for the step: a retriable timeout at the request deadline")
    func endlessEmptyBlocks() async throws {
        try await ScriptedMeterServer.withServer(script: Self.meter(Self.blocks(of: nil, size: 0))) { server in
            var connection = Self.connection(port: server.port, step: .seconds(2))
            connection.timeouts.request = .seconds(2)
            let started = ContinuousClock.now
            let error = await #expect(throws: DLMSClientError.self) {
                try await DLMSClient.withAssociation(to: connection) { client in
                    try await client.get(CosemAttributeDescriptor(classID: .data, instance: OBISCode(0, 0, 96, 1, 0, 255), attribute: 2))
                }
            }
            let elapsed = ContinuousClock.now - started
            #expect(error?.code == .timeout)
            #expect(error?.isRetriable == true)
            #expect(error?.reason.contains("did not end within") == true, "\(error?.reason ?? "")")
            #expect(server.requestCount > 10, "the meter kept answering")
            #expect(elapsed < .seconds(10), "2 s request deadline + 300 ms release, took \(elapsed)")
        }
    }

    @Test("a legal 16 MB register value of 16 million nulls in blocks: responseTooLarge, not retriable, memory bounded")
    func amplifiedValue() async throws {
        let value = DLMSAssociationTests.amplifiedValue()
        let peakBefore = DLMSAssociationTests.peakResidentMB()
        try await ScriptedMeterServer.withServer(script: Self.meter(Self.blocks(of: value, size: 60_000))) { server in
            let error = await #expect(throws: DLMSClientError.self) {
                try await DLMSClient.withAssociation(to: Self.connection(port: server.port, step: .seconds(10))) { client in
                    try await client.get(CosemAttributeDescriptor(classID: .data, instance: OBISCode(0, 0, 96, 1, 0, 255), attribute: 2))
                }
            }
            #expect(error?.code == .responseTooLarge)
            #expect(error?.isRetriable == false)
            // AARQ, GET, a GET-next for each further block (every one was read), RLRQ.
            #expect(server.requestCount == 1 + (value.count + 59_999) / 60_000 + 1, "\(server.requestCount)")
        }
        if let before = peakBefore, let after = DLMSAssociationTests.peakResidentMB() {
            #expect(after - before < 300, "peak resident memory grew \(after - before) MB")
        }
    }

    @Test("a slow answer inside the deadline succeeds; one outside it times out")
    func slowMeter() async throws {
        try await ScriptedMeterServer.withServer(script: Self.meter { request, index in
            .delayed(.milliseconds(index == 1 ? 200 : 1500), Self.answering(request, with: Self.guruxClockResponse))
        }) { server in
            let error = await #expect(throws: DLMSClientError.self) {
                try await DLMSClient.withAssociation(to: Self.connection(port: server.port, step: .milliseconds(800))) { client in
                    _ = try await client.readClock()   // 200 ms: fine
                    _ = try await client.readClock()   // 1.5 s: too slow
                }
            }
            #expect(error?.code == .timeout)
        }
    }

    @Test("an answer with another invoke id is dropped, the right one is taken")
    func staleAnswer() async throws {
        try await ScriptedMeterServer.withServer(script: Self.meter { request, _ in
            var stale = Self.answering(request, with: Self.guruxClockResponse)
            stale.setInteger(UInt8(0xC0 | 0x0F), at: stale.readerIndex + 2)
            var frames = ByteBuffer()
            for apdu in [stale, Self.answering(request, with: Self.guruxClockResponse)] {
                frames.writeInteger(UInt16(1)); frames.writeInteger(UInt16(1)); frames.writeInteger(UInt16(16))
                frames.writeInteger(UInt16(apdu.readableBytes)); frames.writeImmutableBuffer(apdu)
            }
            return .raw(frames)
        }) { server in
            let time = try await DLMSClient.withAssociation(to: Self.connection(port: server.port)) { client in try await client.readClock() }
            #expect(time.iso8601 == "2024-11-26T16:45:00Z")
        }
    }

    @Test("a refused attribute is a value in the error, not a crash")
    func dataAccessResult() async throws {
        try await ScriptedMeterServer.withServer(script: Self.meter { request, _ in .apdu(Self.answering(request, with: "C401C10104")) }) { server in
            let error = await #expect(throws: DLMSClientError.self) {
                try await DLMSClient.withAssociation(to: Self.connection(port: server.port)) { client in try await client.readClock() }
            }
            #expect(error?.code == .dataAccessFailed)
            #expect(error?.dataAccessResult == .objectUndefined)
            #expect(error?.isRetriable == false)
        }
    }

    @Test("nobody listening is a retriable connect failure")
    func connectRefused() async throws {
        let port = try freeLoopbackPort()
        let error = await #expect(throws: DLMSClientError.self) {
            try await DLMSClient.withAssociation(to: Self.connection(port: port)) { _ in }
        }
        #expect(error?.code == .connectFailed)
        #expect(error?.step == .connect)
        #expect(error?.isRetriable == true)
    }
}

@Suite("DLMS client over UDP", .serialized, .timeLimit(.minutes(1)))
struct DLMSClientUDPTests {
    @Test("lost request datagrams are sent again until answered")
    func packetLoss() async throws {
        // Requests 0 (AARQ) and 2 (first GET) are lost; every other one is answered.
        try await ScriptedUDPMeterServer.withServer(script: { request, index in
            guard index != 0, index != 2 else { return .silence }
            return DLMSClientFaultTests.meter { request, _ in .apdu(DLMSClientFaultTests.answering(request, with: DLMSClientFaultTests.guruxClockResponse)) }(request, index)
        }) { server in
            let connection = MeterConnection(endpoint: .udp(host: "127.0.0.1", port: server.port),
                                             timeouts: .init(connect: .seconds(1), step: .seconds(15), retransmission: .milliseconds(300), retries: 3, release: .milliseconds(300)))
            let times = try await DLMSClient.withAssociation(to: connection) { client in
                [try await client.readClock(), try await client.readClock()]
            }
            #expect(times.allSatisfy { $0.iso8601 == "2024-11-26T16:45:00Z" })
            // AARQ ×2, GET ×2, GET, RLRQ; a loaded machine may answer a copy after the next was sent
            // (the client then takes one answer and drops the other by its invoke id).
            #expect(server.requestCount >= 6)
        }
    }

    @Test("a UDP meter that never answers fails after the retries, within the deadline")
    func silent() async throws {
        try await ScriptedUDPMeterServer.withServer(script: { _, _ in .silence }) { server in
            let connection = MeterConnection(endpoint: .udp(host: "127.0.0.1", port: server.port),
                                             timeouts: .init(connect: .seconds(1), step: .seconds(3), retransmission: .milliseconds(100), retries: 2, release: .milliseconds(200)))
            let error = await #expect(throws: DLMSClientError.self) {
                try await DLMSClient.withAssociation(to: connection) { _ in }
            }
            #expect(error?.code == .timeout)
            #expect(error?.step == .associate)
            // The in-process server may count the last datagrams late on a loaded machine.
            let counted = try await eventually(timeout: .seconds(10)) { server.requestCount >= 3 }
            #expect(counted, "\(server.requestCount)")
            #expect(server.requestCount == 3)
        }
    }
}

@Suite("DLMS client over HDLC/TCP faults", .serialized, .timeLimit(.minutes(1)))
struct DLMSClientHDLCFaultTests {
    static func connection(port: Int) -> MeterConnection {
        MeterConnection(endpoint: .tcp(host: "127.0.0.1", port: port), framing: .hdlc, serverPhysicalAddress: 17,
                        timeouts: .init(connect: .seconds(1), step: .seconds(1), retransmission: .milliseconds(200), retries: 2, release: .milliseconds(200)))
    }

    @Test("a meter that never answers the SNRM fails within the deadline", arguments: ["silent", "garbage"])
    func noUA(behaviour: String) async throws {
        try await ScriptedMeterServer.withRawServer(respond: { _ in
            behaviour == "silent" ? nil : ByteBuffer(bytes: [0x7E, 0x12, 0x34, 0x56, 0x7E, 0xFF, 0x00, 0x7E])
        }) { server in
            let started = ContinuousClock.now
            let error = await #expect(throws: DLMSClientError.self) {
                try await DLMSClient.withAssociation(to: Self.connection(port: server.port)) { _ in }
            }
            #expect(error?.code == .timeout)
            #expect(error?.step == .linkSetup)
            #expect(ContinuousClock.now - started < .seconds(30), "bounded by the 1 s step deadline (a loaded machine adds seconds of scheduling delay)")
        }
    }
}
