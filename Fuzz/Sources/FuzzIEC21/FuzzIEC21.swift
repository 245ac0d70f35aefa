import DLMSLink
import FuzzSupport
import NIOCore

/// What an IEC 62056-21 meter sends, as any byte string. The first byte picks the path:
/// - even: the parsers — identification line, programming-mode replies (ACK/NAK, data blocks,
///   command messages), the data sets of every block and the load profile in them, restricted to
///   a range (its rows must then lie in the range, strictly increasing);
/// - odd: the client session (readout, programming with a password, or mode E by the second
///   byte) fed the rest in chunks (sizes from the input) with timer expiries between them, and a
///   command or two once programming mode is open.
/// Anything may be refused with a `DLMSLinkError`; nothing may crash, hang or throw another error.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIEC21(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let selector = bytes.first else { return 0 }
    if selector & 1 == 0 {
        parsers(Array(bytes.dropFirst()))
    } else {
        session(Array(bytes.dropFirst()))
    }
    return 0
}

private func expectTyped(_ body: () throws -> Void) {
    refusesCleanly({ $0 is DLMSLinkError }, body)
}

private func parsers(_ bytes: [UInt8]) {
    expectTyped {
        var buffer = ByteBuffer(bytes: bytes)
        _ = try IEC21Identification.decode(from: &buffer)
    }
    expectTyped {
        var buffer = ByteBuffer(bytes: bytes)
        _ = try IEC21Command.decode(from: &buffer)
    }
    _ = IEC21Timestamp(String(decoding: bytes.prefix(16), as: UTF8.self))
    // The replies of a programming session, one after the other, as the driver reads them.
    var decoder = IEC21ReplyDecoder(maximumBlockLength: 4096)
    var buffer = ByteBuffer(bytes: bytes)
    decodeEach(upTo: 64, isTyped: { $0 is DLMSLinkError }, { try decoder.decode(buffer: &buffer) }) { reply in
        guard case .data(let block) = reply else { return }
        expectTyped { _ = try block.dataSets() }
        expectTyped {
            let profile = try IEC21LoadProfile.parse(block)
            let from: Int64 = 1_795_564_800, to: Int64 = 1_795_651_200
            let restricted = profile.restricted(from: from, to: to)
            var previous = Int64.min
            for row in restricted.rows {
                let time = row.time.secondsSince1970
                precondition(time >= from && time <= to, "a row outside the range: \(row.time)")
                precondition(time > previous, "rows not strictly increasing: \(row.time)")
                previous = time
                precondition(row.values.count == profile.channels.count, "a row of \(row.values.count) values for \(profile.channels.count) channels")
            }
            precondition(restricted.rows.count + restricted.discarded.total == profile.rows.count, "rows lost without being counted")
        }
    }
}

private func session(_ bytes: [UInt8]) {
    guard bytes.count >= 2 else { return }
    let mode: IEC21Session.Mode = switch bytes[0] % 3 {
    case 0: .readout
    case 1: .programming(password: "00000000")
    default: .hdlc
    }
    var session = IEC21Session(configuration: .init(address: bytes[1] & 1 == 0 ? nil : "12345678", mode: mode, maximumReadoutLength: 4096))
    var actions: [IEC21Session.Action] = []
    expectTyped { actions = try session.start() }
    var rest = bytes.dropFirst(2)
    var commands = 0
    var steps = 0
    while !rest.isEmpty, steps < 1000 {
        steps += 1
        let chunk = Int(rest.first! % 32) + 1
        rest = rest.dropFirst()
        if chunk == 32 {
            actions = session.timerFired()
        } else {
            actions = session.receive(ByteBuffer(bytes: rest.prefix(chunk)))
            rest = rest.dropFirst(chunk)
        }
        if actions.contains(where: { if case .closed = $0 { true } else { false } }) { return }
        if session.isReadyForCommand, commands < 2 {
            commands += 1
            expectTyped { _ = try session.command(IEC21Command.read(commands == 1 ? "1.8.0" : "P.01")) }
        }
    }
    _ = session.exit()
}
