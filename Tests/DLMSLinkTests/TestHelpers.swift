import COSEM
import NIOCore
import Testing
import TestSupport
@testable import DLMSLink

/// How a byte stream is cut into the buffers a decoder receives.
enum Chunking: CustomStringConvertible, CaseIterable {
    case allAtOnce
    case byteByByte
    case random

    var description: String {
        switch self {
        case .allAtOnce: "all at once"
        case .byteByByte: "byte by byte"
        case .random: "random chunks"
        }
    }

    func chunks(of bytes: [UInt8], seed: UInt64 = 42) -> [[UInt8]] {
        switch self {
        case .allAtOnce:
            return [bytes]
        case .byteByByte:
            return bytes.map { [$0] }
        case .random:
            var rng = SeededGenerator(seed: seed)
            var out: [[UInt8]] = []
            var index = 0
            while index < bytes.count {
                let size = Int.random(in: 1...17, using: &rng)
                let end = min(bytes.count, index + size)
                out.append(Array(bytes[index..<end]))
                index = end
            }
            return out
        }
    }
}

/// Feeds `bytes` to a single-step decoder in chunks, the way a channel delivers them, and
/// collects every message (and every error) it produces.
func decodeStream<D: NIOSingleStepByteToMessageDecoder>(
    _ decoder: D,
    _ bytes: [UInt8],
    chunking: Chunking,
    seed: UInt64 = 42
) -> (messages: [D.InboundOut], errors: [any Error], decoder: D) {
    var decoder = decoder
    var pending = ByteBuffer()
    var messages: [D.InboundOut] = []
    var errors: [any Error] = []
    for chunk in chunking.chunks(of: bytes, seed: seed) {
        pending.writeBytes(chunk)
        while true {
            let before = pending.readerIndex
            do {
                guard let message = try decoder.decode(buffer: &pending) else { break }
                messages.append(message)
            } catch {
                errors.append(error)
                if pending.readerIndex == before { break }  // a decoder that throws must make progress
            }
        }
        pending.discardReadBytes()
    }
    while true {
        do {
            guard let message = try decoder.decodeLast(buffer: &pending, seenEOF: true) else { break }
            messages.append(message)
        } catch {
            errors.append(error)
            break
        }
    }
    return (messages, errors, decoder)
}

func linkCode(_ error: any Error) -> DLMSLinkError.Code? { (error as? DLMSLinkError)?.code }

/// Builds frame bytes with correct HCS/FCS around hand-written content, for frames no encoder
/// would produce: `header` is format, addresses and control; `information`, when given, is
/// preceded by an HCS.
func rawFrame(_ header: String, information: String? = nil) -> String {
    var body = hexBytes(header)
    if let information {
        let hcs = HDLCChecksum.compute(body)
        body += [UInt8(hcs & 0xFF), UInt8(hcs >> 8)]
        body += hexBytes(information)
    }
    let fcs = HDLCChecksum.compute(body)
    body += [UInt8(fcs & 0xFF), UInt8(fcs >> 8)]
    return ByteBuffer(dlmsBytes: [0x7E] + body + [0x7E]).dlmsHex
}

/// A GET-Response-Normal (`C4 01 C1 00`, data) carrying `rows` rows of a 15-minute load profile
/// (clock as a 12-byte octet string, two double-long-unsigned registers, an unsigned status), as
/// a meter answers a profile read: 28 bytes a row, 40,328 bytes for 1,440 rows.
func profileResponseAPDU(rows: Int) -> ByteBuffer {
    let start = CosemDateTime(year: 2024, month: 11, day: 1, hour: 0, minute: 0, second: 0, hundredths: 0,
                              dayOfWeek: 5, deviation: -60, clockStatus: [])
    let values: [DLMSData] = (0..<rows).map { i in
        let time = CosemDateTime(unixTime: start.unixTime! + Int64(i) * 900, utcOffsetMinutes: 60)
        return .structure([.octetString(dateTime: time), .uint32(UInt32(1_000_000 + i * 250)), .uint32(UInt32(500_000 + i * 10)), .uint8(0)])
    }
    var apdu = hexBuffer("C401C100")
    DLMSData.array(DLMSDataList(values)).encode(into: &apdu)
    return apdu
}

/// Cuts `message` (LLC header included) into I-frames of at most `size` information bytes, all
/// but the last with the segmentation bit, N(S) counting from `sendSequence` and N(R) fixed, as
/// a sender with window 1 sends them one RR at a time; returns the frames' bytes in order.
func segmentedFrames(_ message: ByteBuffer, size: Int, destination: HDLCAddress, source: HDLCAddress,
                     sendSequence: UInt8 = 0, receiveSequence: UInt8) -> [ByteBuffer] {
    var message = message
    var frames: [ByteBuffer] = []
    var ns = sendSequence
    while message.readableBytes > 0 {
        let chunk = message.readSlice(length: min(size, message.readableBytes))!
        frames.append(HDLCFrame(destination: destination, source: source,
                                control: .information(sendSequence: ns, receiveSequence: receiveSequence, pollFinal: true),
                                segmented: message.readableBytes > 0, information: chunk).encoded)
        ns = (ns &+ 1) & 7
    }
    return frames
}
