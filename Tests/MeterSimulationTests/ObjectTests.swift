import COSEM
import DLMSCodec
import Foundation
import MeterSimulation
import NIOCore
import Testing

@Suite("COSEM objects")
struct ObjectTests {
    let meter = makeMeter("SIM00000042", seed: 7)

    @Test func identification() throws {
        var session = try associatedSession(meter)
        #expect(try readData(&session, descriptor(.data, "0.0.42.0.0.255", 2)) == .octetString(bytes: Array("SWHSIM00000042".utf8)))
        #expect(try readData(&session, descriptor(.data, "0.0.96.1.0.255", 2)) == .visibleString(text: "SIM00000042"))
        #expect(try readData(&session, descriptor(.data, "0.0.96.1.0.255", 1)) == .octetString(obis: .serialNumber))
        #expect(try readData(&session, descriptor(.data, "0.0.43.1.0.255", 2)) == .uint32(0))
        #expect(try readData(&session, descriptor(.securitySetup, "0.0.43.0.0.255", 2)) == .enumerated(0))
    }

    @Test func clock() throws {
        var session = try associatedSession(meter)
        let time = try readData(&session, clockTime)
        #expect(time.dateTimeValue == CosemDateTime(unixTime: 1_795_709_250))
        #expect(time.dateTimeValue?.deviation == 0)
        #expect(try readData(&session, descriptor(.clock, "0.0.1.0.0.255", 3)) == .int16(0))
        #expect(try readData(&session, descriptor(.clock, "0.0.1.0.0.255", 9)) == .enumerated(1))
    }

    @Test func clockOffsetFault() throws {
        let drifting = makeMeter { $0.clockOffset = .seconds(-125) }
        var session = try associatedSession(drifting)
        #expect(try readData(&session, clockTime).dateTimeValue?.unixTime == 1_795_709_250 - 125)
    }

    @Test(arguments: ["1.0.1.8.0.255", "1.0.2.8.0.255", "1.0.1.8.1.255", "1.0.1.8.2.255"])
    func registers(obis: String) throws {
        var session = try associatedSession(meter, sap: 16)
        let value = try readData(&session, descriptor(.register, obis, 2))
        #expect(value == meter.expectedRegisterValue(OBISCode(obis)!, at: testNow))
        #expect(try readData(&session, descriptor(.register, obis, 3)) == .structure([.int8(0), .enumerated(30)]))
    }

    @Test func tariffsAddUpToTheTotal() throws {
        for hours in stride(from: 0, to: 72, by: 5) {
            let at = testNow.addingTimeInterval(Double(hours) * 3600)
            let total = try #require(meter.expectedRegisterValue(OBISCode("1.0.1.8.0.255")!, at: at)?.integerValue)
            let t1 = try #require(meter.expectedRegisterValue(OBISCode("1.0.1.8.1.255")!, at: at)?.integerValue)
            let t2 = try #require(meter.expectedRegisterValue(OBISCode("1.0.1.8.2.255")!, at: at)?.integerValue)
            #expect(abs(total - t1 - t2) <= 1, "rounding inside an interval only")
        }
    }

    @Test func publicClientSeesARestrictedSet() throws {
        var session = try associatedSession(meter, sap: 16)
        #expect(try read(&session, descriptor(.data, "0.0.96.1.0.255", 2)) == .dataAccessResult(.readWriteDenied))
        #expect(try read(&session, loadProfileBuffer) == .dataAccessResult(.readWriteDenied))
        #expect(try read(&session, clockTime) != .dataAccessResult(.readWriteDenied))
        #expect(try read(&session, descriptor(.data, "0.0.42.0.0.255", 2)) != .dataAccessResult(.readWriteDenied))
    }

