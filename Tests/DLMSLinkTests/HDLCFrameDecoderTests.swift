import COSEM
import NIOCore
import Testing
@testable import DLMSLink

@Suite struct HDLCFrameDecoderTests {
    /// Every golden frame, back to back with their own flags.
    static let stream: [UInt8] = goldenFrames.flatMap { Array(buffer($0.hex).readableBytesView) }
    static let expected: [HDLCFrame] = goldenFrames.map { golden in
        var input = buffer(golden.hex)
        return try! HDLCFrame.decode(from: &input)
    }

    @Test(arguments: Chunking.allCases)
    func goldenStream(_ chunking: Chunking) {
        let (frames, errors, decoder) = decodeStream(HDLCFrameDecoder(), Self.stream, chunking: chunking)
        #expect(errors.isEmpty)
        #expect(frames == Self.expected)
        #expect(decoder.discardedBytes == 0)
        #expect(decoder.checksumErrors == 0)
    }

    @Test(arguments: Chunking.allCases, [UInt64(1), 2, 3])
    func sharedFlagsAndFlagRuns(_ chunking: Chunking, _ seed: UInt64) {
        // Closing flag doubles as the next opening flag; then a run of idle flags.
        var bytes: [UInt8] = [0x7E]
        for golden in goldenFrames {
            bytes += Array(buffer(golden.hex).readableBytesView).dropFirst()
        }
        bytes += [0x7E, 0x7E, 0x7E] + Array(buffer(goldenFrames[0].hex).readableBytesView)
        let (frames, errors, decoder) = decodeStream(HDLCFrameDecoder(), bytes, chunking: chunking, seed: seed)
        #expect(errors.isEmpty)
        #expect(frames == Self.expected + [Self.expected[0]])
        #expect(decoder.discardedBytes == 0)
    }

    @Test(arguments: Chunking.allCases, [UInt64(7), 8, 9])
    func garbageBetweenFrames(_ chunking: Chunking, _ seed: UInt64) {
        var rng = SeededGenerator(seed: seed)
        var bytes: [UInt8] = []
        var garbageCount = 0
        for golden in goldenFrames {
            // Garbage without flags, so every byte of it must be discarded.
            let garbage = (0..<Int.random(in: 0...40, using: &rng)).map { _ in
                var byte = UInt8.random(in: 0...255, using: &rng)
                if byte == 0x7E { byte = 0x55 }
                return byte
            }
            garbageCount += garbage.count
            bytes += garbage + Array(buffer(golden.hex).readableBytesView)
        }
        let (frames, errors, decoder) = decodeStream(HDLCFrameDecoder(), bytes, chunking: chunking, seed: seed)
        #expect(errors.isEmpty)
        #expect(frames == Self.expected)
        #expect(decoder.discardedBytes == garbageCount)
    }

    @Test(arguments: Chunking.allCases)
    func garbageThatLooksLikeFrameStarts(_ chunking: Chunking) {
        // Flags followed by plausible format fields and lengths, a header with a bad HCS, a
        // truncated frame, then good frames: the decoder must not lose the good ones.
        let good = Array(buffer(goldenFrames[8].hex).readableBytesView)
        var bytes: [UInt8] = [0x7E, 0xA0, 0x7E]                        // format byte then flag
        bytes += [0x7E, 0xA8, 0xFF, 0x21, 0x03, 0x10, 0x00, 0x00]        // bad HCS, length 255
        bytes += Array(good.prefix(20))                                 // cut-off frame
        bytes += good
        bytes += [0x01, 0x02, 0x7E, 0xB0, 0x07]                          // wrong format type
        bytes += Array(buffer(goldenFrames[0].hex).readableBytesView)
        let (frames, errors, decoder) = decodeStream(HDLCFrameDecoder(), bytes, chunking: chunking)
        #expect(errors.isEmpty)
        #expect(frames == [Self.expected[8], Self.expected[0]])
        #expect(decoder.discardedBytes > 0)
    }

