import COSEM
import NIOCore
import TestSupport
import Testing
@testable import DLMSLink

/// IEC 62056-21 programming mode (§6.3.5–6.3.8) and the `P.01` load-profile extension. The
/// BCCs in the vectors were computed by hand (XOR after SOH/STX through ETX), not by our code.
@Suite struct IEC21ProgrammingTests {
    /// `SOH P 0 STX (12345678) ETX BCC`: the device's password prompt with its serial as operand.
    static let passwordPrompt = "01503002283132333435363738290368"
    /// `SOH P 1 STX (00000000) ETX BCC`.
    static let passwordMessage = "01503102283030303030303030290361"
    /// `SOH R 1 STX 1.8.0() ETX BCC`.
    static let readRegister = "01523102312E382E302829035A"
    /// `SOH B 0 ETX q`: the complete sign-off of the standard's examples.
    static let exit = "0142300371"

    /// A session in programming mode, past the password.
    static func openSession(password: String? = "00000000") throws -> (IEC21Session, [IEC21Session.Action]) {
        var session = IEC21Session(configuration: .init(mode: .programming(password: password), responseTimeout: .seconds(2)))
        _ = try session.start()
        var actions = session.receive(ByteBuffer(string: "/EMH5\\@ED300L\r\n"))
        #expect(actions.contains(.send(hexBuffer("063035310D0A"))))   // ACK 0 5 1: 9600 Bd, programming
        #expect(actions.contains(.switchBaudRate(9600)))
        actions = session.receive(hexBuffer(passwordPrompt))
        return (session, actions)
    }

    @Test(arguments: Chunking.allCases)
    func passwordThenRegisterRead(_ chunking: Chunking) throws {
        var (session, actions) = try Self.openSession()
        #expect(actions == [.send(hexBuffer(Self.passwordMessage)), .startTimer(.seconds(2))])
        actions = session.receive(ByteBuffer(bytes: [0x06]))
        #expect(actions == [.cancelTimer, .enteredProgramming(operand: "12345678")])
        #expect(session.isReadyForCommand)

        #expect(try session.command(.read("1.8.0")) == [.send(hexBuffer(Self.readRegister)), .startTimer(.seconds(2))])
        #expect(!session.isReadyForCommand)
        var answer = ByteBuffer()
        IEC21DataBlock(data: ByteBuffer(string: "1.8.0(001234.567*kWh)")).encode(into: &answer)
        actions = []
        for chunk in chunking.chunks(of: Array(answer.readableBytesView)) {
            actions += session.receive(ByteBuffer(bytes: chunk))
        }
        guard case .reply(.data(let block))? = actions.last else { Issue.record("no reply in \(actions)"); return }
        #expect(try block.dataSets() == [IEC21DataSet(address: "1.8.0", values: [.init(value: "001234.567", unit: "kWh")])])
        #expect(session.isReadyForCommand)
        #expect(session.exit() == [.cancelTimer, .send(hexBuffer(Self.exit)), .closed(nil)])
    }

    @Test func noPasswordAsked() throws {
        let (session, actions) = try Self.openSession(password: nil)
        #expect(actions == [.cancelTimer, .enteredProgramming(operand: "12345678")])
        #expect(session.isReadyForCommand)
    }

    @Test func commandDecoderReadsPromptAndExit() throws {
        var bytes = hexBuffer(Self.passwordPrompt + Self.exit)
        #expect(try IEC21Command.decode(from: &bytes) == IEC21Command(.password, type: UInt8(ascii: "0"), data: "(12345678)"))
        #expect(try IEC21Command.decode(from: &bytes) == .exit)
        #expect(bytes.readableBytes == 0)
        var bad = hexBuffer("0142300372")
        #expect(throws: DLMSLinkError.checksumMismatch("")) { try IEC21Command.decode(from: &bad) }
        var partial = hexBuffer("01503002283132")
        #expect(try IEC21Command.decode(from: &partial) == nil)
    }

    @Test func wrongPasswordIsRefused() throws {
        // A device that answers NAK every time: the password goes out three times, then fails.
        var (session, _) = try Self.openSession()
        #expect(session.receive(ByteBuffer(bytes: [0x15])) == [.send(hexBuffer(Self.passwordMessage)), .startTimer(.seconds(2))])
        #expect(session.receive(ByteBuffer(bytes: [0x15])) == [.send(hexBuffer(Self.passwordMessage)), .startTimer(.seconds(2))])
        #expect(session.receive(ByteBuffer(bytes: [0x15])).last == .closed(.refused("")))

        // A device that leaves programming mode with B0.
        var other = try Self.openSession().0
        #expect(other.receive(hexBuffer(Self.exit)).last == .closed(.refused("")))

        // A device that answers an error message.
        var third = try Self.openSession().0
        var error = ByteBuffer()
        IEC21DataBlock(data: ByteBuffer(string: "(ERROR)")).encode(into: &error)
        #expect(third.receive(error).last == .closed(.refused("")))
    }

