import COSEM
import DLMSCodec
import Foundation
import MeterSimulation
import NIOCore
import Testing

@Suite("Profiles and block transfer")
struct ProfileTests {
    let meter = makeMeter("SIM00000003", seed: 11)
    /// The last load-profile capture at or before testNow (meter time = real time here).
    let lastCapture: Int64 = 1_795_709_250 / 900 * 900

    func date(_ unix: Int64) -> Date { Date(timeIntervalSince1970: TimeInterval(unix)) }

    func rows(_ data: DLMSData) -> [[DLMSData]] { (data.elements ?? []).map { $0.elements?.array ?? [] } }

    @Test func wholeLoadProfileIsSixtyDays() throws {
        var session = try associatedSession(meter)
        var blocks = 0
        let result = try read(&session, loadProfileBuffer, blocks: &blocks)
        guard case .data(let data) = result else { Issue.record("\(result)"); return }
        let all = rows(data)
        #expect(all.count == 5760)
        #expect(blocks > 100)
        #expect(all.last == meter.expectedProfileRows(from: date(lastCapture), to: date(lastCapture)).first)
        #expect(all == meter.expectedProfileRows(from: date(lastCapture - 5759 * 900), to: testNow))
        #expect(try readData(&session, descriptor(.profileGeneric, "1.0.99.1.0.255", 7)) == .uint32(5760))
        #expect(try readData(&session, descriptor(.profileGeneric, "1.0.99.1.0.255", 8)) == .uint32(5760))
        #expect(try readData(&session, descriptor(.profileGeneric, "1.0.99.1.0.255", 4)) == .uint32(900))
        #expect(try readData(&session, descriptor(.profileGeneric, "1.0.99.1.0.255", 5)) == .enumerated(1))
    }

