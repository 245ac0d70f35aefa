import COSEM
import NIOCore
import TestSupport
import Testing
@testable import DLMSLink

@Suite struct IEC21SessionTests {
    @Test(arguments: Chunking.allCases)
    func modeCReadout(_ chunking: Chunking) throws {
        var session = IEC21Session(configuration: .init(address: "12345678", maximumBaudRate: 4800))
        #expect(try session.start() == [.send(hexBuffer("2F3F3132333435363738210D0A")), .startTimer(.seconds(5))])
        var actions: [IEC21Session.Action] = []
        // Echo of our request (two-wire line), then the identification offering 9600 Bd.
        for chunk in chunking.chunks(of: Array("/?12345678!\r\n/LGZ5ZMD3104407.B32\r\n".utf8)) {
            actions += session.receive(ByteBuffer(dlmsBytes: chunk))
        }
        #expect(actions.contains(.send(hexBuffer("063034300D0A"))))   // ACK 0 4 0: 4800 Bd, readout
        #expect(actions.contains(.switchBaudRate(4800)))
        actions = []
        for chunk in chunking.chunks(of: hexBytes(IEC21Tests.readout)) {
            actions += session.receive(ByteBuffer(dlmsBytes: chunk))
        }
        guard case .deliver(let block)? = actions.first(where: { if case .deliver = $0 { true } else { false } }) else {
            Issue.record("no readout"); return
        }
        #expect(try block.dataSets().count == 5)
        #expect(actions.last == .closed(nil))
    }

    @Test func modeESwitchesToHDLC() throws {
        var session = IEC21Session(configuration: .init(mode: .hdlc))
        _ = try session.start()
        let actions = session.receive(ByteBuffer(string: "/ISK5\\2MT382-1000\r\n"))
        #expect(actions.contains(.send(hexBuffer("063235320D0A"))))   // ACK 2 5 2
        #expect(actions.contains(.switchBaudRate(9600)))
        #expect(actions.contains(.enteredHDLC))
        #expect(actions.last == .closed(nil))
    }

    @Test func modeERequiresCapability() throws {
        var session = IEC21Session(configuration: .init(mode: .hdlc))
        _ = try session.start()
        let actions = session.receive(ByteBuffer(string: "/LGZ5ZMD3104407.B32\r\n"))
        #expect(actions.last == .closed(.unsupported("")))
    }

    @Test func silenceAndBadBCC() throws {
        var silent = IEC21Session(configuration: .init())
        _ = try silent.start()
        #expect(silent.timerFired().last == .closed(.timeout("")))

        var session = IEC21Session(configuration: .init())
        _ = try session.start()
        _ = session.receive(ByteBuffer(string: "/LGZ5ZMD3104407.B32\r\n"))
        let actions = session.receive(hexBuffer(String(IEC21Tests.readout.dropLast(2)) + "00"))
        #expect(actions.last == .closed(.checksumMismatch("")))
    }
}
