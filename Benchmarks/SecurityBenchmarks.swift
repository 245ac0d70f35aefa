import COSEM
import DLMSClient
import DLMSCodec
import DLMSSecurity
import Foundation
import NIOCore

/// Ciphering cost per GET exchange: `security.gcm_get_roundtrip` (GET-Request for a register and
/// its GET-Response) and `security.gcm_lp96_roundtrip` (the same request and the 96-row load
/// profile GET-Response of `codec.decode_lp96`). Each figure is one exchange as both ends see it:
/// the client encodes the request, the server decodes it, the server encodes the response, the
/// client decodes it. `.clear` does only that; `.ciphered` adds glo-ciphering with suite 0
/// (authenticated encryption) on both APDUs and the unprotecting, tag check and replay check on
/// the receiving side. Per second of one core's CPU time, so other load on the machine does not
/// count, and the best of three runs, since other engineers' builds share the machine.
/// `.overhead_percent` = clear / ciphered − 1.
enum SecurityBenchmarks {
    static let all: [Benchmark] = [
        Benchmark(name: "security.gcm_get_roundtrip") { try roundTrip(name: "security.gcm_get_roundtrip", response: registerResponse()) },
        Benchmark(name: "security.gcm_lp96_roundtrip") { try roundTrip(name: "security.gcm_lp96_roundtrip", response: CodecBenchmarks.lp96Bytes()) },
        Benchmark(name: "security.session_get_roundtrip") { try await sessionRoundTrips() },
    ]

    /// GET round trips over an open association with meter-sim in its own process (wrapper/TCP,
    /// loopback, no added latency: the worst case for the ciphering's share): a register read
    /// again and again, in the clear (client 17, LLS) and ciphered (client 1, HLS-GMAC,
    /// authenticated and encrypted). Round trips per second of wall time, per second of the
    /// client's CPU and per second of meter-sim's CPU (its process CPU clock read around each
    /// round), so the cost of ciphering shows on each side; `.overhead_percent` compares the best
    /// rounds' wall rates, which is what a collector sees, `.overhead_percent_median` the median
    /// rounds' (steadier: the best of a dozen rounds swings a few percent from run to run).
    /// `.latency_1ms`: the same against a meter that answers after 1 ms (a fast LAN meter).
    static func sessionRoundTrips() async throws -> [BenchmarkResult] {
        let simulators = try await ConcurrentSessionBenchmark.startSimulators([(20_000, 1)], latency: nil, arguments: ["--example-keys"])
            + ConcurrentSessionBenchmark.startSimulators([(20_001, 1)], latency: "1ms", arguments: ["--example-keys"])
        defer { ConcurrentSessionBenchmark.stopSimulators(simulators) }
        return try await roundTrips(port: 20_000, meter: simulators[0].processIdentifier, label: "security.session_get_roundtrip", gets: 500, rounds: 12)
            + roundTrips(port: 20_001, meter: simulators[1].processIdentifier, label: "security.session_get_roundtrip.latency_1ms", gets: 100, rounds: 4)
    }