    @Test(arguments: Chunking.allCases)
    func badFCSIsDiscardedByDefault(_ chunking: Chunking) {
        var corrupted = Array(buffer(goldenFrames[9].hex).readableBytesView)
        corrupted[20] ^= 0x01   // inside the information field: HCS still good, FCS not
        let bytes = corrupted + Array(buffer(goldenFrames[0].hex).readableBytesView)
        let (frames, errors, decoder) = decodeStream(HDLCFrameDecoder(), bytes, chunking: chunking)
        #expect(errors.isEmpty)
        #expect(frames == [Self.expected[0]])
        #expect(decoder.checksumErrors == 1)
    }

    @Test(arguments: Chunking.allCases)
    func badFCSThrowsWhenAsked(_ chunking: Chunking) {
        var corrupted = Array(buffer(goldenFrames[9].hex).readableBytesView)
        corrupted[20] ^= 0x01
        let bytes = corrupted + Array(buffer(goldenFrames[0].hex).readableBytesView)
        let (frames, errors, decoder) = decodeStream(HDLCFrameDecoder(checksumPolicy: .throw), bytes, chunking: chunking)
        #expect(errors.map(linkCode) == [.checksumMismatch])
        #expect(frames == [Self.expected[0]])
        #expect(decoder.checksumErrors == 1)
    }

    @Test(arguments: Chunking.allCases)
    func malformedFrameWithGoodChecksumsThrowsAndDecodingContinues(_ chunking: Chunking) {
        let bytes = Array(buffer(rawFrame("A007032119")).readableBytesView)     // REJ
            + Array(buffer(rawFrame("A00B032151", information: "AABB")).readableBytesView)  // RR with info
            + Array(buffer(goldenFrames[5].hex).readableBytesView)
        let (frames, errors, _) = decodeStream(HDLCFrameDecoder(), bytes, chunking: chunking)
        #expect(errors.map(linkCode) == [.unsupported, .malformedFrame])
        #expect(frames == [Self.expected[5]])
    }

    @Test func incompleteFrameWaitsThenIsDroppedAtEOF() throws {
        var decoder = HDLCFrameDecoder()
        var input = buffer("7EA02C02232110AF9FE6E600601DA1")
        #expect(try decoder.decode(buffer: &input) == nil)
        #expect(try decoder.decodeLast(buffer: &input, seenEOF: true) == nil)
        #expect(input.readableBytes == 0)
        #expect(decoder.discardedBytes > 0)
    }

    @Test func heldBackBytesAreBounded() throws {
        // A valid-looking header announcing the largest length: the decoder holds at most one frame.
        var decoder = HDLCFrameDecoder()
        var input = ByteBuffer(dlmsBytes: Array(buffer(rawFrame("A7FF032110", information: "")).readableBytesView).dropLast(3))
        #expect(try decoder.decode(buffer: &input) == nil)
        input.writeBytes([UInt8](repeating: 0x00, count: 2040))
        #expect(try decoder.decode(buffer: &input) == nil)   // 2047 + flag not reached yet: keep waiting
        input.writeBytes([0x7E])
        #expect(try decoder.decode(buffer: &input) == nil)   // complete, but the FCS is wrong: discarded
        #expect(decoder.checksumErrors == 1)
    }

    @Test func pureGarbageIsDiscarded() throws {
        var decoder = HDLCFrameDecoder()
        var input = ByteBuffer(repeating: 0x41, count: 10_000)
        #expect(try decoder.decode(buffer: &input) == nil)
        #expect(input.readableBytes == 0)
        #expect(decoder.discardedBytes == 10_000)
    }

    @Test func worksWithNIOProcessor() throws {
        let processor = NIOSingleStepByteToMessageProcessor(HDLCFrameDecoder())
        var frames: [HDLCFrame] = []
        for chunk in Chunking.random.chunks(of: Self.stream) {
            try processor.process(buffer: ByteBuffer(dlmsBytes: chunk)) { frames.append($0) }
        }
        #expect(frames == Self.expected)
    }
}
