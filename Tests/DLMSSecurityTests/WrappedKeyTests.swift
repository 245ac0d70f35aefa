import COSEM
import Foundation
import Testing
@testable import DLMSSecurity

/// Keys travel wrapped (RFC 3394 AES key wrap) with a master key.
@Suite struct WrappedKeyTests {
    static let master = try! MasterKey(id: "m1", hex: "000102030405060708090A0B0C0D0E0F")

    @Test("RFC 3394 §4.1: 128-bit key data with a 128-bit KEK")
    func rfc3394Vector() throws {
        let key = try DLMSKey(hex: "00112233445566778899AABBCCDDEEFF")
        let wrapped = try WrappedDLMSKey(wrapping: key, with: Self.master)
        #expect(wrapped.wrapped == Hex.decode("1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"))
        #expect(try wrapped.unwrap(with: Self.master) == key)
    }

    @Test("JSON round trip carries only ciphertext; the wrong master key or altered bytes are refused")
    func refusals() throws {
        let key = try DLMSKey(hex: "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
        let wrapped = try WrappedDLMSKey(wrapping: key, with: Self.master)
        let json = String(decoding: try JSONEncoder().encode(wrapped), as: UTF8.self)
        #expect(!json.uppercased().contains("D0D1D2D3"))
        let decoded = try JSONDecoder().decode(WrappedDLMSKey.self, from: Data(json.utf8))
        #expect(try decoded.unwrap(with: Self.master) == key)

        let otherID = try MasterKey(id: "m2", hex: "000102030405060708090A0B0C0D0E0F")
        #expect(throws: DLMSSecurityError.invalidKey("")) { try wrapped.unwrap(with: otherID) }
        let otherMaterial = try MasterKey(id: "m1", hex: "0F0E0D0C0B0A09080706050403020100")
        #expect(throws: DLMSSecurityError.authenticationFailed("")) { try wrapped.unwrap(with: otherMaterial) }
        for index in wrapped.wrapped.indices {
            var altered = wrapped
            altered.wrapped[index] ^= 0x40
            #expect(throws: DLMSSecurityError.authenticationFailed("")) { try altered.unwrap(with: Self.master) }
        }
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(WrappedDLMSKey.self, from: Data(#"{"masterKeyID":"m1","wrapped":"00"}"#.utf8))
        }
        #expect(!"\(Self.master)".contains("0001020304") && !String(reflecting: Self.master).contains("0001020304"))
    }
}
