import COSEM
import DLMSCodec
import NIOCore

#if canImport(Glibc)
import Glibc
#endif


/// Codec throughput: `codec.decode_lp96` (a GET-Response carrying a 96-row load profile:
/// clock, two registers and a status per row) and `codec.decode_get_request` (GET-Request-Normal).
enum CodecBenchmarks {
    static let all: [Benchmark] = [
        Benchmark(name: "codec.decode_lp96") { try lp96() },
        Benchmark(name: "codec.decode_get_request") { try getRequest() },
    ]

    /// The 96-row load profile response, encoded once.
    static func lp96Bytes() -> ByteBuffer {
        let start = CosemDateTime(year: 2024, month: 11, day: 26, hour: 0, minute: 0, second: 0, hundredths: 0, dayOfWeek: 2, deviation: -60, clockStatus: [])
        let base = start.unixTime!
        var rows: [DLMSData] = []
        for i in 0..<96 {
            let t = CosemDateTime(unixTime: base + Int64(i) * 900, utcOffsetMinutes: 60)
            rows.append(.structure([.octetString(dateTime: t), .uint32(UInt32(1_000_000 + i * 250)), .uint32(UInt32(500_000 + i * 10)), .uint8(0)]))
        }
        let apdu = DLMSAPDU.getResponse(.normal(invokeID: InvokeIDAndPriority(rawValue: 0xC1), result: .data(.array(rows))))
        return apdu.encoded
    }

    static func getRequestBytes() -> ByteBuffer {
        DLMSAPDU.getRequest(.normal(invokeID: InvokeIDAndPriority(rawValue: 0xC1),
                                    attribute: CosemAttributeDescriptor(classID: .register, instance: .activeEnergyImport, attribute: 2),
                                    accessSelection: nil)).encoded
    }

    static func lp96() throws -> [BenchmarkResult] {
        let bytes = lp96Bytes()
        let apdu = try DLMSAPDU(exactly: bytes)
        let decode = try operationsPerSecond(batch: 100) {
            var copy = bytes
            let decoded = try DLMSAPDU.decode(from: &copy)
            if case .getResponse(.normal(_, .data(.array(let rows)))) = decoded { return rows.count }
            return 0
        }
        var out = ByteBufferAllocator().buffer(capacity: bytes.readableBytes)
        let encode = operationsPerSecond(batch: 100) {
            out.clear()
            apdu.encode(into: &out)
            return out.readableBytes
        }
        let decodeCPU = try operationsPerCPUSecond(batch: 100) {
            var copy = bytes
            let decoded = try DLMSAPDU.decode(from: &copy)
            if case .getResponse(.normal(_, .data(.array(let rows)))) = decoded { return rows.count }
            return 0
        }
        var results: [BenchmarkResult] = [
            BenchmarkResult(name: "codec.decode_lp96.decode", value: decode, unit: "ops/s"),
            BenchmarkResult(name: "codec.decode_lp96.decode_per_cpu_second", value: decodeCPU, unit: "ops/cpu-s"),
            BenchmarkResult(name: "codec.decode_lp96.encode", value: encode, unit: "ops/s"),
            BenchmarkResult(name: "codec.decode_lp96.bytes", value: Double(bytes.readableBytes), unit: "bytes"),
        ]
        results += try allocationFigures(name: "codec.decode_lp96.decode") {
            var copy = bytes
            return try DLMSAPDU.decode(from: &copy)
        }
        return results
    }

    static func getRequest() throws -> [BenchmarkResult] {
        let bytes = getRequestBytes()
        let apdu = try DLMSAPDU(exactly: bytes)
        let decode = try operationsPerSecond(batch: 10_000) {
            var copy = bytes
            let decoded = try DLMSAPDU.decode(from: &copy)
            if case .getRequest(.normal(_, let attribute, _)) = decoded { return Int(attribute.attribute) }
            return 0
        }
        var out = ByteBufferAllocator().buffer(capacity: 64)
        let encode = operationsPerSecond(batch: 10_000) {
            out.clear()
            apdu.encode(into: &out)
            return out.readableBytes
        }
        let decodeCPU = try operationsPerCPUSecond(batch: 10_000) {
            var copy = bytes
            let decoded = try DLMSAPDU.decode(from: &copy)
            if case .getRequest(.normal(_, let attribute, _)) = decoded { return Int(attribute.attribute) }
            return 0
        }
        var results: [BenchmarkResult] = [
            BenchmarkResult(name: "codec.decode_get_request.decode", value: decode, unit: "ops/s"),
            BenchmarkResult(name: "codec.decode_get_request.decode_per_cpu_second", value: decodeCPU, unit: "ops/cpu-s"),
            BenchmarkResult(name: "codec.decode_get_request.encode", value: encode, unit: "ops/s"),
        ]
        results += try allocationFigures(name: "codec.decode_get_request.decode") {
            var copy = bytes
            return try DLMSAPDU.decode(from: &copy)
        }
        return results
    }

    /// Like `operationsPerSecond`, but divides by the CPU time of the running thread, so the
    /// figure means "per second of one core" even when other processes share the machine.
    static func operationsPerCPUSecond(duration: Duration = .seconds(2), batch: Int, _ body: () throws -> Int) rethrows -> Double {
        #if canImport(Glibc)
        func cpuNow() -> Double {
            var ts = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
            return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
        }
        var checksum = 0
        for _ in 0..<batch { checksum &+= try body() }
        let clock = ContinuousClock()
        let wallStart = clock.now
        let start = cpuNow()
        var operations = 0
        while clock.now - wallStart < duration {
            for _ in 0..<batch { checksum &+= try body() }
            operations += batch
        }
        let cpu = cpuNow() - start
        blackHole(checksum)
        return Double(operations) / cpu
        #else
        return try operationsPerSecond(duration: duration, batch: batch, body)
        #endif
    }

    /// Heap allocations per decode. Counting malloc calls needs an interposer this package
    /// cannot link, so this counts the allocations the decoded value owns: one buffer per
    /// non-empty array, structure or compact array (octet strings are zero-copy slices of the
    /// input, scalars are inline). The decoder allocates nothing else on its success path.
    static func allocationFigures(name: String, _ body: () throws -> DLMSAPDU) rethrows -> [BenchmarkResult] {
        func count(_ d: DLMSData) -> Int {
            switch d {
            case .array(let e), .structure(let e): (e.isEmpty ? 0 : 1) + e.reduce(0) { $0 + count($1) }
            case .compactArray(let c): (c.elements.isEmpty ? 0 : 1) + c.elements.reduce(0) { $0 + count($1) }
            case .bitString(let b): b.bytes.isEmpty ? 0 : 1
            default: 0
            }
        }
        let apdu = try body()
        var allocations = 0
        switch apdu {
        case .getResponse(.normal(_, .data(let d))): allocations = count(d)
        case .getRequest(.normal(_, _, let access)): allocations = access.map { count($0.parameters) } ?? 0
        default: break
        }
        return [BenchmarkResult(name: "\(name).allocations", value: Double(allocations), unit: "allocs/op")]
    }
}