    static func roundTrips(port: Int, meter: pid_t, label: String, gets: Int, rounds: Int) async throws -> [BenchmarkResult] {
        let endpoint = TransportEndpoint.tcp(host: "127.0.0.1", port: port)
        let clear = MeterConnection(endpoint: endpoint, clientSAP: 17, authentication: .low(password: Array("12345678".utf8)))
        let ciphered = MeterConnection(
            endpoint: endpoint, clientSAP: 1, authentication: .high(.gmac, secret: nil),
            security: MeterConnection.Security(systemTitle: try SystemTitle(hex: "4853455300000001"),
                                               blockCipherKey: try DLMSKey(hex: "000102030405060708090A0B0C0D0E0F"),
                                               authenticationKey: try DLMSKey(hex: "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")))
        let register = CosemAttributeDescriptor(classID: .register, instance: OBISCode(1, 0, 1, 8, 0, 255), attribute: 2)
        // Both associations stay open (two connections to the one meter) and take turns in
        // rounds, so load from other processes hits both alike.
        let (plainRounds, cipheredRounds) = try await DLMSClient.withAssociation(to: clear) { plainClient in
            try await DLMSClient.withAssociation(to: ciphered) { cipheredClient in
                func round(_ client: DLMSClient) async throws -> Rates {
                    let cpuStart = SessionBenchmarks.processCPUSeconds()
                    let meterStart = processCPUSeconds(meter)
                    let start = ContinuousClock.now
                    for _ in 0..<gets { _ = try await client.get(register) }
                    let wall = ContinuousClock.now - start
                    let cpu = SessionBenchmarks.processCPUSeconds() - cpuStart
                    let meterCPU = processCPUSeconds(meter) - meterStart
                    return Rates(wall: Double(gets) / (Double(wall.components.seconds) + Double(wall.components.attoseconds) / 1e18),
                                 cpu: Double(gets) / cpu, meterCPU: Double(gets) / meterCPU)
                }
                _ = try await round(plainClient)   // warm-up
                _ = try await round(cipheredClient)
                var plainRounds: [Rates] = [], cipheredRounds: [Rates] = []
                for _ in 0..<rounds {
                    plainRounds.append(try await round(plainClient))
                    cipheredRounds.append(try await round(cipheredClient))
                }
                return (plainRounds, cipheredRounds)
            }
        }
        let plain = Rates.best(of: plainRounds), secured = Rates.best(of: cipheredRounds)
        let plainMedian = Rates.median(of: plainRounds.map(\.wall)), securedMedian = Rates.median(of: cipheredRounds.map(\.wall))
        return [
            BenchmarkResult(name: "\(label).clear", value: plain.wall, unit: "round-trips/s"),
            BenchmarkResult(name: "\(label).ciphered", value: secured.wall, unit: "round-trips/s"),
            BenchmarkResult(name: "\(label).overhead_percent", value: (plain.wall / secured.wall - 1) * 100, unit: "%"),
            BenchmarkResult(name: "\(label).overhead_percent_median", value: (plainMedian / securedMedian - 1) * 100, unit: "%"),
            BenchmarkResult(name: "\(label).clear_client_cpu", value: plain.cpu, unit: "round-trips/cpu-s"),
            BenchmarkResult(name: "\(label).ciphered_client_cpu", value: secured.cpu, unit: "round-trips/cpu-s"),
            BenchmarkResult(name: "\(label).clear_meter_cpu", value: plain.meterCPU, unit: "round-trips/cpu-s"),
            BenchmarkResult(name: "\(label).ciphered_meter_cpu", value: secured.meterCPU, unit: "round-trips/cpu-s"),
        ]
    }

    /// Round trips per second of wall time, of the client's CPU and of the meter's CPU.
    struct Rates {
        var wall = 0.0, cpu = 0.0, meterCPU = 0.0

        /// Each figure's best round.
        static func best(of rounds: [Rates]) -> Rates {
            Rates(wall: rounds.map(\.wall).max() ?? 0, cpu: rounds.map(\.cpu).max() ?? 0, meterCPU: rounds.map(\.meterCPU).max() ?? 0)
        }

        static func median(of values: [Double]) -> Double { values.sorted()[values.count / 2] }
    }

