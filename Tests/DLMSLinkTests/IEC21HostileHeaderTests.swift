import NIOCore
import Testing
@testable import DLMSLink

/// Issue 21 case 1: a `P.01` header whose channel count is near `Int.max` must be refused as
/// malformed, never overflow `4 + 2 × n` and take the process down.
@Suite struct IEC21HostileHeaderTests {
    @Test(arguments: ["4611686018427387904", "9223372036854775807", "4611686018427387903"])
    func hugeChannelCountIsMalformed(count: String) throws {
        let text = "P.01(2611250015)(00)(15)(\(count))(1.5.0)(kW)\r\n(0.250)\r\n"
        #expect(throws: DLMSLinkError.self) { try IEC21LoadProfile.parse(IEC21DataBlock(data: ByteBuffer(string: text))) }
    }
}
