import COSEM
import DLMSCodec
import NIOCore
import TestSupport
import Testing

let clockTime = CosemAttributeDescriptor(classID: .clock, instance: .clock, attribute: 2)
let disconnectControl = CosemMethodDescriptor(classID: .disconnectControl, instance: .disconnectControl, method: 1)
let serial = CosemAttributeDescriptor(classID: .data, instance: .serialNumber, attribute: 2)
let id1 = InvokeIDAndPriority(rawValue: 0xC1)

/// Vectors laid out as in the Green Book's worked examples (DLMS UA 1000-2, §9.3/9.4 encoding
/// examples), each with the value it must decode to.
@Suite struct StandardVectorTests {
    static let vectors: [(String, DLMSAPDU)] = [
        // xDLMS GET
        ("C001C100080000010000FF0200", .getRequest(.normal(invokeID: id1, attribute: clockTime, accessSelection: nil))),
        ("C002C100000001", .getRequest(.next(invokeID: id1, blockNumber: 1))),
        ("C003C102000100006001 00FF0200 00080000010000FF0200", .getRequest(.withList(invokeID: id1, attributes: [.init(serial), .init(clockTime)]))),
        ("C401C100090600000100 00FF", .getResponse(.normal(invokeID: id1, result: .data(.octetString(obis: .clock))))),
        ("C401C10103", .getResponse(.normal(invokeID: id1, result: .dataAccessResult(.readWriteDenied)))),
        ("C402C1010000000200 03AABBCC", .getResponse(.withDataBlock(invokeID: id1, block: DataBlockG(lastBlock: true, blockNumber: 2, result: .rawData([0xAA, 0xBB, 0xCC]))))),
        ("C402C101000000020 10E", .getResponse(.withDataBlock(invokeID: id1, block: DataBlockG(lastBlock: true, blockNumber: 2, result: .dataAccessResult(.dataBlockUnavailable))))),
        ("C403C102 001105 0104", .getResponse(.withList(invokeID: id1, results: [.data(.uint8(5)), .dataAccessResult(.objectUndefined)]))),
        // xDLMS SET
        ("C101C100010000600100FF0200 0A03414243", .setRequest(.normal(invokeID: id1, attribute: serial, accessSelection: nil, value: .visibleString(text: "ABC")))),
        ("C102C100010000600100FF0200 0000000001 03AABBCC", .setRequest(.withFirstDataBlock(invokeID: id1, attribute: serial, accessSelection: nil,
                                                                                             block: DataBlockSA(lastBlock: false, blockNumber: 1, rawData: [0xAA, 0xBB, 0xCC])))),
        ("C103C101 00000002 02DDEE", .setRequest(.withDataBlock(invokeID: id1, block: DataBlockSA(lastBlock: true, blockNumber: 2, rawData: [0xDD, 0xEE])))),
        ("C104C102 000100006001 00FF0200 00080000010000FF0200 02 1101 1102", .setRequest(.withList(invokeID: id1, attributes: [.init(serial), .init(clockTime)], values: [.uint8(1), .uint8(2)]))),
        ("C105C101 000100006001 00FF0200 01 00000001 01AA", .setRequest(.withListAndFirstDataBlock(invokeID: id1, attributes: [.init(serial)],
                                                                                                  block: DataBlockSA(lastBlock: true, blockNumber: 1, rawData: [0xAA])))),
        ("C501C100", .setResponse(.normal(invokeID: id1, result: .success))),
        ("C502C100000001", .setResponse(.dataBlock(invokeID: id1, blockNumber: 1))),
        ("C503C10000000002", .setResponse(.lastDataBlock(invokeID: id1, result: .success, blockNumber: 2))),
        ("C504C1020003 00000002", .setResponse(.lastDataBlockWithList(invokeID: id1, results: [.success, .readWriteDenied], blockNumber: 2))),
        ("C505C1020003", .setResponse(.withList(invokeID: id1, results: [.success, .readWriteDenied]))),
        // xDLMS ACTION
        ("C301C10046000060030AFF01010F00", .actionRequest(.normal(invokeID: id1, method: disconnectControl, parameters: .int8(0)))),
        ("C301C10046000060030AFF0100", .actionRequest(.normal(invokeID: id1, method: disconnectControl, parameters: nil))),
        ("C302C100000001", .actionRequest(.nextPBlock(invokeID: id1, blockNumber: 1))),
        ("C303C102 0046000060030AFF01 0046000060030AFF01 02 0F00 0F00", .actionRequest(.withList(invokeID: id1, methods: [disconnectControl, disconnectControl], parameters: [.int8(0), .int8(0)]))),
        ("C304C10046000060030AFF01 00 00000001 020F00", .actionRequest(.withFirstPBlock(invokeID: id1, method: disconnectControl, block: DataBlockSA(lastBlock: false, blockNumber: 1, rawData: [0x0F, 0x00])))),
        ("C305C101 0046000060030AFF01 01 00000001 020F00", .actionRequest(.withListAndFirstPBlock(invokeID: id1, methods: [disconnectControl], block: DataBlockSA(lastBlock: true, blockNumber: 1, rawData: [0x0F, 0x00])))),
        ("C306C101 00000002 01AA", .actionRequest(.withPBlock(invokeID: id1, block: DataBlockSA(lastBlock: true, blockNumber: 2, rawData: [0xAA])))),
        ("C701C10000", .actionResponse(.normal(invokeID: id1, response: .init(result: .success)))),
        ("C701C100 01 001105", .actionResponse(.normal(invokeID: id1, response: .init(result: .success, returnParameters: .data(.uint8(5)))))),
        ("C701C10B 01 0103", .actionResponse(.normal(invokeID: id1, response: .init(result: .objectUnavailable, returnParameters: .dataAccessResult(.readWriteDenied))))),
        ("C702C101 00000001 02AABB", .actionResponse(.withPBlock(invokeID: id1, block: DataBlockSA(lastBlock: true, blockNumber: 1, rawData: [0xAA, 0xBB])))),
        ("C703C102 0000 0300", .actionResponse(.withList(invokeID: id1, responses: [.init(result: .success), .init(result: .readWriteDenied)]))),
        ("C704C100000001", .actionResponse(.nextPBlock(invokeID: id1, blockNumber: 1))),
        // Notifications, errors, block transfer
        ("0F00000001 00 1105", .dataNotification(DataNotification(longInvokeIDAndPriority: 1, body: .uint8(5)))),
        ("0F40000002 0C07E80B1A02103900FFFFC400 0203 0600000001 0600000002 1100", .dataNotification(DataNotification(
            longInvokeIDAndPriority: 0x4000_0002,
            dateTime: CosemDateTime(year: 2024, month: 11, day: 26, hour: 16, minute: 57, second: 0, dayOfWeek: 2, deviation: -60, clockStatus: []),
            body: .structure([.uint32(1), .uint32(2), .uint8(0)])))),
        ("C200 0046000060030AFF02 0301", .eventNotification(EventNotificationRequest(attribute: CosemAttributeDescriptor(classID: .disconnectControl, instance: .disconnectControl, attribute: 2), value: .boolean(true)))),
        ("C201 0C07E80B1A02103900FFFFC400 0046000060030AFF04 1601", .eventNotification(EventNotificationRequest(
            time: DLMSBytes(CosemDateTime(year: 2024, month: 11, day: 26, hour: 16, minute: 57, second: 0, dayOfWeek: 2, deviation: -60, clockStatus: []).octetString.readableBytesView),
            attribute: CosemAttributeDescriptor(classID: .disconnectControl, instance: .disconnectControl, attribute: 4), value: .enumerated(1)))),
        ("D80102", .exceptionResponse(ExceptionResponse(stateError: 1, serviceError: 2))),
        ("D8010600000005", .exceptionResponse(ExceptionResponse(stateError: 1, serviceError: 6, invocationCounter: 5))),
        ("0E010601", .confirmedServiceError(ConfirmedServiceError(service: 1, errorKind: 6, errorValue: 1))),
        ("E081 0001 0000 03AABBCC", .generalBlockTransfer(GeneralBlockTransfer(lastBlock: true, window: 1, blockNumber: 1, blockNumberAck: 0, blockData: [0xAA, 0xBB, 0xCC]))),
        ("E042 0002 0001 00", .generalBlockTransfer(GeneralBlockTransfer(lastBlock: false, streaming: true, window: 2, blockNumber: 2, blockNumberAck: 1, blockData: []))),
        // Ciphered (opaque) APDUs
        ("C811 30 00000001 112233445566778899AABBCC", .ciphered(CipheredAPDU(tag: 0xC8, securityControl: 0x30, invocationCounter: 1,
                                                                              payload: [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC]))),
        ("DB 08 4D4D4D0000BC614E 08 10 0000002A 112233", .ciphered(CipheredAPDU(tag: 0xDB, systemTitle: [0x4D, 0x4D, 0x4D, 0, 0, 0xBC, 0x61, 0x4E],
                                                                                securityControl: 0x10, invocationCounter: 42, payload: [0x11, 0x22, 0x33]))),
        // ACSE — Green Book worked example: AARQ/AARE, LN referencing, no security
        ("601DA109060760857405080101BE10040E01000000065F1F0400007E1F04B0", .aarq(AARQ(userInformation: .initiateRequest(
            InitiateRequest(proposedConformance: Conformance(rawValue: 0x7E1F), clientMaxReceivePDUSize: 0x04B0))))),
        ("6129A109060760857405080101A203020100A305A103020100BE10040E0800065F1F040000501F01F40007", .aare(AARE(userInformation: .initiateResponse(
            InitiateResponse(negotiatedConformance: Conformance(rawValue: 0x501F), serverMaxReceivePDUSize: 0x01F4))))),
        ("C00181 00080000010000FF0200", .getRequest(.normal(invokeID: InvokeIDAndPriority(rawValue: 0x81), attribute: clockTime, accessSelection: nil))),
        ("601DA109060760857405080101BE10040E01000000065F1F040000 7E1F0400", .aarq(AARQ(userInformation: .initiateRequest(
            InitiateRequest(proposedConformance: [.priorityManagementSupported, .attribute0SupportedWithGet, .blockTransferWithGetOrRead, .blockTransferWithSetOrWrite,
                                                  .blockTransferWithAction, .multipleReferences, .get, .set, .selectiveAccess, .eventNotification, .action],
                            clientMaxReceivePDUSize: 0x0400))))),
        ("6042 A109060760857405080103 A60A04084D4D4D0000BC614E 8A020780 8B0760857405080205 AC0A80085036775 24A323146 BE10040E210C30000000011122334455667 7",
         .aarq(AARQ(applicationContextName: .logicalNameWithCiphering, callingAPTitle: [0x4D, 0x4D, 0x4D, 0, 0, 0xBC, 0x61, 0x4E], senderACSERequirements: [0x07, 0x80],
                    mechanismName: .highGMAC, callingAuthenticationValue: .charString(DLMSBytes(Array("P6wRJ21F".utf8))),
                    userInformation: .ciphered(CipheredAPDU(tag: 0x21, securityControl: 0x30, invocationCounter: 1, payload: [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77]))))),
        ("601D A109060760857405080102 BE10040E01000000065F1F04001C0320 0400", .aarq(AARQ(applicationContextName: .shortName, userInformation: .initiateRequest(
            InitiateRequest(proposedConformance: [.read, .write, .unconfirmedWrite, .multipleReferences, .informationReport, .parameterizedAccess],
                            clientMaxReceivePDUSize: 0x0400))))),
        ("614E A109060760857405080103 A203020100 A305A10302010E A40A04084D4D4D0000000001 88020780 890760857405080205 AA0A80083132333435363738 BE10040E280C30000000011122334455667 7",
         .aare(AARE(applicationContextName: .logicalNameWithCiphering, resultSourceDiagnostic: AssociateSourceDiagnostic(source: .serviceUser, value: 14),
                    respondingAPTitle: [0x4D, 0x4D, 0x4D, 0, 0, 0, 0, 1], responderACSERequirements: [0x07, 0x80], mechanismName: .highGMAC,
                    respondingAuthenticationValue: .charString(DLMSBytes(Array("12345678".utf8))),
                    userInformation: .ciphered(CipheredAPDU(tag: 0x28, securityControl: 0x30, invocationCounter: 1, payload: [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77]))))),
        ("611F A109060760857405080101 A203020101 A305A103020100 BE0604040E010601", .aare(AARE(result: .rejectedPermanent,
            userInformation: .confirmedServiceError(ConfirmedServiceError(service: 1, errorKind: 6, errorValue: 1))))),
        ("6117 A109060760857405080101 A203020102 A305A203020102", .aare(AARE(result: .rejectedTransient, resultSourceDiagnostic: AssociateSourceDiagnostic(source: .serviceProvider, value: 2)))),
        ("6203800100", .rlrq(RLRQ(reason: 0))),
        ("6200", .rlrq(RLRQ(reason: nil))),
        ("6215800100BE10040E01000000065F1F0400001E1DFFFF", .rlrq(RLRQ(reason: 0, userInformation: .initiateRequest(InitiateRequest(
            proposedConformance: [.blockTransferWithGetOrRead, .blockTransferWithSetOrWrite, .blockTransferWithAction, .multipleReferences, .get, .set, .selectiveAccess, .action],
            clientMaxReceivePDUSize: 0xFFFF))))),
        ("6303800100", .rlre(RLRE(reason: 0))),
        ("0100000006 5F1F040000101D 0400", .initiateRequest(InitiateRequest(proposedConformance: [.blockTransferWithGetOrRead, .get, .set, .selectiveAccess, .action], clientMaxReceivePDUSize: 1024))),
        ("01 0110 000102030405060708090A0B0C0D0E0F 0100 0105 06 5F1F040000101D 0400", .initiateRequest(InitiateRequest(
            dedicatedKey: DLMSBytes(0..<16), responseAllowed: false, proposedQualityOfService: 5, proposedConformance: [.blockTransferWithGetOrRead, .get, .set, .selectiveAccess, .action], clientMaxReceivePDUSize: 1024))),
        ("0800065F1F040000101D00EF0007", .initiateResponse(InitiateResponse(negotiatedConformance: [.blockTransferWithGetOrRead, .get, .set, .selectiveAccess, .action], serverMaxReceivePDUSize: 0xEF))),
    ]

