import COSEM
import NIOCore
import Testing
@testable import DLMSLink
import TestSupport

@Suite struct HDLCFrameDecoderTests {
    /// Every golden frame, back to back with their own flags.
    static let stream: [UInt8] = goldenFrames.flatMap { hexBytes($0.hex) }
    static let expected: [HDLCFrame] = goldenFrames.map { golden in
        var input = hexBuffer(golden.hex)
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
            bytes += hexBytes(golden.hex).dropFirst()
        }
        bytes += [0x7E, 0x7E, 0x7E] + hexBytes(goldenFrames[0].hex)
        let (frames, errors, decoder) = decodeStream(HDLCFrameDecoder(), bytes, chunking: chunking, seed: seed)
        #expect(errors.isEmpty)
        #expect(frames == Self.expected + [Self.expected[0]])
        #expect(decoder.discardedBytes == 0)
    }

    /// meter-sim frames captured over TCP on which dlms-cosem 25.1.0's client stalled: it looks
    /// for flags, and a frame with 7E 7E inside costs it a read the meter never answers. DLMS HDLC
    /// has no byte stuffing (IEC 62056-46 §6.4); frames end where their length says.
    static let flagBytesInside: [String] = [
        // AARE (HLS-GMAC, ciphered InitiateResponse): FCS 37 7E
        "7EA0780302213083A3E6E7006169A109060760857405080103A203020100A305A10302010EA40A04085357482A1CE348"
            + "6388020780890760857405080205AA128010F4F856A5CE315C869199436C90EF5BB9BE230421281F30000000335D1BA0"
            + "B02121FB820EEC6BED24DF12111BCD8FC15C7126843731377E7E",
        // general-glo-ciphered ACTION-Response to reply_to_HLS_authentication: FCS 6D 7E
        "7EA04203022152EE7BE6E700DB085357482A1CE348632A30000000AD2D0185E2832F93CD5CBA6771B19D70282DF9782B"
            + "234685B046CD2E45295222FA2B76FE457D6D7E7E",
        // last segment of a ciphered profile GET-Response: 7E 7E in the data
        "7EA06D0302213ACD9E88BE1E9BC62AED79B2CEE4D703743C6DC44955831F7E7EDD880436273A1FA3F0590E536F71BFC3"
            + "11115E878B9B31728F42CF827AFD8E795030B2A63E175C02EBB30A4FF6564A82ABD43DC366D2AA7E52D89001B177ACC0"
            + "CA0A5655ACE274A4DFBB9FD8A1057E",
    ]

    @Test(arguments: Chunking.allCases)
    func flagBytesInsideFrames(_ chunking: Chunking) {
        let frames = Self.flagBytesInside.map { hexBytes($0) }
        // Each frame with its own flags, then each closing flag doubling as the next opening one.
        let bytes = frames.flatMap { $0 } + frames.flatMap { $0.dropFirst() }
        let (decoded, errors, decoder) = decodeStream(HDLCFrameDecoder(), bytes, chunking: chunking)
        #expect(errors.isEmpty)
        #expect(decoder.discardedBytes == 0)
        #expect(decoder.checksumErrors == 0)
        #expect(decoded.map { $0.encoded.dlmsHex } == Self.flagBytesInside + Self.flagBytesInside)
        // Length minus format, addresses (1 + 2), control, HCS and FCS.
        #expect(decoded.map(\.information.readableBytes) == [0x78, 0x42, 0x6D, 0x78, 0x42, 0x6D].map { $0 - 10 })
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
            bytes += garbage + hexBytes(golden.hex)
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
        let good = hexBytes(goldenFrames[8].hex)
        var bytes: [UInt8] = [0x7E, 0xA0, 0x7E]                        // format byte then flag
        bytes += [0x7E, 0xA8, 0xFF, 0x21, 0x03, 0x10, 0x00, 0x00]        // bad HCS, length 255
        bytes += Array(good.prefix(20))                                 // cut-off frame
        bytes += good
        bytes += [0x01, 0x02, 0x7E, 0xB0, 0x07]                          // wrong format type
        bytes += hexBytes(goldenFrames[0].hex)
        let (frames, errors, decoder) = decodeStream(HDLCFrameDecoder(), bytes, chunking: chunking)
        #expect(errors.isEmpty)
        #expect(frames == [Self.expected[8], Self.expected[0]])
        #expect(decoder.discardedBytes > 0)
    }

    @Test(arguments: Chunking.allCases)
    func badFCSIsDiscardedByDefault(_ chunking: Chunking) {
        var corrupted = hexBytes(goldenFrames[9].hex)
        corrupted[20] ^= 0x01   // inside the information field: HCS still good, FCS not
        let bytes = corrupted + hexBytes(goldenFrames[0].hex)
        let (frames, errors, decoder) = decodeStream(HDLCFrameDecoder(), bytes, chunking: chunking)
        #expect(errors.isEmpty)
        #expect(frames == [Self.expected[0]])
        #expect(decoder.checksumErrors == 1)
    }

    @Test(arguments: Chunking.allCases)
    func badFCSThrowsWhenAsked(_ chunking: Chunking) {
        var corrupted = hexBytes(goldenFrames[9].hex)
        corrupted[20] ^= 0x01
        let bytes = corrupted + hexBytes(goldenFrames[0].hex)
        let (frames, errors, decoder) = decodeStream(HDLCFrameDecoder(checksumPolicy: .throw), bytes, chunking: chunking)
        #expect(errors.map(linkCode) == [.checksumMismatch])
        #expect(frames == [Self.expected[0]])
        #expect(decoder.checksumErrors == 1)
    }

    @Test(arguments: Chunking.allCases)
    func malformedFrameWithGoodChecksumsThrowsAndDecodingContinues(_ chunking: Chunking) {
        let bytes = hexBytes(rawFrame("A007032119"))     // REJ
            + hexBytes(rawFrame("A00B032151", information: "AABB"))  // RR with info
            + hexBytes(goldenFrames[5].hex)
        let (frames, errors, _) = decodeStream(HDLCFrameDecoder(), bytes, chunking: chunking)
        #expect(errors.map(linkCode) == [.unsupported, .malformedFrame])
        #expect(frames == [Self.expected[5]])
    }

    @Test func incompleteFrameWaitsThenIsDroppedAtEOF() throws {
        var decoder = HDLCFrameDecoder()
        var input = hexBuffer("7EA02C02232110AF9FE6E600601DA1")
        #expect(try decoder.decode(buffer: &input) == nil)
        #expect(try decoder.decodeLast(buffer: &input, seenEOF: true) == nil)
        #expect(input.readableBytes == 0)
        #expect(decoder.discardedBytes > 0)
    }

    @Test func heldBackBytesAreBounded() throws {
        // A valid-looking header announcing the largest length: the decoder holds at most one frame.
        var decoder = HDLCFrameDecoder()
        var input = ByteBuffer(dlmsBytes: hexBytes(rawFrame("A7FF032110", information: "")).dropLast(3))
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
