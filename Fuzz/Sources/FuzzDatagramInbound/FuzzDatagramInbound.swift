import COSEM
import DLMSCodec
import DLMSLink
import FuzzSupport
import NIOCore

/// What arrives from a UDP meter or a serial gateway, as any byte string. The first byte picks:
/// - even: a UDP wrapper datagram (the rest), its APDU decoded; and the same bytes as a TCP
///   stream of wrapper frames;
/// - odd: a serial gateway's datagrams (chunk sizes from the input) into the HDLC client link
///   (SNRM sent first, an APDU once connected, timer expiries between chunks), every APDU it
///   delivers decoded; and the bytes through the HDLC frame decoder on their own.
/// Refusals must be typed (`DLMSLinkError`, `DLMSError`); nothing may crash or hang, and the
/// link must never deliver more than its configured maximum.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDatagramInbound(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let selector = bytes.first else { return 0 }
    if selector & 1 == 0 {
        wrapper(Array(bytes.dropFirst()))
    } else {
        gateway(Array(bytes.dropFirst()))
    }
    return 0
}

private func isTyped(_ error: any Error) -> Bool { error is DLMSLinkError || error is DLMSError }

private func expectTyped(_ body: () throws -> Void) {
    refusesCleanly(isTyped, body)
}

private func decodeAPDU(_ apdu: ByteBuffer) {
    expectTyped {
        var buffer = apdu
        _ = try DLMSAPDU.decode(from: &buffer)
    }
}

private func wrapper(_ bytes: [UInt8]) {
    expectTyped {
        let frame = try WrapperFrame.decode(datagram: ByteBuffer(bytes: bytes))
        precondition(frame.apdu.readableBytes <= WrapperFrame.maximumAPDULength)
        decodeAPDU(frame.apdu)
    }
    var decoder = WrapperFrameDecoder()
    var stream = ByteBuffer(bytes: bytes)
    decodeEach(upTo: 64, isTyped: isTyped, { try decoder.decode(buffer: &stream) }) { decodeAPDU($0.apdu) }
}

private func gateway(_ bytes: [UInt8]) {
    let maximum = 4096
    var link: HDLCConnection
    do {
        link = HDLCConnection(configuration: .init(
            clientAddress: try .client(16), serverAddress: try .server(logical: 1, physical: 17), maximumMessageLength: maximum))
    } catch {
        fatalError("addresses: \(error)")
    }
    var actions: [HDLCConnection.Action] = []
    expectTyped { actions = try link.connect() }
    var rest = ArraySlice(bytes)
    var sent = false
    var steps = 0
    while !rest.isEmpty, steps < 1000 {
        steps += 1
        let chunk = Int(rest.first! % 64) + 1
        rest = rest.dropFirst()
        if chunk == 64 {
            actions = link.timerFired()
        } else {
            actions = link.receive(ByteBuffer(bytes: rest.prefix(chunk)))
            rest = rest.dropFirst(chunk)
        }
        for action in actions {
            switch action {
            case .deliver(let apdu):
                precondition(apdu.readableBytes <= maximum, "delivered \(apdu.readableBytes) bytes, the maximum is \(maximum)")
                decodeAPDU(apdu)
            case .closed:
                return
            default:
                break
            }
        }
        if link.isReady, !sent {
            sent = true
            expectTyped { _ = try link.send(ByteBuffer(bytes: [0xC0, 0x01, 0xC1, 0x00, 0x08, 0x00, 0x00, 0x01, 0x00, 0x00, 0xFF, 0x02, 0x00])) }
        }
    }
    var decoder = HDLCFrameDecoder()
    var stream = ByteBuffer(bytes: bytes)
    decodeEach(upTo: 64, isTyped: isTyped, { try decoder.decode(buffer: &stream) }) { _ in }
}
