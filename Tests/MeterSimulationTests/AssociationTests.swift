import COSEM
import DLMSCodec
import Foundation
import MeterSimulation
import NIOCore
import Testing

@Suite("Association")
struct AssociationTests {
    func associate(sap: UInt16, _ request: AARQ, meter: SimulatedMeter = makeMeter()) throws -> (COSEMServerSession, AARE) {
        var session = COSEMServerSession(meter: meter, clientSAP: sap)
        guard case .aare(let aare) = try exchange(&session, .aarq(request)) else { throw DLMSTestError("no AARE") }
        return (session, aare)
    }

    @Test func publicClientWithoutAuthentication() throws {
        let meter = makeMeter()
        let (session, aare) = try associate(sap: 16, aarq(maxPDU: 512), meter: meter)
        #expect(aare.isAccepted)
        #expect(session.isAssociated)
        #expect(meter.sessionCount == 1)
        guard case .initiateResponse(let initiate)? = aare.userInformation else { Issue.record("no InitiateResponse"); return }
        #expect(initiate.serverMaxReceivePDUSize == 512)
        #expect(initiate.negotiatedConformance == [.get, .set, .action, .selectiveAccess, .blockTransferWithGetOrRead, .multipleReferences])
        #expect(initiate.negotiatedDLMSVersion == 6)
        #expect(initiate.vaaName == 7)
    }

    @Test func negotiationTakesTheSmallerPDUAndTheCommonConformance() throws {
        let (session, aare) = try associate(sap: 16, aarq(maxPDU: 0xFFFF, conformance: [.get, .blockTransferWithGetOrRead, .dataNotification]))
        guard case .initiateResponse(let initiate)? = aare.userInformation else { Issue.record("no InitiateResponse"); return }
        #expect(initiate.serverMaxReceivePDUSize == 1024)
        #expect(initiate.negotiatedConformance == [.get, .blockTransferWithGetOrRead])
        #expect(session.negotiatedPDUSize == 1024)
    }

    @Test func readingClientWithTheRightPassword() throws {
        let (session, aare) = try associate(sap: 17, aarq(password: "12345678"))
        #expect(aare.isAccepted)
        #expect(session.isAssociated)
    }

    @Test(arguments: [
        (UInt16(17), aarq(password: "wrong"), 13),                                  // authentication-failure
        (UInt16(1), aarq(password: "1234567"), 13),
        (UInt16(17), aarq(), 12),                                                   // mechanism name required
        (UInt16(17), aarq(password: "12345678", mechanism: .highGMAC), 11),         // HLS: not recognised (yet)
        (UInt16(16), aarq(password: "12345678"), 11),                               // the public client takes no password
        (UInt16(42), aarq(), 1),                                                    // unknown client SAP
    ])
    func rejections(sap: UInt16, request: AARQ, diagnostic: Int) throws {
        let meter = makeMeter()
        let (session, aare) = try associate(sap: sap, request, meter: meter)
        #expect(aare.result == .rejectedPermanent)
        #expect(aare.resultSourceDiagnostic == AssociateSourceDiagnostic(source: .serviceUser, value: diagnostic))
        #expect(!session.isAssociated)
        #expect(meter.sessionCount == 0)
    }

    @Test func shortNameReferencingIsNotSupported() throws {
        var request = aarq()
        request.applicationContextName = .shortName
        let (_, aare) = try associate(sap: 16, request)
        #expect(aare.result == .rejectedPermanent)
        #expect(aare.resultSourceDiagnostic.value == 2)
    }

    @Test func refusingMeter() throws {
        let meter = makeMeter { $0.refusesAssociation = true }
        let (session, aare) = try associate(sap: 17, aarq(password: "12345678"), meter: meter)
        #expect(aare.result == .rejectedPermanent)
        #expect(!session.isAssociated)
    }

    @Test func initiateErrors() throws {
        var old = aarq()
        old.userInformation = .initiateRequest(InitiateRequest(proposedDLMSVersion: 5, proposedConformance: .defaultLN, clientMaxReceivePDUSize: 1024))
        let (_, aare) = try associate(sap: 16, old)
        #expect(aare.result == .rejectedPermanent)
        #expect(aare.userInformation == .confirmedServiceError(ConfirmedServiceError(service: 1, errorKind: 6, errorValue: 1)))
        let (_, tiny) = try associate(sap: 16, aarq(maxPDU: 8))
        #expect(tiny.userInformation == .confirmedServiceError(ConfirmedServiceError(service: 1, errorKind: 6, errorValue: 3)))
    }