    @Test func errors() throws {
        var session = try associatedSession(meter)
        #expect(try read(&session, descriptor(.data, "0.0.96.1.9.255", 2)) == .dataAccessResult(.objectUndefined))
        #expect(try read(&session, descriptor(.register, "0.0.96.1.0.255", 2)) == .dataAccessResult(.objectClassInconsistent))
        #expect(try read(&session, descriptor(.register, "1.0.1.8.0.255", 9)) == .dataAccessResult(.readWriteDenied))
        #expect(try read(&session, descriptor(.associationLN, "0.0.40.0.0.255", 7)) == .dataAccessResult(.readWriteDenied))
    }

    @Test func currentAssociation() throws {
        var session = try associatedSession(meter, sap: 17)
        let list = try readData(&session, descriptor(.associationLN, "0.0.40.0.0.255", 2))
        let entries = try #require(list.elements)
        #expect(entries.count == 16)
        // The clock: class 8, attribute 2 read-write for the reading client, shift_time allowed.
        let clock = try #require(entries.first { $0.elements?[2] == .octetString(obis: .clock) }?.elements)
        #expect(clock[0] == .uint16(8))
        let rights = try #require(clock[3].elements)
        #expect(rights[0].elements?[1] == .structure([.int8(2), .enumerated(3), .null]))
        let profile = try #require(entries.first { $0.elements?[2] == .octetString(obis: .loadProfile1) }?.elements?[3].elements)
        #expect(profile[0].elements?[1] == .structure([.int8(2), .enumerated(1), .array([.int8(1), .int8(2)])]))
        #expect(try readData(&session, descriptor(.associationLN, "0.0.40.0.0.255", 3)) == .structure([.int8(17), .uint16(1)]))
        #expect(try readData(&session, descriptor(.associationLN, "0.0.40.0.0.255", 6)) == .structure([.uint8(2), .uint8(16), .uint16(756), .uint8(5), .uint8(8), .uint8(2), .uint8(1)]))
        #expect(try readData(&session, descriptor(.associationLN, "0.0.40.0.0.255", 8)) == .enumerated(2))

        var publicSession = try associatedSession(meter, sap: 16)
        let publicList = try #require(try readData(&publicSession, descriptor(.associationLN, "0.0.40.0.0.255", 2)).elements)
        let publicClock = try #require(publicList.first { $0.elements?[2] == .octetString(obis: .clock) }?.elements?[3].elements)
        #expect(publicClock[0].elements?[1] == .structure([.int8(2), .enumerated(1), .null]))
        #expect(publicClock[1].elements?[0] == .structure([.int8(1), .enumerated(0)]))
    }

    @Test func getWithList() throws {
        var session = try associatedSession(meter)
        let attributes = [clockTime, descriptor(.register, "1.0.1.8.0.255", 2), descriptor(.data, "0.0.96.1.9.255", 2)]
        let response = try exchange(&session, .getRequest(.withList(invokeID: invoke, attributes: attributes.map { AttributeWithSelection($0) })))
        guard case .getResponse(.withList(let id, let results)) = response else { Issue.record("\(response)"); return }
        #expect(id == invoke)
        #expect(results == [.data(.octetString(dateTime: CosemDateTime(unixTime: 1_795_709_250))),
                            .data(meter.expectedRegisterValue(.activeEnergyImport, at: testNow)!),
                            .dataAccessResult(.objectUndefined)])
    }
}

@Suite("SET and ACTION")
struct SetActionTests {
    @Test func setClockThenRead() throws {
        let meter = makeMeter()
        var session = try associatedSession(meter)
        let target = CosemDateTime(year: 2026, month: 1, day: 2, hour: 3, minute: 4, second: 5, deviation: 0, clockStatus: [])
        let response = try exchange(&session, .setRequest(.normal(invokeID: invoke, attribute: clockTime, accessSelection: nil, value: .octetString(dateTime: target))))
        #expect(response == .setResponse(.normal(invokeID: invoke, result: .success)))
        let later = testNow.addingTimeInterval(10)
        let answer = session.handle(DLMSAPDU.getRequest(.normal(invokeID: invoke, attribute: clockTime, accessSelection: nil)).encoded, now: later)
        let raw = try #require(answer)
        guard case .getResponse(.normal(_, .data(let data))) = try DLMSAPDU(exactly: raw) else { Issue.record("no clock"); return }
        #expect(data.dateTimeValue?.unixTime == target.unixTime! + 10)
        // Another session of the same meter sees the same clock.
        var other = try associatedSession(meter, sap: 16)
        #expect(try readData(&other, clockTime).dateTimeValue?.unixTime == target.unixTime!)
    }

