import COSEM
import NIOCore
import Testing

@Suite struct OBISCodeTests {
    @Test(arguments: [
        ("1.0.1.8.0.255", OBISCode(1, 0, 1, 8, 0, 255)),
        ("1-0:1.8.0*255", OBISCode(1, 0, 1, 8, 0, 255)),
        ("1-0:1.8.0&255", OBISCode(1, 0, 1, 8, 0, 255)),
        ("1-0:99.1.0", OBISCode(1, 0, 99, 1, 0, 255)),
        ("0.0.96.3.10.255", OBISCode.disconnectControl),
        ("0-0:1.0.0*255", OBISCode.clock),
        ("0.0.0.0.0.0", OBISCode(0, 0, 0, 0, 0, 0)),
    ])
    func parses(text: String, expected: OBISCode) throws {
        #expect(try OBISCode(parsing: text) == expected)
    }

    @Test func printsBothForms() {
        let code = OBISCode(1, 0, 1, 8, 0, 255)
        #expect(code.description == "1.0.1.8.0.255")
        #expect(code.standardDescription == "1-0:1.8.0*255")
        #expect(OBISCode(code.description) == code)
        #expect(OBISCode(code.standardDescription) == code)
    }

    @Test(arguments: ["", "1.0.1.8.0", "1.0.1.8.0.256", "1.0.1.8.0.255.1", "1..1.8.0.255", "1-0:1.8", "a.b.c.d.e.f",
                      "1:0-1.8.0*255", "1.0.1.8.0.255.", "1-0:1.8.0*", "99999999999999999999.0.0.0.0.0"])
    func rejects(text: String) {
        #expect(throws: DLMSError.invalidOBISCode("")) { try OBISCode(parsing: text) }
    }

    @Test func wireForm() throws {
        var buffer = ByteBuffer(dlmsBytes: [0x01, 0x00, 0x01, 0x08, 0x00, 0xFF])
        let code = try OBISCode.decode(from: &buffer)
        #expect(code == .activeEnergyImport)
        var out = ByteBuffer()
        code.encode(into: &out)
        #expect(Array(out.readableBytesView) == [0x01, 0x00, 0x01, 0x08, 0x00, 0xFF])
        var short = ByteBuffer(dlmsBytes: [1, 2, 3])
        #expect(throws: DLMSError.truncated("")) { try OBISCode.decode(from: &short) }
    }
}

@Suite struct DLMSErrorTests {
    @Test func equalityComparesCodeOnly() {
        #expect(DLMSError.truncated("a") == DLMSError.truncated("b"))
        #expect(DLMSError.truncated("a") != DLMSError.invalidValue("a"))
    }

    @Test func capturesLocation() {
        let error = DLMSError.timeout("no answer")
        #expect(error.file.hasSuffix("OBISCodeTests.swift"))
        #expect(error.line > 0)
        #expect(error.description.contains("no answer"))
    }

    @Test func retriable() {
        #expect(DLMSError.timeout("").isRetriable)
        #expect(DLMSError.connectionClosed("").isRetriable)
        #expect(!DLMSError.accessDenied("").isRetriable)
        #expect(!DLMSError.truncated("").isRetriable)
    }
}

@Suite struct UnitTests {
    @Test func table() {
        #expect(DLMSUnit.wattHour.symbol == "Wh")
        #expect(DLMSUnit(30).quantity == "active energy")
        #expect(DLMSUnit(27).symbol == "W")
        #expect(DLMSUnit(35).symbol == "V")
        #expect(DLMSUnit(33).symbol == "A")
        #expect(DLMSUnit(13).symbol == "m³")
        #expect(DLMSUnit(255).quantity == "count (no unit)")
        #expect(DLMSUnit(200).symbol == nil)
        #expect(DLMSUnit(200).description == "unit(200)")
    }

    @Test func scaler() {
        #expect(ScalerUnit(scaler: -3, unit: .wattHour).scale(12345) == 12.345)
        #expect(ScalerUnit(scaler: 2, unit: .wattHour).scale(7) == 700)
        #expect(ScalerUnit(scaler: 0, unit: .volt).scale(230) == 230)
        #expect(ScalerUnit(scaler: -3, unit: .wattHour).scale(5_985_744) == 5985.744)
    }
}