    @Test func captureObjectsMatchGuruxLayout() throws {
        var session = try associatedSession(meter)
        let objects = try readData(&session, descriptor(.profileGeneric, "1.0.99.1.0.255", 3))
        #expect(try ProfileGeneric.captureObjects(from: objects) == [
            CaptureObjectDefinition(classID: .clock, logicalName: .clock, attributeIndex: 2),
            CaptureObjectDefinition(classID: .register, logicalName: .activeEnergyImport, attributeIndex: 2),
            CaptureObjectDefinition(classID: .register, logicalName: .activeEnergyExport, attributeIndex: 2),
            CaptureObjectDefinition(classID: .data, logicalName: OBISCode(0, 0, 96, 10, 1, 255), attributeIndex: 2),
        ])
    }

    @Test func rangeSelection() throws {
        var session = try associatedSession(meter)
        let from = lastCapture - 86_400, to = from + 2 * 3600
        let range = RangeDescriptor(from: CosemDateTime(unixTime: from), to: CosemDateTime(unixTime: to))
        let data = try readData(&session, loadProfileBuffer, selection: AccessSelection(range))
        #expect(rows(data).count == 9)
        #expect(rows(data) == meter.expectedProfileRows(from: date(from), to: date(to)))

        // Only the clock and +A columns.
        let columns = [CaptureObjectDefinition(classID: .clock, logicalName: .clock, attributeIndex: 2),
                       CaptureObjectDefinition(classID: .register, logicalName: .activeEnergyImport, attributeIndex: 2)]
        let narrow = try readData(&session, loadProfileBuffer, selection: AccessSelection(RangeDescriptor(
            from: CosemDateTime(unixTime: from + 1), to: CosemDateTime(unixTime: to), selectedValues: columns)))
        #expect(rows(narrow) == meter.expectedProfileRows(from: date(from + 1), to: date(to)).map { Array($0.prefix(2)) })
        #expect(rows(narrow).count == 8)

        // Outside the 60 days: empty.
        let old = try readData(&session, loadProfileBuffer, selection: AccessSelection(RangeDescriptor(
            from: CosemDateTime(unixTime: from - 90 * 86_400), to: CosemDateTime(unixTime: from - 80 * 86_400))))
        #expect(old == .array([]))
    }

    @Test func rangeWithUnspecifiedFields() throws {
        var session = try associatedSession(meter)
        // From "not specified" (the oldest entry) to a fixed time, and from a time without seconds or deviation.
        let to = lastCapture - 59 * 86_400 - 86_400 / 2
        let open = try readData(&session, loadProfileBuffer, selection: AccessSelection(RangeDescriptor(from: .notSpecified, to: CosemDateTime(unixTime: to))))
        let expected = meter.expectedProfileRows(from: date(lastCapture - 5759 * 900), to: date(to))
        #expect(rows(open) == expected)
        var from = CosemDateTime(unixTime: lastCapture - 3600)
        from.time.second = 0xFF
        from.time.hundredths = 0xFF
        from.deviation = CosemDateTime.deviationNotSpecified
        from.clockStatus = .notSpecified
        let recent = try readData(&session, loadProfileBuffer, selection: AccessSelection(RangeDescriptor(from: from, to: .notSpecified)))
        #expect(rows(recent) == meter.expectedProfileRows(from: date(lastCapture - 3600), to: testNow))
        // A whole day given by its date only.
        let day = CosemDateTime(unixTime: lastCapture - 2 * 86_400)
        var dayOnly = CosemDateTime(date: day.date, time: .notSpecified)
        dayOnly.deviation = 0
        let wholeDay = try readData(&session, loadProfileBuffer, selection: AccessSelection(RangeDescriptor(from: dayOnly, to: dayOnly)))
        #expect(rows(wholeDay).count == 96)
    }

    @Test func entrySelection() throws {
        var session = try associatedSession(meter)
        let first = try readData(&session, loadProfileBuffer, selection: AccessSelection(EntryDescriptor(fromEntry: 1, toEntry: 4, fromSelectedValue: 1, toSelectedValue: 2)))
        let oldest = lastCapture - 5759 * 900
        #expect(rows(first) == meter.expectedProfileRows(from: date(oldest), to: date(oldest + 3 * 900)).map { Array($0.prefix(2)) })
        let newest = try readData(&session, loadProfileBuffer, selection: AccessSelection(EntryDescriptor(fromEntry: 5758, toEntry: 0, fromSelectedValue: 2, toSelectedValue: 0)))
        #expect(rows(newest) == meter.expectedProfileRows(from: date(lastCapture - 2 * 900), to: date(lastCapture)).map { Array($0.dropFirst()) })
        let beyond = try readData(&session, loadProfileBuffer, selection: AccessSelection(EntryDescriptor(fromEntry: 9000, toEntry: 9999)))
        #expect(beyond == .array([]))
        #expect(try read(&session, loadProfileBuffer, selection: AccessSelection(selector: 9, parameters: .null)) == .dataAccessResult(.otherReason))
    }

    @Test func smallPDUBlocksReassembleToTheSameData() throws {
        let bigMeter = makeMeter("SIM00000003", seed: 11) { $0.maximumServerPDUSize = 0xFFFF }
        var big = try associatedSession(bigMeter, maxPDU: 0xFFFF)
        var small = try associatedSession(meter, maxPDU: 128)
        #expect(small.negotiatedPDUSize == 128)
        let range = AccessSelection(RangeDescriptor(from: CosemDateTime(unixTime: lastCapture - 86_400), to: CosemDateTime(unixTime: lastCapture)))
        var bigBlocks = 0, smallBlocks = 0
        let whole = try read(&big, loadProfileBuffer, selection: range, blocks: &bigBlocks)
        let pieces = try read(&small, loadProfileBuffer, selection: range, blocks: &smallBlocks)
        #expect(bigBlocks == 0)
        #expect(smallBlocks > 10)
        #expect(whole == pieces)
        guard case .data(let data) = pieces else { return }
        #expect(rows(data).count == 97)
    }

    @Test func blocksNeverExceedTheNegotiatedSize() throws {
        var session = try associatedSession(meter, maxPDU: 128)
        let first = session.handle(DLMSAPDU.getRequest(.normal(invokeID: invoke, attribute: loadProfileBuffer, accessSelection: nil)).encoded, now: testNow)
        var response = try #require(first)
        var block: UInt32 = 1
        while true {
            #expect(response.readableBytes <= 128)
            guard case .getResponse(.withDataBlock(_, let b)) = try DLMSAPDU(exactly: response) else { Issue.record("not a block"); return }
            #expect(b.blockNumber == block)
            if b.lastBlock || block == 40 { break }
            // The first block is full: 128 bytes, like Gurux's (raw data 118 bytes).
            if block == 1 { #expect(response.readableBytes == 128) }
            let next = session.handle(DLMSAPDU.getRequest(.next(invokeID: invoke, blockNumber: block)).encoded, now: testNow)
            response = try #require(next)
            block += 1
        }
        // A wrong block number aborts the transfer; a stray next finds nothing in progress.
        let wrong = try exchange(&session, .getRequest(.next(invokeID: invoke, blockNumber: 7)))
        #expect(wrong == .getResponse(.withDataBlock(invokeID: invoke, block: DataBlockG(lastBlock: true, blockNumber: 7, result: .dataAccessResult(.dataBlockNumberInvalid)))))
        let stray = try exchange(&session, .getRequest(.next(invokeID: invoke, blockNumber: 41)))
        #expect(stray == .getResponse(.withDataBlock(invokeID: invoke, block: DataBlockG(lastBlock: true, blockNumber: 41, result: .dataAccessResult(.noLongGetInProgress)))))
    }

    @Test(arguments: [UInt16(16), 17, 64, 137, 138, 266, 267, 1024])
    func everyPDUSizeKeepsItsBound(size: UInt16) throws {
        let from = lastCapture - 6 * 3600
        let range = AccessSelection(RangeDescriptor(from: CosemDateTime(unixTime: from), to: CosemDateTime(unixTime: lastCapture)))
        var session = try associatedSession(meter, maxPDU: size)
        let first = session.handle(DLMSAPDU.getRequest(.normal(invokeID: invoke, attribute: loadProfileBuffer, accessSelection: range)).encoded, now: testNow)
        var response = try #require(first)
        var raw = ByteBufferAllocator().buffer(capacity: 0)
        while true {
            #expect(response.readableBytes <= Int(size))
            let decoded = try DLMSAPDU(exactly: response)
            if case .getResponse(.normal(_, .data(let data))) = decoded {
                #expect(size >= 1024, "small enough to need no blocks")
                data.encode(into: &raw)
                break
            }
            guard case .getResponse(.withDataBlock(_, let block)) = decoded, case .rawData(let bytes) = block.result else {
                Issue.record("not a data block"); return
            }
            raw.writeBytes(bytes.bytes)
            if block.lastBlock { break }
            let next = session.handle(DLMSAPDU.getRequest(.next(invokeID: invoke, blockNumber: block.blockNumber)).encoded, now: testNow)
            response = try #require(next)
        }
        #expect(rows(try DLMSData.decode(from: &raw)) == meter.expectedProfileRows(from: date(from), to: date(lastCapture)))
    }

    @Test func withoutBlockTransferALongAnswerIsRefused() throws {
        var session = COSEMServerSession(meter: meter, clientSAP: 17)
        _ = try exchange(&session, .aarq(aarq(password: "12345678", maxPDU: 256, conformance: [.get, .selectiveAccess])))
        #expect(session.isAssociated)
        let response = try exchange(&session, .getRequest(.normal(invokeID: invoke, attribute: loadProfileBuffer, accessSelection: nil)))
        #expect(response == .exceptionResponse(ExceptionResponse(stateError: 1, serviceError: 4)))
    }

    @Test func getWithListInBlocks() throws {
        var session = try associatedSession(meter, maxPDU: 64)
        let range = AccessSelection(RangeDescriptor(from: CosemDateTime(unixTime: lastCapture - 3600), to: CosemDateTime(unixTime: lastCapture)))
        let request = DLMSAPDU.getRequest(.withList(invokeID: invoke, attributes: [AttributeWithSelection(loadProfileBuffer, accessSelection: range), AttributeWithSelection(clockTime)]))
        var response = try exchange(&session, request)
        var raw = ByteBufferAllocator().buffer(capacity: 0)
        while case .getResponse(.withDataBlock(_, let block)) = response, case .rawData(let bytes) = block.result {
            raw.writeBytes(bytes.bytes)
            if block.lastBlock { break }
            response = try exchange(&session, .getRequest(.next(invokeID: invoke, blockNumber: block.blockNumber)))
        }
        // The raw data is the SEQUENCE OF Get-Data-Result: count, then (choice, data) each.
        #expect(raw.readInteger(as: UInt8.self) == 2)
        #expect(raw.readInteger(as: UInt8.self) == 0)
        let profile = try DLMSData.decode(from: &raw)
        #expect(rows(profile) == meter.expectedProfileRows(from: date(lastCapture - 3600), to: date(lastCapture)))
        #expect(raw.readInteger(as: UInt8.self) == 0)
        #expect(try DLMSData.decode(from: &raw).dateTimeValue?.unixTime == 1_795_709_250)
    }

    @Test func dailyProfileAndEventLog() throws {
        var session = try associatedSession(meter)
        let daily = try readData(&session, descriptor(.profileGeneric, "1.0.98.1.0.255", 2))
        let midnight = 1_795_709_250 / 86_400 * 86_400
        #expect(rows(daily) == meter.expectedDailyRows(from: date(Int64(midnight) - 59 * 86_400), to: testNow))
        #expect(rows(daily).count == 60)
        #expect(rows(daily).last?[1] == meter.expectedRegisterValue(.activeEnergyImport, at: date(Int64(midnight))))

        let events = rows(try readData(&session, descriptor(.profileGeneric, "0.0.99.98.0.255", 2)))
        #expect(!events.isEmpty)
        let times = events.compactMap { $0.first?.dateTimeValue?.unixTime }
        #expect(times == times.sorted())
        #expect(times.allSatisfy { $0 > 1_795_709_250 - 60 * 86_400 && $0 <= 1_795_709_250 })
        #expect(try readData(&session, descriptor(.profileGeneric, "0.0.99.98.0.255", 7)) == .uint32(UInt32(events.count)))
        let lastDay = try readData(&session, descriptor(.profileGeneric, "0.0.99.98.0.255", 2), selection: AccessSelection(EntryDescriptor(fromEntry: UInt32(events.count), toEntry: 0)))
        #expect(rows(lastDay) == [events.last!])
    }
}
