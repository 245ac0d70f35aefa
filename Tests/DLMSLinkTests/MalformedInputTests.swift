import COSEM
import NIOCore
import Testing
@testable import DLMSLink
import TestSupport

/// Deterministic fuzzing: random and mutated inputs must produce values or typed errors, never
/// traps, and every decoder must make progress.
@Suite struct MalformedInputTests {
    static func randomInputs(count: Int, seed: UInt64) -> [[UInt8]] {
        var rng = SeededGenerator(seed: seed)
        var inputs: [[UInt8]] = []
        let seeds = goldenFrames.map { hexBytes($0.hex) }
        for i in 0..<count {
            if i % 2 == 0 {
                inputs.append((0..<Int.random(in: 0...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) })
            } else {
                // A golden frame with a few bytes changed, cut or extended; re-checksummed half the time.
                var bytes = seeds[Int.random(in: 0..<seeds.count, using: &rng)]
                for _ in 0..<Int.random(in: 1...3, using: &rng) {
                    bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
                if Bool.random(using: &rng), bytes.count > 6 {
                    let end = bytes.count - 3
                    let fcs = HDLCChecksum.compute(bytes[1..<end])
                    bytes[end] = UInt8(fcs & 0xFF)
                    bytes[end + 1] = UInt8(fcs >> 8)
                }
                if Bool.random(using: &rng) { bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &rng))) }
                inputs.append(bytes)
            }
        }
        return inputs
    }

    @Test func decodersNeverTrap() {
        for input in Self.randomInputs(count: 3000, seed: 2024) {
            var a = ByteBuffer(dlmsBytes: input)
            _ = try? HDLCFrame.decode(from: &a)
            var b = ByteBuffer(dlmsBytes: input)
            _ = try? HDLCParameters.decode(from: &b)
            var c = ByteBuffer(dlmsBytes: [0x81, 0x80, UInt8(truncatingIfNeeded: input.count)] + input)
            _ = try? HDLCParameters.decode(from: &c)
            _ = try? WrapperFrame.decode(datagram: ByteBuffer(dlmsBytes: input))
            var d = ByteBuffer(dlmsBytes: input)
            _ = try? IEC21Identification.decode(from: &d)
            _ = try? IEC21DataBlock(data: ByteBuffer(dlmsBytes: input)).dataSets()
            var e = ByteBuffer(dlmsBytes: input)
            _ = try? HDLCLLCHeader.decode(from: &e)
        }
    }

    @Test func streamDecodersMakeProgress() {
        let stream = Self.randomInputs(count: 400, seed: 99).flatMap { $0 }
        for chunking in Chunking.allCases {
            _ = decodeStream(HDLCFrameDecoder(), stream, chunking: chunking)
            _ = decodeStream(HDLCFrameDecoder(checksumPolicy: .throw), stream, chunking: chunking)
            _ = decodeStream(WrapperFrameDecoder(maximumAPDULength: 256), stream, chunking: chunking)
            _ = decodeStream(IEC21DataBlockDecoder(maximumBlockLength: 512), stream, chunking: chunking)
        }
    }

    @Test func connectionSurvivesGarbage() throws {
        for (index, input) in Self.randomInputs(count: 300, seed: 7).enumerated() {
            var connection = HDLCConnection(configuration: .init(clientAddress: try .client(0x10), serverAddress: try .server(logical: 1)))
            _ = try connection.connect()
            if index % 3 == 0 {
                _ = connection.receive(HDLCFrame(destination: try .client(0x10), source: try .server(logical: 1),
                                                 control: .unnumberedAcknowledge(pollFinal: true)).encoded)
                if connection.isReady { _ = try connection.send(ByteBuffer(dlmsBytes: [0xC0, 0x01])) }
            }
            _ = connection.receive(ByteBuffer(dlmsBytes: input))
            _ = connection.timerFired()
        }
    }

    @Test func iec21SessionSurvivesGarbage() throws {
        for (index, input) in Self.randomInputs(count: 300, seed: 11).enumerated() {
            var session = IEC21Session(configuration: .init(mode: index % 2 == 0 ? .readout : .hdlc))
            _ = try session.start()
            if index % 3 == 0 { _ = session.receive(ByteBuffer(string: "/ISK5\\2MT382-1000\r\n")) }
            _ = session.receive(ByteBuffer(dlmsBytes: input))
            _ = session.receive(ByteBuffer(dlmsBytes: input.reversed()))
            _ = session.timerFired()
        }
    }
}
