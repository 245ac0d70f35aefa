import COSEM
import DLMSCodec
import DLMSLink
import NIOCore

/// Link-layer throughput: `link.hdlc_segmented_1440`, a large segmented profile read. A
/// GET-Response carrying 1,440 load-profile rows (15-minute values for 15 days: clock, two
/// registers and a status per row) is cut into I-frames with 128-byte information fields, as a
/// meter with the default HDLC parameters sends it, and reassembled by `HDLCConnection`.
///
/// The meter's frames are produced once by `HDLCServerConnection`; the timed loop opens a
/// client link (SNRM/UA), sends the GET-Request and feeds the response frames one by one, the
/// way a serial line delivers them, answering nothing (the RRs the client sends are dropped).
/// Each run checks that the delivered APDU has the expected length. A second figure runs the
/// other direction: the same APDU as a segmented request reassembled by `HDLCServerConnection`.
enum LinkBenchmarks {
    static let all: [Benchmark] = [
        Benchmark(name: "link.hdlc_segmented_1440") { try segmented1440() },
    ]

    static let clientAddress = try! HDLCAddress.client(0x10)
    static let serverAddress = try! HDLCAddress.server(logical: 1, physical: 17)

    /// A GET-Response with `count` rows of a 15-minute load profile.
    static func profileResponse(rows count: Int) -> ByteBuffer {
        let start = CosemDateTime(year: 2024, month: 11, day: 1, hour: 0, minute: 0, second: 0, hundredths: 0, dayOfWeek: 5, deviation: -60, clockStatus: [])
        let base = start.unixTime!
        var rows: [DLMSData] = []
        rows.reserveCapacity(count)
        for i in 0..<count {
            let t = CosemDateTime(unixTime: base + Int64(i) * 900, utcOffsetMinutes: 60)
            rows.append(.structure([.octetString(dateTime: t), .uint32(UInt32(1_000_000 + i * 250)), .uint32(UInt32(500_000 + i * 10)), .uint8(0)]))
        }
        return DLMSAPDU.getResponse(.normal(invokeID: InvokeIDAndPriority(rawValue: 0xC1), result: .data(.array(DLMSDataList(rows))))).encoded
    }

    static func sentFrames(_ actions: [HDLCServerConnection.Action]) -> [ByteBuffer] {
        actions.compactMap { if case .send(let bytes) = $0 { bytes } else { nil } }
    }

    static func sentFrames(_ actions: [HDLCConnection.Action]) -> [ByteBuffer] {
        actions.compactMap { if case .send(let bytes) = $0 { bytes } else { nil } }
    }

    static func segmented1440() throws -> [BenchmarkResult] {
        let response = profileResponse(rows: 1_440)
        let request = DLMSAPDU.getRequest(.normal(
            invokeID: InvokeIDAndPriority(rawValue: 0xC1),
            attribute: CosemAttributeDescriptor(classID: .profileGeneric, instance: OBISCode(1, 0, 99, 1, 0, 255), attribute: 2),
            accessSelection: nil)).encoded
        let clientConfiguration = HDLCConnection.Configuration(clientAddress: clientAddress, serverAddress: serverAddress)

        // Record the meter's side once: UA, then the response frames, each released by the client's RR.
        var server = HDLCServerConnection(configuration: .init(serverAddress: serverAddress))
        var recorder = HDLCConnection(configuration: clientConfiguration)
        let snrm = sentFrames(try recorder.connect())[0]
        let ua = sentFrames(server.receive(snrm))[0]
        _ = recorder.receive(ua)
        let requestFrames = sentFrames(try recorder.send(request))
        for frame in requestFrames { _ = server.receive(frame) }
        guard server.isProcessing else { throw BenchmarkFailure("the server did not receive the GET-Request") }
        var responseFrames = sentFrames(try server.respond(response))
        var index = 0
        var recorded: ByteBuffer?
        while index < responseFrames.count {
            let actions = recorder.receive(responseFrames[index])
            index += 1
            for action in actions {
                switch action {
                case .send(let rr): responseFrames += sentFrames(server.receive(rr))
                case .deliver(let apdu): recorded = apdu
                default: break
                }
            }
        }
        guard recorded == response else { throw BenchmarkFailure("the recorded exchange did not deliver the response") }
        let frames = responseFrames
        let apduBytes = response.readableBytes

        let reassemblies = try operationsPerSecond(batch: 20) {
            var link = HDLCConnection(configuration: clientConfiguration)
            _ = try link.connect()
            _ = link.receive(ua)
            _ = try link.send(request)
            var length = 0
            for frame in frames {
                for action in link.receive(frame) {
                    if case .deliver(let apdu) = action { length = apdu.readableBytes }
                }
            }
            guard length == apduBytes else { throw BenchmarkFailure("delivered \(length) bytes, expected \(apduBytes)") }
            return length
        }

        // The other direction: the same bytes as a segmented request into the server connection.
        var requester = HDLCConnection(configuration: clientConfiguration)
        var receiver = HDLCServerConnection(configuration: .init(serverAddress: serverAddress))
        _ = try requester.connect()
        _ = requester.receive(sentFrames(receiver.receive(snrm))[0])
        var bigRequestFrames = sentFrames(try requester.send(response))
        index = 0
        while index < bigRequestFrames.count {
            let actions = receiver.receive(bigRequestFrames[index])
            index += 1
            for frame in sentFrames(actions) { bigRequestFrames += sentFrames(requester.receive(frame)) }
        }
        guard receiver.isProcessing else { throw BenchmarkFailure("the server did not reassemble the segmented request") }
        let serverReassemblies = try operationsPerSecond(batch: 20) {
            var link = HDLCServerConnection(configuration: .init(serverAddress: serverAddress))
            _ = link.receive(snrm)
            var length = 0
            for frame in bigRequestFrames {
                for action in link.receive(frame) {
                    if case .deliver(let apdu) = action { length = apdu.readableBytes }
                }
            }
            guard length == apduBytes else { throw BenchmarkFailure("the server reassembled \(length) bytes, expected \(apduBytes)") }
            return length
        }

        let megabytes = Double(apduBytes) / 1_000_000
        return [
            BenchmarkResult(name: "link.hdlc_segmented_1440.reassemblies", value: reassemblies, unit: "ops/s"),
            BenchmarkResult(name: "link.hdlc_segmented_1440.throughput", value: reassemblies * megabytes, unit: "MB/s"),
            BenchmarkResult(name: "link.hdlc_segmented_1440.server_reassemblies", value: serverReassemblies, unit: "ops/s"),
            BenchmarkResult(name: "link.hdlc_segmented_1440.server_throughput", value: serverReassemblies * megabytes, unit: "MB/s"),
            BenchmarkResult(name: "link.hdlc_segmented_1440.frames", value: Double(frames.count), unit: "frames"),
            BenchmarkResult(name: "link.hdlc_segmented_1440.bytes", value: Double(apduBytes), unit: "bytes"),
        ]
    }
}
