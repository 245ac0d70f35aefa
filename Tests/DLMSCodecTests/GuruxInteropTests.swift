import COSEM
import DLMSCodec
import NIOCore
import TestSupport
import Testing

/// APDUs captured from Gurux (gurux-dlms 1.0.203) client and server talking to each other
/// (Tests/Interop/capture_gurux.py).
@Suite struct GuruxInteropTests {
    /// Gurux encodes its RLRE with a user-information length one short of its contents
    /// (`630E … BE0F 040E …`); we reject it with a typed error instead of guessing.
    static let knownMalformed: Set<String> = ["none.rlre.response", "lls.rlre.response"]

    /// Gurux's server answers a failed ACTION with `C7 01 id result` and no return-parameters
    /// presence flag; we accept that and re-encode the flag (one more byte, `00`).
    static let missingActionFlag: Set<String> = [
        "none.action.disconnect.remote_disconnect.response", "none.action.disconnect.remote_reconnect.response", "none.action.register.reset.response",
    ]

    /// Gurux's server put two APDUs into one wrapper frame here (the first data block, then an
    /// error GET-Response for its own aborted transaction).
    static let twoAPDUs: Set<String> = ["block.get.profile.buffer.response"]

    static var wellFormed: [(name: String, hex: String)] {
        guruxVectors.filter { !knownMalformed.contains($0.name) && !missingActionFlag.contains($0.name) && !twoAPDUs.contains($0.name) }
    }

    @Test(arguments: wellFormed.map(\.name))
    func roundTripsByteForByte(name: String) throws {
        let hex = guruxVectors.first { $0.name == name }!.hex
        try roundTrip(hex)
    }

    @Test(arguments: Array(missingActionFlag))
    func acceptsActionResponseWithoutPresenceFlag(name: String) throws {
        let hex = guruxVectors.first { $0.name == name }!.hex
        let apdu = try DLMSAPDU(exactly: hexBuffer(hex))
        guard case .actionResponse(.normal(_, let response)) = apdu else { Issue.record("not an action response"); return }
        #expect(response.returnParameters == nil)
        #expect(apdu.encoded.dlmsHex == hex + "00")
    }

    @Test func twoAPDUsInOneFrame() throws {
        var buffer = hexBuffer(guruxVectors.first { Self.twoAPDUs.contains($0.name) }!.hex)
        let original = buffer
        let first = try DLMSAPDU.decode(from: &buffer)
        let second = try DLMSAPDU.decode(from: &buffer)
        #expect(buffer.readableBytes == 0)
        var out = first.encoded
        var tail = second.encoded
        out.writeBuffer(&tail)
        #expect(out == original)
        guard case .getResponse(.withDataBlock(_, let block)) = first, case .rawData(let raw) = block.result else { Issue.record(); return }
        #expect(block.blockNumber == 1 && !block.lastBlock)
        #expect(raw.bytes.prefix(2) == [0x01, 0x18])  // the start of an array of 24 rows
        #expect(second == DLMSAPDU.getResponse(.normal(invokeID: InvokeIDAndPriority(rawValue: 0xC1), result: .dataAccessResult(.hardwareFault))))
    }

    @Test(arguments: Array(knownMalformed))
    func rejectsGuruxRLRELengthBug(name: String) {
        let hex = guruxVectors.first { $0.name == name }!.hex
        #expect(throws: DLMSError.lengthLimitExceeded("")) { try DLMSAPDU(exactly: hexBuffer(hex)) }
    }

    func vector(_ name: String) throws -> DLMSAPDU { try DLMSAPDU(exactly: hexBuffer(guruxVectors.first { $0.name == name }!.hex)) }

    @Test func aarqNoAuthentication() throws {
        guard case .aarq(let aarq) = try vector("none.aarq.request") else { Issue.record("not an AARQ"); return }
        #expect(aarq.applicationContextName == .logicalName)
        #expect(aarq.mechanismName == nil)
        guard case .initiateRequest(let ir) = aarq.userInformation else { Issue.record("no InitiateRequest"); return }
        #expect(ir.proposedDLMSVersion == 6)
        #expect(ir.clientMaxReceivePDUSize == 1024)
        #expect(ir.proposedConformance.contains(.get))
        #expect(ir.proposedConformance.contains(.blockTransferWithGetOrRead))
    }

    @Test func aarqLowLevelSecurity() throws {
        guard case .aarq(let aarq) = try vector("lls.aarq.request") else { Issue.record("not an AARQ"); return }
        #expect(aarq.mechanismName == .low)
        #expect(aarq.senderACSERequirements == [0x07, 0x80])
        #expect(aarq.callingAuthenticationValue == .charString(DLMSBytes(Array("12345678".utf8))))
    }

    @Test func aareAcceptedAndRejected() throws {
        guard case .aare(let ok) = try vector("none.aare.response") else { Issue.record("not an AARE"); return }
        #expect(ok.isAccepted)
        guard case .initiateResponse(let resp) = ok.userInformation else { Issue.record("no InitiateResponse"); return }
        #expect(resp.vaaName == 0x0007)
        #expect(resp.serverMaxReceivePDUSize == 1024)

        guard case .aare(let rejected) = try vector("lls_rejected.aare.response") else { Issue.record("not an AARE"); return }
        #expect(!rejected.isAccepted)
        #expect(rejected.result == .rejectedPermanent)
        #expect(rejected.resultSourceDiagnostic.reason == "authentication-failure")
        #expect(rejected.resultDescription == "rejected-permanent (acse-service-user: authentication-failure)")
    }

    @Test func getResponses() throws {
        guard case .getResponse(.normal(_, .data(let value))) = try vector("none.get.register.value.response") else { Issue.record(); return }
        #expect(value == .int32(12_345_678))
        guard case .getResponse(.normal(_, .data(let su))) = try vector("none.get.register.scaler_unit.response") else { Issue.record(); return }
        #expect(su == .structure([.int8(-3), .enumerated(30)]))
        guard case .getResponse(.normal(_, .dataAccessResult(let r))) = try vector("none.get.undefined_object.response") else { Issue.record(); return }
        #expect(r == .objectUndefined)
        guard case .getResponse(.withList(_, let results)) = try vector("none.get.with_list.response") else { Issue.record(); return }
        #expect(results.count == 3)
    }

    @Test func selectiveAccessRequests() throws {
        guard case .getRequest(.normal(_, let attribute, let access?)) = try vector("none.get.profile.by_range.request") else { Issue.record(); return }
        #expect(attribute.instance == .loadProfile1)
        let range = try #require(access.range)
        #expect(range.restrictingObject.logicalName == .clock)
        #expect(range.from.dateTimeValue?.time.hour == 16)
        guard case .getRequest(.normal(_, _, let entryAccess?)) = try vector("none.get.profile.by_entry.request") else { Issue.record(); return }
        #expect(entryAccess.entry == EntryDescriptor(fromEntry: 1, toEntry: 4, fromSelectedValue: 1, toSelectedValue: 0))
    }

    @Test func dataNotification() throws {
        guard case .dataNotification(let n) = try vector("push.data_notification#0") else { Issue.record(); return }
        #expect(n.cosemDateTime?.date.year == 2024)
        #expect(n.body.elements?.count == 2)
    }
}
