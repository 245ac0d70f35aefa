import DLMSClient
import DLMSLink
import Foundation
import Testing

@Suite("Manufacturer profiles")
struct ManufacturerProfileTests {
    @Test("a profile file sets the quirks; missing keys keep the defaults")
    func decodesFile() throws {
        let json = #"{"name":"acme","serverAddressSize":4,"sendsSNRMParameters":false,"maximumInformationLength":256,"releaseMode":"disc-only"}"#
        let profile = try JSONDecoder().decode(ManufacturerProfile.self, from: Data(json.utf8))
        #expect(profile.serverAddressSize == .four)
        #expect(profile.sendsSNRMParameters == false)
        #expect(profile.hdlcParameters.maximumInformationLengthReceive == 256)
        #expect(profile.hdlcParameters.windowSizeReceive == 1)
        #expect(profile.releaseMode == .disconnectOnly)
        #expect(profile.maximumReceivePDUSize == 0xFFFF)
        let again = try JSONDecoder().decode(ManufacturerProfile.self, from: JSONEncoder().encode(profile))
        #expect(again == profile)
    }

    @Test("invalid profile files are refused with the reason", arguments: [
        #"{"serverAddressSize":4}"#,
        #"{"name":"x","serverAddressSize":3}"#,
        #"{"name":"x","maximumInformationLength":5000}"#,
        #"{"name":"x","releaseMode":"never"}"#,
    ])
    func refusesInvalid(json: String) {
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(ManufacturerProfile.self, from: Data(json.utf8)) }
    }

    @Test("the profile shapes the HDLC link: four-byte server address, no SNRM parameters")
    func hdlcConfiguration() throws {
        let connection = MeterConnection(endpoint: .tcp(host: "127.0.0.1", port: 4059), framing: .hdlc, clientSAP: 1,
                                         serverPhysicalAddress: 0x1234, profile: .fourByteAddressNoSNRMParameters)
        let link = try connection.hdlcConfiguration()
        #expect(link.serverAddress.size == .four)
        #expect(link.serverAddress.lower == 0x1234)
        #expect(link.sendsParameters == false)
        let missingPhysical = MeterConnection(endpoint: .tcp(host: "127.0.0.1", port: 4059), framing: .hdlc, profile: .fourByteAddressNoSNRMParameters)
        #expect(throws: DLMSClientError.self) { try missingPhysical.hdlcConfiguration() }
    }
}
