import AllocationCounter
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
    static func lp96Bytes() -> ByteBuffer { lp96APDU().encoded }

    /// The 96-row load profile response as a meter builds it.
    static func lp96APDU() -> DLMSAPDU {
        let start = CosemDateTime(year: 2024, month: 11, day: 26, hour: 0, minute: 0, second: 0, hundredths: 0, dayOfWeek: 2, deviation: -60, clockStatus: [])
        let base = start.unixTime!
        var rows: [DLMSData] = []
        for i in 0..<96 {
            let t = CosemDateTime(unixTime: base + Int64(i) * 900, utcOffsetMinutes: 60)
            rows.append(.structure([.octetString(dateTime: t), .uint32(UInt32(1_000_000 + i * 250)), .uint32(UInt32(500_000 + i * 10)), .uint8(0)]))
        }
        return DLMSAPDU.getResponse(.normal(invokeID: InvokeIDAndPriority(rawValue: 0xC1), result: .data(.array(DLMSDataList(rows)))))
    }

    static func getRequestBytes() -> ByteBuffer {
        DLMSAPDU.getRequest(.normal(invokeID: InvokeIDAndPriority(rawValue: 0xC1),
                                    attribute: CosemAttributeDescriptor(classID: .register, instance: .activeEnergyImport, attribute: 2),
                                    accessSelection: nil)).encoded
    }

    static func lp96() throws -> [BenchmarkResult] {
        let built = lp96APDU()
        let bytes = built.encoded
        let decoded = try DLMSAPDU(exactly: bytes)
        let decode = try operationsPerSecond(batch: 100) {
            var copy = bytes
            let decoded = try DLMSAPDU.decode(from: &copy)
            if case .getResponse(.normal(_, .data(.array(let rows)))) = decoded { return rows.count }
            return 0
        }
        var out = ByteBufferAllocator().buffer(capacity: bytes.readableBytes)
        let encode = operationsPerSecond(batch: 100) {
            out.clear()
            built.encode(into: &out)
            return out.readableBytes
        }
        let encodeDecoded = operationsPerSecond(batch: 100) {
            out.clear()
            decoded.encode(into: &out)
            return out.readableBytes
        }
        let decodeCPU = try operationsPerCPUSecond(batch: 100) {
            var copy = bytes
            let decoded = try DLMSAPDU.decode(from: &copy)
            if case .getResponse(.normal(_, .data(.array(let rows)))) = decoded { return rows.count }
            return 0
        }
        // What a reader does next: rows against the capture objects, each row's time and values.
        let captureObjects = [
            CaptureObjectDefinition(classID: .clock, logicalName: OBISCode(0, 0, 1, 0, 0, 255), attributeIndex: 2),
            CaptureObjectDefinition(classID: .register, logicalName: OBISCode(1, 0, 1, 8, 0, 255), attributeIndex: 2),
            CaptureObjectDefinition(classID: .register, logicalName: OBISCode(1, 0, 2, 8, 0, 255), attributeIndex: 2),
            CaptureObjectDefinition(classID: .data, logicalName: OBISCode(0, 0, 96, 10, 1, 255), attributeIndex: 2),
        ]
        let decodeAndRead = try operationsPerCPUSecond(batch: 100) {
            var copy = bytes
            guard case .getResponse(.normal(_, .data(let buffer))) = try DLMSAPDU.decode(from: &copy) else { return 0 }
            var checksum = 0
            for row in try ProfileGeneric.rows(buffer: buffer, captureObjects: captureObjects) {
                checksum &+= Int(row.captureTime?.time.minute ?? 0)
                for value in row.values.dropFirst() { checksum &+= Int(value.integerValue ?? 0) }
            }
            return checksum
        }
        var results: [BenchmarkResult] = [
            BenchmarkResult(name: "codec.decode_lp96.decode", value: decode, unit: "ops/s"),
            BenchmarkResult(name: "codec.decode_lp96.decode_per_cpu_second", value: decodeCPU, unit: "ops/cpu-s"),
            BenchmarkResult(name: "codec.decode_lp96.decode_and_read_rows_per_cpu_second", value: decodeAndRead, unit: "ops/cpu-s"),
            BenchmarkResult(name: "codec.decode_lp96.encode", value: encode, unit: "ops/s"),
            BenchmarkResult(name: "codec.decode_lp96.encode_decoded", value: encodeDecoded, unit: "ops/s"),
            BenchmarkResult(name: "codec.decode_lp96.bytes", value: Double(bytes.readableBytes), unit: "bytes"),
        ]
        results += try allocationFigures(name: "codec.decode_lp96.decode") {
            var copy = bytes
            return try DLMSAPDU.decode(from: &copy)
        }
        results += allocationFigures(name: "codec.decode_lp96.encode") {
            out.clear()
            built.encode(into: &out)
            return out.readableBytes
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

    /// Heap allocations per operation, measured: hes-bench links `AllocationCounter`, which counts
    /// every malloc/calloc/realloc/aligned allocation of the calling thread. The figure includes
    /// freeing the result (nothing is allocated there) and is the mean over 1,000 operations.
    static func allocationFigures<Result>(name: String, _ body: () throws -> Result) rethrows -> [BenchmarkResult] {
        blackHole(try body())
        let runs = 1_000
        let before = hes_thread_allocation_count()
        for _ in 0..<runs { blackHole(try body()) }
        let allocations = Double(hes_thread_allocation_count() - before) / Double(runs)
        return [BenchmarkResult(name: "\(name).allocations", value: allocations, unit: "allocs/op")]
    }
}