    @Test func requestsBeforeAssociationAreRefused() throws {
        var session = COSEMServerSession(meter: makeMeter(), clientSAP: 16)
        let response = try exchange(&session, .getRequest(.normal(invokeID: invoke, attribute: clockTime, accessSelection: nil)))
        #expect(response == .exceptionResponse(ExceptionResponse(stateError: 1, serviceError: 1)))
    }

    @Test func releaseAnswersRLRE() throws {
        var session = try associatedSession(makeMeter(), sap: 17)
        let response = try exchange(&session, .rlrq(RLRQ(reason: 0)))
        guard case .rlre(let rlre) = response else { Issue.record("expected RLRE, got \(response)"); return }
        #expect(rlre.release.reason == 0)
        #expect(session.isReleased)
        #expect(!session.isAssociated)
        let after = try exchange(&session, .getRequest(.normal(invokeID: invoke, attribute: clockTime, accessSelection: nil)))
        guard case .exceptionResponse = after else { Issue.record("expected a refusal after release, got \(after)"); return }
    }

    @Test func sessionsAreCountedPerAssociation() throws {
        let meter = makeMeter()
        _ = try associatedSession(meter, sap: 16)
        _ = try associatedSession(meter, sap: 17)
        #expect(meter.sessionCount == 2)
    }
}

/// Gurux 1.0.203 server captures (Tests/DLMSCodecTests/GuruxVectors.swift) next to ours.
@Suite("Gurux golden")
struct GuruxGoldenTests {
    static let noneAARQ = "601DA109060760857405080101BE10040E01000000065F1F0400401E5D0400"
    static let noneAARE = "6129A109060760857405080101A203020100A305A103020100BE10040E0800065F1F0400401E5D04000007"
    static let llsAARQ = "6036A1090607608574050801018A0207808B0760857405080201AC0A80083132333435363738BE10040E01000000065F1F0400401E5D0400"
    static let llsRejectedAARQ = "6033A1090607608574050801018A0207808B0760857405080201AC07800577726F6E67BE10040E01000000065F1F0400401E5DFFFF"
    static let rlreGurux = "630E800100BE0F040E0800065F1F0400401E5D04000007"   // Gurux's BE length is one short
    static let undefinedObjectRequest = "C001C100010000600109FF0200"
    static let undefinedObjectResponse = "C401C10104"

    func answer(_ session: inout COSEMServerSession, _ hex: String) throws -> String {
        let response = session.handle(try ByteBuffer(dlmsHex: hex), now: testNow)
        return try #require(response).dlmsHex.uppercased()
    }

    /// Gurux echoes the client's proposal (401E5D, incl. general-protection and access) as its conformance;
    /// we answer the intersection with what we implement (00121D). Everything else is byte-identical.
    @Test func noAuthenticationAARE() throws {
        var session = COSEMServerSession(meter: makeMeter(), clientSAP: 16)
        let ours = try answer(&session, Self.noneAARQ)
        #expect(ours == Self.noneAARE.replacingOccurrences(of: "401E5D", with: "00121D"))
    }

    @Test func lowLevelSecurityAARE() throws {
        var session = COSEMServerSession(meter: makeMeter(), clientSAP: 17)
        #expect(try answer(&session, Self.llsAARQ) == Self.noneAARE.replacingOccurrences(of: "401E5D", with: "00121D"))
    }

    /// Gurux adds an InitiateResponse to the rejection; we send the ACSE part only, which is identical.
    @Test func wrongPasswordAARE() throws {
        var session = COSEMServerSession(meter: makeMeter(), clientSAP: 17)
        #expect(try answer(&session, Self.llsRejectedAARQ) == "6117A109060760857405080101A203020101A305A10302010D")
    }

