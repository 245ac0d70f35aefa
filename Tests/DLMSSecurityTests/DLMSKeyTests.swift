import DLMSSecurity
import TestSupport
import Testing

@Suite("Key material never shows")
struct DLMSKeyTests {
    static let keyHex = "A1B2C3D4E5F60718293A4B5C6D7E8F90"

    /// Every way a key could reach a log line or a debugger print.
    static func renderings(of value: Any) -> [String] {
        var dumped = ""
        dump(value, to: &dumped)
        return [String(describing: value), String(reflecting: value), "\(value)", dumped,
                Mirror(reflecting: value).children.map { "\($0.label ?? ""): \($0.value)" }.joined(separator: ",")]
    }

    static func containsKey(_ text: String, _ keyHex: String) -> Bool {
        let compact = text.uppercased().filter { $0.isHexDigit }
        // Also the decimal byte list an Array would print ("161, 178, …").
        let decimal = hexBytes(keyHex).map(String.init).joined(separator: ", ")
        return compact.contains(keyHex.uppercased()) || text.contains(decimal)
    }

    @Test("description, debugDescription, reflection and dump redact the bytes")
    func redacted() throws {
        let key = try DLMSKey(hex: Self.keyHex)
        for text in Self.renderings(of: key) {
            #expect(!Self.containsKey(text, Self.keyHex), "key bytes in: \(text)")
        }
        #expect(key.description == "DLMSKey(16 bytes, redacted)")
        // Nested in a cipher and an HLS exchange, too.
        let title = try SystemTitle(hex: "4D4D4D0000BC614E")
        let cipher = DLMSCipher(systemTitle: title, blockCipherKey: key, authenticationKey: key, dedicatedKey: key)
        for text in Self.renderings(of: cipher) + Self.renderings(of: HLSExchange(gmacWith: cipher, ownChallenge: [1], peerChallenge: [2])) {
            #expect(!Self.containsKey(text, Self.keyHex), "key bytes in: \(text)")
        }
    }

    @Test("secrets are redacted like keys")
    func secretRedacted() throws {
        let secret = try DLMSSecret(hex: Self.keyHex)
        for text in Self.renderings(of: secret) + Self.renderings(of: HLSCredentials.secret(secret)) {
            #expect(!Self.containsKey(text, Self.keyHex), "secret bytes in: \(text)")
        }
        let password = try DLMSSecret(text: "Gurux-Pass")
        for text in Self.renderings(of: password) { #expect(!text.contains("Gurux-Pass")) }
    }

    @Test("keys are not Encodable, titles are")
    func notEncodable() throws {
        #expect(!((try DLMSKey(hex: Self.keyHex)) as Any is any Encodable))
        #expect(!((try DLMSSecret(hex: Self.keyHex)) as Any is any Encodable))
        #expect((try SystemTitle(hex: "4D4D4D0000BC614E")) as Any is any Encodable)
    }

    @Test("bytes only through withUnsafeBytes")
    func withUnsafeBytes() throws {
        let key = try DLMSKey(hex: Self.keyHex)
        #expect(key.withUnsafeBytes { Array($0) } == hexBytes(Self.keyHex))
        #expect(key.count == 16)
        #expect(try DLMSKey(bytes: [UInt8](repeating: 7, count: 32)).count == 32)
        #expect(key == (try DLMSKey(bytes: hexBytes(Self.keyHex))))
        #expect(key != (try DLMSKey(bytes: [UInt8](repeating: 7, count: 16))))
    }

    @Test("wrong lengths and bad hex are refused without quoting the input",
          arguments: ["", "00", "A1B2C3D4E5F60718293A4B5C6D7E8F", "A1B2C3D4E5F60718293A4B5C6D7E8F9000",
                      "A1B2C3D4E5F60718293A4B5C6D7E8F9G", "A1B2C3D4E5F60718293A4B5C6D7E8F9", "0x" + keyHex])
    func invalidKeys(text: String) throws {
        let error = try #require(throws: DLMSSecurityError.self) { try DLMSKey(hex: text) }
        #expect(error.code == .invalidKey)
        #expect(!error.isRetriable)
        if text.count > 4 { #expect(!error.description.contains(text)) }
    }

    @Test("key byte lengths", arguments: [0, 1, 15, 17, 24, 31, 33, 64])
    func invalidLengths(count: Int) {
        #expect(throws: DLMSSecurityError.invalidKey("")) { try DLMSKey(bytes: [UInt8](repeating: 1, count: count)) }
    }

    @Test("system titles: 8 bytes, hex, printable")
    func systemTitles() throws {
        let title = try SystemTitle(hex: "4d4d4d0000bc614e")
        #expect(title.description == "4D4D4D0000BC614E")
        #expect(title.bytes.count == 8)
        #expect(throws: DLMSSecurityError.invalidArgument("")) { try SystemTitle(hex: "4D4D4D0000BC61") }
        #expect(throws: DLMSSecurityError.invalidArgument("")) { try SystemTitle(hex: "4D4D4D0000BC614E00") }
        #expect(throws: DLMSSecurityError.invalidArgument("")) { try SystemTitle(hex: "XYZ") }
    }

    @Test("security control byte bits")
    func securityControl() {
        let sc = SecurityControl(rawValue: 0x31)
        #expect(sc.suite == 1 && sc.isAuthenticated && sc.isEncrypted && !sc.usesBroadcastKey && !sc.isCompressed)
        #expect(SecurityControl(suite: 2, authenticated: true, encrypted: false, broadcastKey: true, compressed: true).rawValue == 0xD2)
        #expect(SecurityControl.authenticated.rawValue == 0x10)
        #expect(SecurityControl.encrypted.rawValue == 0x20)
        #expect(SecurityControl.authenticatedAndEncrypted.rawValue == 0x30)
        #expect(SecurityPolicy.authenticatedAndEncrypted.securityControl() == .authenticatedAndEncrypted)
        #expect(SecurityPolicy.authenticated.isSatisfied(by: .authenticatedAndEncrypted))
        #expect(!SecurityPolicy.authenticatedAndEncrypted.isSatisfied(by: .authenticated))
        #expect(!SecurityPolicy.authenticatedAndEncrypted.isSatisfied(by: .encrypted))
        #expect(!SecurityPolicy.encrypted.isSatisfied(by: .authenticated))
    }
}
