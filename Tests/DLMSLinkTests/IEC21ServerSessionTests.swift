import NIOCore
import TestSupport
import Testing
@testable import DLMSLink

/// A device with fixed answers, so the exchanges are byte-exact.
private struct FixedDevice: IEC21ServerDevice {
    func answersSignOn(address: String?) -> Bool { address == nil || address == "SIM00000001" }
    func readoutLines() -> [String] { ["F.F(00000000)", "1.8.0(012345.678*kWh)"] }
    var passwordOperand: String { "SIM00000001" }
    func acceptsPassword(_ password: String) -> Bool { password == "12345678" }
    func read(_ address: String) -> String? { address == "1.8.0" ? "1.8.0(012345.678*kWh)" : nil }
    func readManufacturerSpecific(type: UInt8, data: String) -> [String]? {
        guard type == UInt8(ascii: "5"), data == "P.01(2611260000;2611260030)" else { return nil }
        return ["P.01(0261126000000)(00)(15)(2)(1.5.0)(kW)(2.5.0)(kW)", "(0.412)(0.000)"]
    }
}

private func session() -> IEC21ServerSession {
    IEC21ServerSession(configuration: .init(identification: "SIM00000001"), device: FixedDevice())
}

private func send(_ hex: String) -> IEC21ServerSession.Action { .send(hexBuffer(hex)) }
private func ascii(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

/// The meter side of IEC 62056-21: golden bytes (BCCs worked out by hand and by Python) for
/// the opening, the readout, programming mode and mode E.
@Suite struct IEC21ServerSessionTests {
    static let signOn = ascii("/?!\r\n")
    static let identification = IEC21ServerSession.Action.send(ascii("/SIM5\\2SIM00000001\r\n"))
    /// STX "F.F(00000000)" CR LF "1.8.0(012345.678*kWh)" CR LF "!" CR LF ETX, BCC 0x5A.
    static let readout = "02462e46283030303030303030290d0a312e382e30283031323334352e3637382a6b5768290d0a210d0a035a"
    /// SOH "P0" STX "(SIM00000001)" ETX, BCC 0x36.
    static let passwordOperand = "015030022853494d3030303030303031290336"

    @Test("sign-on, identification, ACK 0 5 0: the readout at 9600 Bd, then back to 300 Bd",
          arguments: Chunking.allCases)
    func modeCReadout(chunking: Chunking) {
        var meter = session()
        let request = Array("/?!\r\n".utf8) + [0x06, 0x30, 0x35, 0x30, 0x0D, 0x0A]
        var actions: [IEC21ServerSession.Action] = []
        for chunk in chunking.chunks(of: request) { actions += meter.receive(ByteBuffer(bytes: chunk)) }
        #expect(actions == [Self.identification, .switchBaudRate(9600), send(Self.readout), .switchBaudRate(300), .ended])
        #expect(meter.isIdle)
    }

    @Test("a sign-on for another address, and noise, get no answer")
    func otherAddress() {
        var meter = session()
        #expect(meter.receive(ascii("\u{7F}xx/?SIM00000002!\r\n")).isEmpty)
        #expect(meter.receive(ascii("/?SIM00000001!\r\n")) == [Self.identification])
    }

    @Test("an option select for a faster rate than offered is capped at the offered one")
    func rateCapped() {
        var meter = session()
        _ = meter.receive(Self.signOn)
        #expect(meter.receive(ByteBuffer(bytes: [0x06, 0x30, 0x36, 0x30, 0x0D, 0x0A])).prefix(1) == [.switchBaudRate(9600)])
    }

    @Test("programming mode: P0, P1 → ACK, R1 → the data set, R5 P.01 → the load profile, B0 → 300 Bd")
    func programming() {
        var meter = session()
        _ = meter.receive(Self.signOn)
        #expect(meter.receive(ByteBuffer(bytes: [0x06, 0x30, 0x35, 0x31, 0x0D, 0x0A])) == [.switchBaudRate(9600), send(Self.passwordOperand)])
        // R1 before the password: refused.
        #expect(meter.receive(hexBuffer("01523102312e382e302829035a")) == [send("02284552524f5229035a")])
        #expect(meter.receive(hexBuffer("01503102283132333435363738290369")) == [send("06")])
        #expect(meter.receive(hexBuffer("01523102312e382e302829035a")) == [send("02312e382e30283031323334352e3637382a6b5768290353")])
        // Unknown address: (ERROR).
        #expect(meter.receive(ascii("\u{01}R1\u{02}9.9.9()\u{03}") + ByteBuffer(bytes: [Array("R1\u{02}9.9.9()\u{03}".utf8).reduce(0, ^)]))
                == [send("02284552524f5229035a")])
        #expect(meter.receive(hexBuffer("01523502502e303128323631313236303030303b32363131323630303330290320")) == [
            send("02502e3031283032363131323630303030303029283030292831352928322928312e352e3029286b572928322e352e3029286b57290d0a28302e3431322928302e303030290379"),
        ])
        #expect(meter.receive(hexBuffer("0142300371")) == [.switchBaudRate(300), .ended])
        #expect(meter.isIdle)
    }

    @Test("programming mode: a wrong BCC gets NAK, a wrong password B0 and the end of the session")
    func programmingErrors() {
        var meter = session()
        _ = meter.receive(Self.signOn)
        _ = meter.receive(ByteBuffer(bytes: [0x06, 0x30, 0x35, 0x31, 0x0D, 0x0A]))
        #expect(meter.receive(hexBuffer("01503102283132333435363738290368")) == [send("15"), ])
        #expect(meter.receive(hexBuffer("01503102283030303030303030290361")) == [send("0142300371"), .switchBaudRate(300), .ended])
        #expect(meter.isIdle)
    }

    @Test("mode E: ACK 2 5 2 hands the line to HDLC at 9600 Bd; the end of HDLC returns to 300 Bd")
    func modeE() {
        var meter = session()
        _ = meter.receive(Self.signOn)
        #expect(meter.receive(ByteBuffer(bytes: [0x06, 0x32, 0x35, 0x32, 0x0D, 0x0A])) == [.switchBaudRate(9600), .enteredHDLC])
        #expect(meter.isInHDLC)
        #expect(meter.receive(hexBuffer("7ea00802232193bd647e")).isEmpty)
        #expect(meter.hdlcEnded() == [.switchBaudRate(300), .ended])
        #expect(meter.receive(Self.signOn) == [Self.identification])
    }

    @Test("a device without mode E does not announce it and refuses 2 Z 2")
    func noModeE() {
        var meter = IEC21ServerSession(configuration: .init(manufacturer: "EMH", supportsModeE: false, identification: "LZQJ"), device: FixedDevice())
        #expect(meter.receive(Self.signOn) == [.send(ascii("/EMH5LZQJ\r\n"))])
        #expect(meter.receive(ByteBuffer(bytes: [0x06, 0x32, 0x35, 0x32, 0x0D, 0x0A])) == [.ended])
        #expect(meter.isIdle)
    }

    @Test("silence ends programming mode and a pending option select")
    func inactivity() {
        var meter = session()
        _ = meter.receive(Self.signOn)
        #expect(meter.inactivityTimeout() == [.ended])
        _ = meter.receive(Self.signOn)
        _ = meter.receive(ByteBuffer(bytes: [0x06, 0x30, 0x35, 0x31, 0x0D, 0x0A]))
        #expect(meter.inactivityTimeout() == [.switchBaudRate(300), .ended])
        #expect(meter.inactivityTimeout().isEmpty)
    }

    @Test("a second sign-on instead of the option select starts over")
    func signOnAgain() {
        var meter = session()
        _ = meter.receive(Self.signOn)
        #expect(meter.receive(Self.signOn) == [Self.identification])
    }
}

private func + (lhs: ByteBuffer, rhs: ByteBuffer) -> ByteBuffer {
    var out = lhs
    out.writeImmutableBuffer(rhs)
    return out
}