    @Test func releaseWithCorrectLengths() throws {
        var session = COSEMServerSession(meter: makeMeter(), clientSAP: 16)
        _ = try answer(&session, Self.noneAARQ)
        #expect(try answer(&session, "6203800100") == "6315800100BE10040E0800065F1F040000121D04000007")
        #expect(Self.rlreGurux.hasPrefix("630E800100BE0F040E0800065F1F04"))
    }

    static let byRangeRequest = "C001C100070100630100FF0201010204020412000809060000010000FF0F02120000090C07E80B1AFF102D0000000000090C07E80B1AFF112D00000000000100"
    static let byEntryRequest = "C001C100070100630100FF020102020406000000010600000004120001120000"
    static let withListRequest = "C003C10300030100010800FF020000080000010000FF020000010000600100FF0200"
    static let withListResponse = "C403C103000500BC614E00090C07E80B1AFF102D0000000000000A0853494D3030303031"

    /// Gurux's client requests for a range (2024-11-26 16:45…17:45, deviation 0) and for entries 1…4,
    /// answered by a meter whose clock reads 2024-11-26 18:00.
    @Test func guruxSelectiveAccessRequests() throws {
        let meter = makeMeter()
        let now = Date(timeIntervalSince1970: 1_732_644_000)
        var session = COSEMServerSession(meter: meter, clientSAP: 17)
        _ = try answer(&session, Self.llsAARQ)
        func rows(_ hex: String) throws -> [[DLMSData]] {
            let response = session.handle(try ByteBuffer(dlmsHex: hex), now: now)
            var pieces = ByteBufferAllocator().buffer(capacity: 0)
            var apdu = try DLMSAPDU(exactly: try #require(response))
            while case .getResponse(.withDataBlock(let id, let block)) = apdu, case .rawData(let bytes) = block.result {
                pieces.writeBytes(bytes.bytes)
                if block.lastBlock { break }
                let next = session.handle(DLMSAPDU.getRequest(.next(invokeID: id, blockNumber: block.blockNumber)).encoded, now: now)
                apdu = try DLMSAPDU(exactly: try #require(next))
            }
            if case .getResponse(.normal(_, .data(let data))) = apdu { data.encode(into: &pieces) }
            return try DLMSData.decode(from: &pieces).elements?.map { $0.elements?.array ?? [] } ?? []
        }
        let start = Date(timeIntervalSince1970: 1_732_639_500)
        #expect(try rows(Self.byRangeRequest) == meter.expectedProfileRows(from: start, to: start.addingTimeInterval(3600)))
        let oldest = Date(timeIntervalSince1970: 1_732_644_000 - 5759 * 900)
        #expect(try rows(Self.byEntryRequest) == meter.expectedProfileRows(from: oldest, to: oldest.addingTimeInterval(3 * 900)))
    }

    /// The same shape as Gurux's GET-with-list answer (register, clock, serial). Gurux's example register
    /// is a double-long (05); ours are double-long-unsigned (06), as the product's registers are.
    @Test func guruxWithList() throws {
        var session = COSEMServerSession(meter: makeMeter(), clientSAP: 17)
        _ = try answer(&session, Self.llsAARQ)
        let response = session.handle(try ByteBuffer(dlmsHex: Self.withListRequest), now: testNow)
        guard case .getResponse(.withList(_, let ours)) = try DLMSAPDU(exactly: try #require(response)),
              case .getResponse(.withList(_, let theirs)) = try DLMSAPDU(exactly: try ByteBuffer(dlmsHex: Self.withListResponse)) else {
            Issue.record("not a with-list response"); return
        }
        func types(_ results: [GetDataResult]) -> [DLMSDataType?] { results.map { if case .data(let d) = $0 { d.type } else { nil } } }
        #expect(types(ours).dropFirst() == types(theirs).dropFirst())
        #expect(types(ours).first == .doubleLongUnsigned)
        let ourHex = try #require(response).dlmsHex.uppercased()
        #expect(ourHex.hasPrefix("C403C103000600"))
        #expect(ourHex.hasSuffix("000A0B53494D3030303030303031"))
    }

    @Test func undefinedObject() throws {
        var session = COSEMServerSession(meter: makeMeter(), clientSAP: 17)
        _ = try answer(&session, Self.llsAARQ)
        #expect(try answer(&session, Self.undefinedObjectRequest) == Self.undefinedObjectResponse)
    }
}