    @Test(arguments: vectors)
    func goldenRoundTrip(hex: String, expected: DLMSAPDU) throws {
        let apdu = try roundTrip(hex)
        #expect(apdu == expected)
        #expect(expected.encoded.dlmsHex == hexBuffer(hex).dlmsHex)
    }

    @Test func conformanceNames() {
        let c = Conformance(rawValue: 0x00_7E1F)
        #expect(c.names == ["priority-mgmt-supported", "attribute0-supported-with-get", "block-transfer-with-get-or-read",
                            "block-transfer-with-set-or-write", "block-transfer-with-action", "multiple-references",
                            "get", "set", "selective-access", "event-notification", "action"])
    }

    @Test func readableReasons() {
        #expect(ConfirmedServiceError(service: 1, errorKind: 6, errorValue: 1).description == "confirmed-service-error in initiateError: initiate: dlms-version-too-low")
        #expect(ExceptionResponse(stateError: 1, serviceError: 6, invocationCounter: 5).description
                == "exception-response: service-not-allowed, invocation-counter-error (invocation counter 5)")
        #expect(AssociateSourceDiagnostic(source: .serviceUser, value: 13).reason == "authentication-failure")
        #expect(AssociateSourceDiagnostic(source: .serviceProvider, value: 2).reason == "no-common-acse-version")
        #expect(DataAccessResult.objectUndefined.description == "object-undefined")
        #expect(ActionResult(rawValue: 250).description == "other-reason")
        #expect(ApplicationContextName.logicalNameWithCiphering.usesCiphering)
        #expect(AuthenticationMechanism.highGMAC.id == 5)
    }

    @Test func invokeID() {
        let id = InvokeIDAndPriority(invokeID: 5, confirmed: true, highPriority: true)
        #expect(id.rawValue == 0xC5)
        #expect(id.invokeID == 5 && id.isConfirmed && id.isHighPriority)
    }

    @Test func selectiveAccessTyped() throws {
        let from = CosemDateTime(year: 2024, month: 11, day: 26, hour: 0, minute: 0, second: 0)
        let to = CosemDateTime(year: 2024, month: 11, day: 27, hour: 0, minute: 0, second: 0)
        let request = DLMSAPDU.getRequest(.normal(invokeID: id1, attribute: CosemAttributeDescriptor(classID: .profileGeneric, instance: .loadProfile1, attribute: 2),
                                                  accessSelection: AccessSelection(RangeDescriptor(from: from, to: to))))
        let decoded = try DLMSAPDU(exactly: request.encoded)
        guard case .getRequest(.normal(_, _, let access?)) = decoded else { Issue.record(); return }
        #expect(access.range?.from.dateTimeValue == from)
        #expect(access.range?.to.dateTimeValue == to)
        #expect(access.range?.selectedValues == [])
        let entry = AccessSelection(EntryDescriptor(fromEntry: 1, toEntry: 96))
        #expect(entry.entry?.toEntry == 96)
        #expect(entry.range == nil)
    }
}