    /// The CPU time another process has used (its process CPU-time clock), in seconds.
    static func processCPUSeconds(_ pid: pid_t) -> Double {
        var clock = clockid_t()
        var time = timespec()
        guard clock_getcpuclockid(pid, &clock) == 0, clock_gettime(clock, &time) == 0 else { return .nan }
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    static func registerResponse() -> ByteBuffer {
        DLMSAPDU.getResponse(.normal(invokeID: InvokeIDAndPriority(rawValue: 0xC1), result: .data(.uint32(12_345_678)))).encoded
    }

    static func ciphers() throws -> (client: DLMSCipher, server: DLMSCipher) {
        let ek = try DLMSKey(hex: "000102030405060708090A0B0C0D0E0F")
        let ak = try DLMSKey(hex: "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
        let clientTitle = try SystemTitle(hex: "4D4D4D0000000001")
        let serverTitle = try SystemTitle(hex: "4D4D4D0000BC614E")
        return (DLMSCipher(systemTitle: clientTitle, peerSystemTitle: serverTitle, blockCipherKey: ek, authenticationKey: ak),
                DLMSCipher(systemTitle: serverTitle, peerSystemTitle: clientTitle, blockCipherKey: ek, authenticationKey: ak))
    }

    static func roundTrip(name: String, response responseBytes: ByteBuffer) throws -> [BenchmarkResult] {
        let request = try DLMSAPDU(exactly: CodecBenchmarks.getRequestBytes())
        let response = try DLMSAPDU(exactly: responseBytes)
        let (client, server) = try ciphers()
        var out = ByteBufferAllocator().buffer(capacity: responseBytes.readableBytes + 64)
        let batch = responseBytes.readableBytes > 1000 ? 100 : 2_000

        func encodeDecode(_ apdu: DLMSAPDU) throws -> Int {
            out.clear()
            apdu.encode(into: &out)
            return try checksum(DLMSAPDU.decode(from: &out))
        }
        let clear = try bestOfThree(batch: batch) {
            try encodeDecode(request) &+ encodeDecode(response)
        }

        var clientCounter = InvocationCounter(startingAt: 1)
        var serverCounter = InvocationCounter(startingAt: 1)
        var clientGuard = InvocationCounterGuard()
        var serverGuard = InvocationCounterGuard()
        func protectedTransfer(_ apdu: DLMSAPDU, from sender: DLMSCipher, _ counter: inout InvocationCounter,
                               to receiver: DLMSCipher, _ receiverGuard: inout InvocationCounterGuard) throws -> Int {
            out.clear()
            apdu.encode(into: &out)
            let ciphered = try sender.protect(out.readBytes(length: out.readableBytes)!, kind: .global, invocationCounter: counter.next())
            out.clear()
            ciphered.encode(into: &out)
            let plain = try receiver.unprotect(bytes: out.readBytes(length: out.readableBytes)!, counterGuard: &receiverGuard)
            var buffer = ByteBuffer(bytes: plain)
            return try checksum(DLMSAPDU.decode(from: &buffer))
        }
        let ciphered = try bestOfThree(batch: batch) {
            try protectedTransfer(request, from: client, &clientCounter, to: server, &serverGuard)
                &+ protectedTransfer(response, from: server, &serverCounter, to: client, &clientGuard)
        }
        // The ciphering alone: protect one APDU (bytes in, CipheredAPDU out) and unprotect it.
        let plainResponse = Array(responseBytes.readableBytesView)
        let sample = try server.protect(plainResponse, kind: .global, invocationCounter: 1)
        let protectOnly = try bestOfThree(batch: batch) {
            try server.protect(plainResponse, kind: .global, invocationCounter: 1).payload.count
        }
        let unprotectOnly = try bestOfThree(batch: batch) {
            try client.unprotect(sample).count
        }
        // The same exchanges with the CPU caches flushed before each, as between two network reads.
        let coldClear = try coldMicroseconds { try encodeDecode(request) &+ encodeDecode(response) }
        let coldCiphered = try coldMicroseconds {
            try protectedTransfer(request, from: client, &clientCounter, to: server, &serverGuard)
                &+ protectedTransfer(response, from: server, &serverCounter, to: client, &clientGuard)
        }
        return [
            BenchmarkResult(name: "\(name).protect_response", value: protectOnly, unit: "ops/cpu-s"),
            BenchmarkResult(name: "\(name).unprotect_response", value: unprotectOnly, unit: "ops/cpu-s"),
            BenchmarkResult(name: "\(name).clear", value: clear, unit: "ops/cpu-s"),
            BenchmarkResult(name: "\(name).ciphered", value: ciphered, unit: "ops/cpu-s"),
            BenchmarkResult(name: "\(name).overhead_percent", value: (clear / ciphered - 1) * 100, unit: "%"),
            BenchmarkResult(name: "\(name).added_microseconds", value: (1 / ciphered - 1 / clear) * 1e6, unit: "us/op"),
            BenchmarkResult(name: "\(name).cold_added_microseconds", value: coldCiphered - coldClear, unit: "us/op"),
            BenchmarkResult(name: "\(name).response_bytes", value: Double(responseBytes.readableBytes), unit: "bytes"),
        ]
    }

    /// The median time of `body` with the CPU caches flushed before each run (8 MiB written), in
    /// microseconds: roughly what an exchange costs in a session, where the process slept in
    /// `epoll_wait` while the kernel and the other process ran.
    private static func coldMicroseconds(_ body: () throws -> Int) rethrows -> Double {
        var times: [Double] = []
        var checksum = 0
        for _ in 0..<400 {
            coldCacheFlush()
            let start = ContinuousClock.now
            checksum &+= try body()
            let elapsed = ContinuousClock.now - start
            times.append(Double(elapsed.components.seconds) * 1e6 + Double(elapsed.components.attoseconds) / 1e12)
        }
        blackHole(checksum)
        return times.sorted()[times.count / 2]
    }

    nonisolated(unsafe) private static var flushBuffer = [UInt64](repeating: 1, count: (8 << 20) / 8)

    private static func coldCacheFlush() {
        flushBuffer.withUnsafeMutableBufferPointer { words in
            for i in stride(from: 0, to: words.count, by: 8) { words[i] &+= 1 }
        }
    }

    private static func bestOfThree(batch: Int, _ body: () throws -> Int) rethrows -> Double {
        var best = 0.0
        for _ in 0..<3 { best = max(best, try CodecBenchmarks.operationsPerCPUSecond(duration: .seconds(1), batch: batch, body)) }
        return best
    }

    private static func checksum(_ apdu: DLMSAPDU) -> Int {
        switch apdu {
        case .getRequest(.normal(_, let attribute, _)): Int(attribute.attribute)
        case .getResponse(.normal(_, .data(.array(let rows)))): rows.count
        case .getResponse(.normal(_, .data)): 1
        default: 0
        }
    }
}
