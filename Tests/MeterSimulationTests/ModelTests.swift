import COSEM
import DLMSCodec
import Foundation
import MeterSimulation
import NIOCore
import Testing
import TestSupport

@Suite("Deterministic values")
struct ModelTests {
    @Test func fleetMembers() {
        #expect(SimulatedMeter.Configuration.fleetMember(index: 0).serialNumber == "SIM00000001")
        #expect(SimulatedMeter.Configuration.fleetMember(index: 41, seed: 3).serialNumber == "SIM00000042")
        #expect(SimulatedMeter.Configuration.fleetMember(index: 41, seed: 3).seed == 3)
    }

    @Test func sameConfigurationSameValues() throws {
        let a = makeMeter("SIM00000005", seed: 9), b = makeMeter("SIM00000005", seed: 9)
        let from = testNow.addingTimeInterval(-86_400)
        #expect(a.expectedProfileRows(from: from, to: testNow) == b.expectedProfileRows(from: from, to: testNow))
        var sa = try associatedSession(a), sb = try associatedSession(b)
        #expect(try readData(&sa, loadProfileBuffer) == readData(&sb, loadProfileBuffer))
    }

    @Test func metersDiffer() {
        let values = (0..<50).map { makeMeter(SimulatedMeter.Configuration.fleetMember(index: $0).serialNumber).expectedRegisterValue(.activeEnergyImport, at: testNow) }
        #expect(Set(values.compactMap { $0?.integerValue }).count == 50)
        let seeded = makeMeter("SIM00000001", seed: 1).expectedRegisterValue(.activeEnergyImport, at: testNow)
        #expect(seeded != makeMeter("SIM00000001", seed: 2).expectedRegisterValue(.activeEnergyImport, at: testNow))
        // Consumption per interval varies too, not only the starting value.
        let rows = makeMeter().expectedProfileRows(from: testNow.addingTimeInterval(-86_400), to: testNow)
        let energies = rows.compactMap { $0[1].integerValue }
        let steps = Set(zip(energies.dropFirst(), energies).map { $0 - $1 })
        #expect(steps.count > 20)
    }

    @Test(arguments: ["SIM00000001", "SIM00000002", "SIM00009999"])
    func energyIsMonotonic(serial: String) throws {
        let meter = makeMeter(serial, seed: 4)
        for obis in ["1.0.1.8.0.255", "1.0.2.8.0.255", "1.0.1.8.1.255", "1.0.1.8.2.255"] {
            var previous: Int64 = -1
            for minute in stride(from: 0, to: 4 * 24 * 60, by: 7) {
                let value = try #require(meter.expectedRegisterValue(OBISCode(obis)!, at: testNow.addingTimeInterval(Double(minute) * 60))?.integerValue)
                #expect(value >= previous, "\(obis) decreased at minute \(minute)")
                previous = value
            }
        }
    }

    @Test func profileRowsHoldTheRegistersAtCaptureTime() {
        let meter = makeMeter("SIM00000077")
        for row in meter.expectedProfileRows(from: testNow.addingTimeInterval(-7200), to: testNow) {
            let time = Date(timeIntervalSince1970: TimeInterval(row[0].dateTimeValue!.unixTime!))
            #expect(row[1] == meter.expectedRegisterValue(.activeEnergyImport, at: time))
            #expect(row[2] == meter.expectedRegisterValue(.activeEnergyExport, at: time))
            #expect(row[3] == .uint8(0))
        }
    }

    @Test func tenThousandMetersAreCheap() {
        let meters = (0..<10_000).map { SimulatedMeter(configuration: .fleetMember(index: $0)) }
        #expect(meters.count == 10_000)
        #expect(MemoryLayout<COSEMServerSession>.size < 256)
    }
}

@Suite("Robustness")
struct RobustnessTests {
    static var validRequests: [DLMSAPDU] {
        let range = AccessSelection(RangeDescriptor(from: CosemDateTime(unixTime: 1_795_700_000), to: CosemDateTime(unixTime: 1_795_709_000)))
        return [
            .aarq(aarq(password: "12345678", maxPDU: 128)),
            .getRequest(.normal(invokeID: invoke, attribute: clockTime, accessSelection: nil)),
            .getRequest(.normal(invokeID: invoke, attribute: loadProfileBuffer, accessSelection: range)),
            .getRequest(.normal(invokeID: invoke, attribute: loadProfileBuffer, accessSelection: AccessSelection(EntryDescriptor(fromEntry: 1, toEntry: 10)))),
            .getRequest(.next(invokeID: invoke, blockNumber: 1)),
            .getRequest(.withList(invokeID: invoke, attributes: [AttributeWithSelection(clockTime), AttributeWithSelection(loadProfileBuffer, accessSelection: range)])),
            .setRequest(.normal(invokeID: invoke, attribute: clockTime, accessSelection: nil, value: .octetString(dateTime: CosemDateTime(unixTime: 1_795_709_000)))),
            .actionRequest(.normal(invokeID: invoke, method: CosemMethodDescriptor(classID: .disconnectControl, instance: .disconnectControl, method: 1), parameters: .int8(0))),
            .rlrq(RLRQ(reason: 0)),
        ]
    }

    @Test func randomMutationsNeverCrash() throws {
        var rng = SeededGenerator(seed: 0x5EED)
        let seeds = Self.validRequests.map { Array($0.encoded.readableBytesView) }
        var session = try associatedSession(makeMeter(), maxPDU: 128)
        var answered = 0
        for iteration in 0..<20_000 {
            var bytes = seeds[Int.random(in: 0..<seeds.count, using: &rng)]
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                switch Int.random(in: 0..<5, using: &rng) {
                case 0 where !bytes.isEmpty: bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                case 1 where !bytes.isEmpty: bytes[Int.random(in: 0..<bytes.count, using: &rng)] ^= 1 << UInt8.random(in: 0..<8, using: &rng)
                case 2 where !bytes.isEmpty: bytes.removeLast(Int.random(in: 1...bytes.count, using: &rng))
                case 3: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: Int.random(in: 0...bytes.count, using: &rng))
                default: if !bytes.isEmpty { bytes.remove(at: Int.random(in: 0..<bytes.count, using: &rng)) }
                }
            }
            if let response = session.handle(ByteBuffer(bytes: bytes), now: testNow) {
                answered += 1
                // Whatever we answer is a well-formed APDU.
                #expect(throws: Never.self) { try DLMSAPDU(exactly: response) }
            }
            if iteration % 500 == 0, !session.isAssociated {
                session = try associatedSession(makeMeter(), maxPDU: 128)
            }
        }
        #expect(answered > 10_000)
    }

    @Test func garbage() {
        var session = COSEMServerSession(meter: makeMeter(), clientSAP: 16)
        #expect(session.handle(ByteBuffer(), now: testNow) == nil)
        for bytes: [UInt8] in [[0xFF], [0x60], [0xC0, 0x01], [0x05, 0x01], [0xDB, 0x08], [0x60, 0x80, 0xFF, 0xFF, 0xFF, 0xFF]] {
            let response = session.handle(ByteBuffer(bytes: bytes), now: testNow)
            #expect(response != nil)
        }
        var big = ByteBuffer(bytes: [0xC0, 0x01, 0xC1])
        big.writeRepeatingByte(0, count: 2000)
        #expect(session.handle(big, now: testNow).map { try? DLMSAPDU(exactly: $0) } == .exceptionResponse(ExceptionResponse(stateError: 1, serviceError: 4)))
    }
}
