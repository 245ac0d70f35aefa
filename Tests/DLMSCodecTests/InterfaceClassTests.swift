import COSEM
import DLMSCodec
import NIOCore
import TestSupport
import Testing

@Suite struct InterfaceClassTests {
    func data(_ name: String) throws -> DLMSData {
        let apdu = try DLMSAPDU(exactly: hexBuffer(guruxVectors.first { $0.name == name }!.hex))
        guard case .getResponse(.normal(_, .data(let value))) = apdu else { throw DLMSError.invalidValue("\(name) carries no data") }
        return value
    }

    @Test func profileBufferDecodedAgainstCaptureObjects() throws {
        let columns = try ProfileGeneric.captureObjects(from: data("none.get.profile.capture_objects.response"))
        #expect(columns.map(\.description) == ["8/0.0.1.0.0.255/2", "3/1.0.1.8.0.255/2", "3/1.0.2.8.0.255/2"])
        let rows = try ProfileGeneric.rows(buffer: data("none.get.profile.buffer.response"), captureObjects: columns)
        #expect(rows.count == 24)
        #expect(rows[0].captureTime?.time.hour == 16)
        #expect(rows[0].captureTime?.time.minute == 45)
        #expect(rows[1].captureTime?.time.minute == 0)
        #expect(rows[1].value(for: .activeEnergyImport)?.integerValue == 1001)
        #expect(rows[3].value(for: .activeEnergyExport)?.integerValue == 2006)
        #expect(throws: DLMSError.invalidValue("")) { try ProfileGeneric.rows(buffer: .array([.structure([.null])]), captureObjects: columns) }
    }

    @Test func nullCompressedRows() throws {
        let columns = [CaptureObjectDefinition(classID: .clock, logicalName: .clock, attributeIndex: 2),
                       CaptureObjectDefinition(classID: .register, logicalName: .activeEnergyImport, attributeIndex: 2)]
        let start = CosemDateTime(year: 2024, month: 11, day: 26, hour: 0, minute: 0, second: 0, hundredths: 0, dayOfWeek: 2, deviation: -60, clockStatus: [])
        let buffer = DLMSData.array([
            .structure([.octetString(dateTime: start), .uint32(10)]),
            .structure([.null, .uint32(11)]),
            .structure([.null, .null]),
        ])
        let rows = try ProfileGeneric.rows(buffer: buffer, captureObjects: columns).fillingNulls(capturePeriod: 900)
        #expect(rows[1].captureTime?.time.minute == 15)
        #expect(rows[2].captureTime?.time.minute == 30)
        #expect(rows[2].values[1] == .uint32(11))
    }

    @Test func eventLog() throws {
        let columns = [CaptureObjectDefinition(classID: .clock, logicalName: .clock, attributeIndex: 2),
                       CaptureObjectDefinition(classID: .data, logicalName: OBISCode(0, 0, 96, 11, 0, 255), attributeIndex: 2)]
        let t = CosemDateTime(year: 2024, month: 11, day: 26, hour: 3, minute: 4, second: 5)
        let events = try ProfileGeneric.events(buffer: .array([.structure([.octetString(dateTime: t), .uint8(47)])]), captureObjects: columns)
        #expect(events == [EventLogEntry(time: t, code: 47, values: [.octetString(dateTime: t), .uint8(47)])])
    }

    @Test func register() throws {
        let value = try RegisterValue(value: data("none.get.register.value.response"), scalerUnit: data("none.get.register.scaler_unit.response"))
        #expect(value.scalerUnit == ScalerUnit(scaler: -3, unit: .wattHour))
        #expect(value.scaledValue == 12_345.678)
        #expect(RegisterValue.descriptor(.activeEnergyImport, .scalerUnit) == CosemAttributeDescriptor(classID: .register, instance: .activeEnergyImport, attribute: 3))
    }

    @Test func extendedAndDemandRegisters() throws {
        let t = CosemDateTime(year: 2024, month: 11, day: 26, hour: 3, minute: 4, second: 5)
        let ext = try ExtendedRegisterValue(value: .uint32(5), scalerUnit: .structure([.int8(0), .enumerated(27)]), status: .uint8(0), captureTime: .octetString(dateTime: t))
        #expect(ext.captureTime == t)
        #expect(ext.register.scalerUnit.unit.symbol == "W")
        let demand = try DemandRegisterValue(attributes: [.uint32(100), .uint32(200), .structure([.int8(1), .enumerated(27)]), .uint8(0),
                                                          .octetString(dateTime: t), .octetString(dateTime: t), .uint32(900), .uint16(1)])
        #expect(demand.scaledLastAverage == 2000)
        #expect(demand.period == 900)
    }

    @Test func clock() throws {
        let clock = try ClockValue(attributes: [data("none.get.clock.time.response"), data("none.get.clock.timezone.response")])
        #expect(clock.time.date.year == 2024)
        #expect(clock.timeZone == 60)
    }

    @Test func associationObjectList() throws {
        let element = DLMSData.structure([
            .uint16(3), .uint8(0), .octetString(obis: .activeEnergyImport),
            .structure([
                .array([.structure([.int8(1), .enumerated(1), .null]), .structure([.int8(2), .enumerated(3), .array([.int8(1), .int8(2)])])]),
                .array([.structure([.int8(1), .boolean(true)]), .structure([.int8(2), .enumerated(0)])]),
            ]),
        ])
        let list = try AssociationLN.objectList(from: .array([element]))
        #expect(list.count == 1)
        #expect(list[0].classID == .register)
        #expect(list[0].attributeAccess[0].canRead && !list[0].attributeAccess[0].canWrite)
        #expect(list[0].attributeAccess[1].canWrite)
        #expect(list[0].attributeAccess[1].accessSelectors == [1, 2])
        #expect(list[0].attributeAccess[0].accessSelectors == nil)
        #expect(list[0].methodAccess.map(\.accessMode) == [1, 0])
    }

    @Test func sapAssignmentSecuritySetupDisconnect() throws {
        let saps = try SAPAssignment.assignments(from: .array([.structure([.uint16(1), .octetString(bytes: Array("GRX0000001".utf8))])]))
        #expect(saps.first?.sap == 1 && saps.first?.logicalDeviceName == "GRX0000001")
        let security = try SecuritySetupValue(attributes: [.enumerated(3), .enumerated(0), .octetString(bytes: [1, 2, 3, 4, 5, 6, 7, 8]), .octetString(bytes: [8, 7, 6, 5, 4, 3, 2, 1])])
        #expect(security.serverSystemTitle == [8, 7, 6, 5, 4, 3, 2, 1])
        let breaker = try DisconnectControlValue(outputState: .boolean(false), controlState: .enumerated(2), controlMode: .enumerated(4))
        #expect(breaker.controlState == .readyForReconnection)
        #expect(!breaker.outputState)
        #expect(DisconnectControlValue.method(.remoteReconnect) == CosemMethodDescriptor(classID: .disconnectControl, instance: .disconnectControl, method: 2))
        #expect(throws: DLMSError.invalidValue("")) { try DisconnectControlValue(outputState: .boolean(true), controlState: .enumerated(7)) }
    }
}