    @Test func partialBlocksAreJoined() throws {
        var (session, _) = try Self.openSession()
        _ = session.receive(ByteBuffer(bytes: [0x06]))
        _ = try session.command(.read("P.01"))
        var first = ByteBuffer()
        IEC21DataBlock(data: ByteBuffer(string: "P.01(2611250015)(00)(15)(1)(1.5.0)(kW)\r\n"), isPartial: true).encode(into: &first)
        // §6.3.8: ACK asks for the next block.
        #expect(session.receive(first) == [.send(ByteBuffer(bytes: [0x06])), .startTimer(.seconds(2))])
        var second = ByteBuffer()
        IEC21DataBlock(data: ByteBuffer(string: "(0.250)\r\n")).encode(into: &second)
        guard case .reply(.data(let block))? = session.receive(second).last else { Issue.record("no reply"); return }
        let profile = try IEC21LoadProfile.parse(block)
        #expect(profile.rows.map(\.values) == [["0.250"]])
    }

    @Test func silentDeviceTimesOut() throws {
        var (session, _) = try Self.openSession()
        #expect(session.timerFired().last == .closed(.timeout("")))
        var commandSession = try Self.openSession().0
        _ = commandSession.receive(ByteBuffer(bytes: [0x06]))
        _ = try commandSession.command(.read("1.8.0"))
        #expect(commandSession.timerFired().last == .closed(.timeout("")))
        #expect(throws: DLMSLinkError.invalidState("")) { try commandSession.command(.read("1.8.0")) }
    }

    // MARK: - Load profile

    @Test func loadProfileRequest() throws {
        let from = IEC21Timestamp(year: 2026, month: 11, day: 25, hour: 0, minute: 0)
        let to = IEC21Timestamp(year: 2026, month: 11, day: 25, hour: 1, minute: 0)
        var out = ByteBuffer()
        try IEC21LoadProfile.request(from: from, to: to).encode(into: &out)
        #expect(out == hexBuffer("01523502502E303128323631313235303030303B32363131323530313030290322"))
        #expect(try IEC21LoadProfile.request(from: from, to: to, format: .seasonPrefixed).data == "P.01(0261125000000;0261125010000)")
    }

    @Test func loadProfileParsesBlocksAndGaps() throws {
        let text = """
            P.01(0261125001500)(08)(15)(2)(1.5.0)(kW)(2.5.0)(kW)\r
            (0.250)(0.000)\r
            (0.500)(0.010)\r
            P.01(2611250115)(00)(15)(2)(1.5.0)(kW)(2.5.0)(kW)\r
            (1.000)(0.000)\r

            """
        let profile = try IEC21LoadProfile.parse(IEC21DataBlock(data: ByteBuffer(string: text)))
        #expect(profile.channels == [.init(address: "1.5.0", unit: "kW"), .init(address: "2.5.0", unit: "kW")])
        #expect(profile.periodMinutes == 15)
        #expect(profile.rows.map(\.time.description) == ["0261125001500", "0261125003000", "0261125011500"])
        #expect(profile.rows.map(\.status) == ["08", nil, "00"])
        #expect(profile.rows[1].values == ["0.500", "0.010"])
        #expect(profile.rows[2].time.secondsSince1970 == 1_795_569_300)   // 2026-11-25T01:15:00Z
    }

    @Test(arguments: [
        "P.01(ERROR)\r\n",
        "(ERROR)\r\n",
    ])
    func loadProfileErrorIsRefused(_ text: String) {
        #expect(throws: DLMSLinkError.refused("")) { try IEC21LoadProfile.parse(IEC21DataBlock(data: ByteBuffer(string: text))) }
    }

    @Test(arguments: [
        "(0.250)(0.000)\r\n",                                           // values before a header
        "P.01(2611250015)(00)(15)(2)(1.5.0)(kW)\r\n",                   // 2 channels announced, 1 described
        "P.01(2611250015)(00)(15)(1)(1.5.0)(kW)\r\n(1)(2)\r\n",         // a row with too many values
        "P.01(2613250015)(00)(15)(1)(1.5.0)(kW)\r\n",                   // month 13
        "P.01(2611250015)(00)(0)(1)(1.5.0)(kW)\r\n",                    // period 0
    ])
    func malformedLoadProfileIsRefused(_ text: String) {
        #expect(throws: DLMSLinkError.self) { try IEC21LoadProfile.parse(IEC21DataBlock(data: ByteBuffer(string: text))) }
    }

    @Test func emptyAnswerHasNoRows() throws {
        #expect(try IEC21LoadProfile.parse(IEC21DataBlock(data: ByteBuffer(string: "P.01()\r\n"))).rows.isEmpty)
    }

    @Test(arguments: [Int64(0), 951_782_400, 1_795_569_300, 4_107_542_399])
    func timestampCivilConversionRoundTrips(_ seconds: Int64) {
        let time = IEC21Timestamp(secondsSince1970: seconds)
        #expect(time.secondsSince1970 == seconds)
    }
}