    @Test func setReadOnlyIsDenied() throws {
        var session = try associatedSession(makeMeter())
        let register = descriptor(.register, "1.0.2.8.0.255", 2)
        #expect(try exchange(&session, .setRequest(.normal(invokeID: invoke, attribute: register, accessSelection: nil, value: .uint32(7))))
                == .setResponse(.normal(invokeID: invoke, result: .readWriteDenied)))
        var publicSession = try associatedSession(makeMeter(), sap: 16)
        #expect(try exchange(&publicSession, .setRequest(.normal(invokeID: invoke, attribute: clockTime, accessSelection: nil, value: .octetString(dateTime: .notSpecified))))
                == .setResponse(.normal(invokeID: invoke, result: .readWriteDenied)))
    }

    func act(_ session: inout COSEMServerSession, _ method: Int8) throws -> ActionResult? {
        let request = ActionRequest.normal(invokeID: invoke, method: CosemMethodDescriptor(classID: .disconnectControl, instance: .disconnectControl, method: method), parameters: .int8(0))
        guard case .actionResponse(.normal(_, let response)) = try exchange(&session, .actionRequest(request)) else { return nil }
        return response.result
    }

    @Test func disconnectStateMachine() throws {
        let meter = makeMeter()
        var session = try associatedSession(meter)
        let state = descriptor(.disconnectControl, "0.0.96.3.10.255", 3)
        let output = descriptor(.disconnectControl, "0.0.96.3.10.255", 2)
        #expect(meter.disconnectState == .connected)
        #expect(try act(&session, 1) == .success)
        #expect(meter.disconnectState == .disconnected)
        #expect(try readData(&session, state) == .enumerated(0))
        #expect(try readData(&session, output) == .boolean(false))
        #expect(try act(&session, 2) == .success)
        #expect(meter.disconnectState == .connected)
        #expect(try readData(&session, output) == .boolean(true))
        #expect(try act(&session, 3) == .readWriteDenied)

        // control_mode 2: remote reconnection only arms the switch; the customer closes it.
        var management = try associatedSession(meter, sap: 1)
        let mode = descriptor(.disconnectControl, "0.0.96.3.10.255", 4)
        #expect(try exchange(&session, .setRequest(.normal(invokeID: invoke, attribute: mode, accessSelection: nil, value: .enumerated(2))))
                == .setResponse(.normal(invokeID: invoke, result: .readWriteDenied)))
        #expect(try exchange(&management, .setRequest(.normal(invokeID: invoke, attribute: mode, accessSelection: nil, value: .enumerated(2))))
                == .setResponse(.normal(invokeID: invoke, result: .success)))
        #expect(try act(&session, 1) == .success)
        #expect(try act(&session, 2) == .success)
        #expect(meter.disconnectState == .readyForReconnection)
        meter.manualReconnect()
        #expect(meter.disconnectState == .connected)
    }

    @Test func publicClientMayNotDisconnect() throws {
        let meter = makeMeter()
        var session = try associatedSession(meter, sap: 16)
        #expect(try act(&session, 1) == .readWriteDenied)
        #expect(meter.disconnectState == .connected)
    }

    @Test func unconfirmedRequestsGetNoAnswer() throws {
        let meter = makeMeter()
        var session = try associatedSession(meter)
        let quiet = InvokeIDAndPriority(invokeID: 2, confirmed: false)
        let request = ActionRequest.normal(invokeID: quiet, method: CosemMethodDescriptor(classID: .disconnectControl, instance: .disconnectControl, method: 1), parameters: .int8(0))
        #expect(session.handle(DLMSAPDU.actionRequest(request).encoded, now: testNow) == nil)
        #expect(meter.disconnectState == .disconnected)
    }
}
