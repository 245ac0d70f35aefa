import COSEM
import Foundation
import DLMSCodec
import DLMSSecurity
import NIOCore
import Testing
import TestSupport

@Suite("Ciphered APDUs: tags, round trips and refusals")
struct DLMSCipherTests {
    static let dedicatedKey = try! DLMSKey(hex: "00112233445566778899AABBCCDDEEFF")
    static let policies: [SecurityPolicy] = [.authenticated, .encrypted, .authenticatedAndEncrypted]

    /// Plain APDUs of each service with a service-specific ciphered form (Green Book 9.5).
    static let plainAPDUs: [(name: String, hex: String, glo: UInt8, ded: UInt8)] = [
        ("initiate-request", "01011000112233445566778899AABBCCDDEEFF0000065F1F0400007E1F04B0", 0x21, 0x41),
        ("initiate-response", "0800065F1F0400001E1D04C80007", 0x28, 0x48),
        ("confirmed-service-error", "0E010601", 0x2E, 0x4E),
        ("get-request", "C0010000080000010000FF0200", 0xC8, 0xD0),
        ("set-request", "C101C100030100020800FF02000500000007", 0xC9, 0xD1),
        ("event-notification", "C200000100000600FF020011FF", 0xCA, 0xD2),
        ("action-request", "C301C10046000060030AFF01010F00", 0xCB, 0xD3),
        ("get-response", "C401C1000500BC614E", 0xCC, 0xD4),
        ("set-response", "C501C101", 0xCD, 0xD5),
        ("action-response", "C701C101", 0xCF, 0xD7),
    ]

    @Test("tag lookups agree with the Green Book 9.5 table for every byte")
    func tagLookupsForEveryByte() {
        let table: [(plain: UInt8, global: UInt8, dedicated: UInt8)] = [
            (0x01, 0x21, 0x41), (0x05, 0x25, 0x45), (0x06, 0x26, 0x46), (0x08, 0x28, 0x48), (0x0C, 0x2C, 0x4C),
            (0x0D, 0x2D, 0x4D), (0x0E, 0x2E, 0x4E), (0x16, 0x36, 0x56), (0x18, 0x38, 0x58), (0xC0, 0xC8, 0xD0),
            (0xC1, 0xC9, 0xD1), (0xC2, 0xCA, 0xD2), (0xC3, 0xCB, 0xD3), (0xC4, 0xCC, 0xD4), (0xC5, 0xCD, 0xD5),
            (0xC7, 0xCF, 0xD7),
        ]
        for byte in UInt8.min...UInt8.max {
            let plainRow = table.first { $0.plain == byte }
            #expect(CipheringKind.global.cipheredTag(forPlainTag: byte) == plainRow?.global)
            #expect(CipheringKind.dedicated.cipheredTag(forPlainTag: byte) == plainRow?.dedicated)
            let cipheredRow = table.first { $0.global == byte || $0.dedicated == byte }
            #expect(CipheringKind.plainTag(forCipheredTag: byte) == cipheredRow?.plain)
            let kind: CipheringKind? = byte == 0xDB ? .generalGlobal : byte == 0xDC ? .generalDedicated
                : cipheredRow.map { $0.global == byte ? .global : .dedicated }
            #expect(CipheringKind(cipheredTag: byte) == kind, "tag \(byte)")
            // The codec also takes the glo-/ded- tags of the unassigned plain tag C6.
            #expect(CipheredAPDU.isCipheredTag(byte) == (cipheredRow != nil || [0xCE, 0xD6, 0xDB, 0xDC].contains(byte)), "tag \(byte)")
        }
    }

    @Test("each plain APDU gets its glo-/ded- tag and comes back unchanged", arguments: plainAPDUs)
    func serviceSpecificTags(apdu: (name: String, hex: String, glo: UInt8, ded: UInt8)) throws {
        let (client, server) = greenBookPair(dedicatedKey: Self.dedicatedKey)
        let plain = hexBytes(apdu.hex)
        for (kind, tag) in [(CipheringKind.global, apdu.glo), (.dedicated, apdu.ded)] {
            let ciphered = try client.protect(plain, kind: kind, invocationCounter: 42)
            #expect(ciphered.tag == tag, "\(apdu.name) \(kind)")
            #expect(ciphered.systemTitle == nil)
            #expect(CipheringKind(cipheredTag: tag) == kind)
            #expect(CipheringKind.plainTag(forCipheredTag: tag) == plain[0])
            // Through the wire form and back.
            #expect(try server.unprotect(bytes: encoded(ciphered)) == plain)
        }
    }

    @Test("general-glo and general-ded carry the sender's system title and any APDU", arguments: [CipheringKind.generalGlobal, .generalDedicated])
    func generalCiphering(kind: CipheringKind) throws {
        let (client, server) = greenBookPair(dedicatedKey: Self.dedicatedKey)
        for plain in [GreenBook.getRequest, hexBytes("D8010203"), hexBytes("0F00000001000C07E80B1AFF102D0000000000")] {
            let ciphered = try server.protect(plain, kind: kind, invocationCounter: 7)
            #expect(ciphered.tag == (kind == .generalGlobal ? 0xDB : 0xDC))
            #expect(ciphered.systemTitle == GreenBook.serverSystemTitle.dlmsBytes)
            #expect(try client.unprotect(bytes: encoded(ciphered)) == plain)
            // A receiver that does not know the peer yet learns the title from the APDU.
            var anonymous = client
            anonymous.peerSystemTitle = nil
            #expect(try anonymous.unprotect(ciphered) == plain)
        }
    }

    @Test("APDUs without a service-specific form need general ciphering")
    func noServiceSpecificForm() throws {
        let (client, _) = greenBookPair()
        for tag: UInt8 in [0xD8, 0x0F, 0x60, 0xD9] {
            #expect(throws: DLMSSecurityError.invalidArgument("")) { try client.protect([tag, 0x00], kind: .global, invocationCounter: 1) }
        }
        #expect(throws: DLMSSecurityError.invalidArgument("")) { try client.protect([], kind: .generalGlobal, invocationCounter: 1) }
        #expect(throws: DLMSSecurityError.invalidKey("")) { try client.protect(GreenBook.getRequest, kind: .dedicated, invocationCounter: 1) }
    }

    @Test("round trips under every policy, both directions, sizes 1…2000", arguments: policies)
    func roundTrips(policy: SecurityPolicy) throws {
        let (client, server) = greenBookPair(policy: policy, dedicatedKey: Self.dedicatedKey)
        var generator = SeededGenerator(seed: 6)
        for size in [1, 2, 15, 16, 17, 31, 32, 33, 255, 256, 1000, 2000] {
            var plain = (0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }
            plain[0] = 0xC4
            for kind in CipheringKind.allCases {
                let counter = UInt32.random(in: 0...UInt32.max, using: &generator)
                let toServer = try client.protect(plain, kind: kind, invocationCounter: counter)
                #expect(toServer.securityControl == policy.securityControl().rawValue)
                #expect(try server.unprotect(bytes: encoded(toServer)) == plain)
                let toClient = try server.protect(plain, kind: kind, invocationCounter: counter)
                #expect(try client.unprotect(bytes: encoded(toClient)) == plain)
                if policy.requiresEncryption, size >= 8 {
                    #expect(!encoded(toServer).contains(subsequence: plain), "plaintext visible in \(kind)")
                }
            }
        }
    }

    // MARK: - Refusals

    static func gloResponse(policy: SecurityPolicy = .authenticatedAndEncrypted, counter: UInt32 = 100) throws -> [UInt8] {
        try encoded(greenBookPair(policy: policy).server.protect(hexBytes("C401C1000500BC614E"), kind: .global, invocationCounter: counter))
    }

    @Test("a wrong block cipher key or authentication key fails authentication")
    func wrongKey() throws {
        var (client, _) = greenBookPair()
        let wire = try Self.gloResponse()
        let other = try DLMSKey(hex: "000102030405060708090A0B0C0D0E0E")
        var wrongEK = client
        wrongEK.blockCipherKey = other
        #expect(throws: DLMSSecurityError.authenticationFailed("")) { try wrongEK.unprotect(bytes: wire) }
        client.authenticationKey = other
        #expect(throws: DLMSSecurityError.authenticationFailed("")) { try client.unprotect(bytes: wire) }
        // Authentication only: the plaintext is in the clear, but still not returned.
        let authOnly = try Self.gloResponse(policy: .authenticated)
        client.policy = .authenticated
        #expect(throws: DLMSSecurityError.authenticationFailed("")) { try client.unprotect(bytes: authOnly) }
    }

    @Test("a wrong system title: the IV differs (glo) or the title is refused (general-glo)")
    func wrongSystemTitle() throws {
        let (client0, server) = greenBookPair()
        var client = client0
        let stranger = try SystemTitle(hex: "4D4D4D0000BC614F")
        let glo = try Self.gloResponse()
        #expect(throws: DLMSSecurityError.authenticationFailed("")) { try client.unprotect(bytes: glo, expectedSystemTitle: stranger) }
        client.peerSystemTitle = nil
        #expect(throws: DLMSSecurityError.unexpectedSystemTitle("")) { try client.unprotect(bytes: glo) }

        let general = try server.protect(GreenBook.getRequest, kind: .generalGlobal, invocationCounter: 9)
        #expect(throws: DLMSSecurityError.unexpectedSystemTitle("")) { try client.unprotect(general, expectedSystemTitle: stranger) }
        // Rewriting the carried title changes the IV: the tag no longer verifies.
        var forged = general
        forged.systemTitle = stranger.dlmsBytes
        #expect(throws: DLMSSecurityError.authenticationFailed("")) { try client.unprotect(forged) }
        forged.systemTitle = [1, 2, 3]
        #expect(throws: DLMSSecurityError.decodeFailure("")) { try client.unprotect(forged) }
    }

    @Test("every tampered byte of an authenticated APDU is refused, nothing returned", arguments: policies.filter(\.requiresAuthentication))
    func tamperEveryByte(policy: SecurityPolicy) throws {
        let (client, _) = greenBookPair(policy: policy)
        let wire = try Self.gloResponse(policy: policy)
        for index in wire.indices {
            for flip: UInt8 in [0x01, 0x80, 0xFF] {
                var tampered = wire
                tampered[index] ^= flip
                var returned: [UInt8]? = nil
                let error = #expect(throws: DLMSSecurityError.self) { returned = try client.unprotect(bytes: tampered) }
                #expect(returned == nil)
                // Header bytes fail as what they are; payload and tag bytes fail authentication.
                if index >= 3 { #expect(error?.code == .authenticationFailed, "byte \(index) ^ \(flip): \(String(describing: error))") }
            }
        }
    }

    @Test("a tampered tag or ciphertext is refused at the suite level too")
    func tamperPayload() throws {
        let sc = SecurityControl.authenticatedAndEncrypted
        let payload = try SecuritySuite0.protect(GreenBook.getRequest, securityControl: sc, systemTitle: GreenBook.serverSystemTitle,
                                                 invocationCounter: 1, blockCipherKey: GreenBook.blockCipherKey, authenticationKey: GreenBook.authenticationKey)
        for index in payload.indices {
            var tampered = payload
            tampered[index] &+= 1
            #expect(throws: DLMSSecurityError.authenticationFailed("")) {
                try SecuritySuite0.unprotect(tampered, securityControl: sc, systemTitle: GreenBook.serverSystemTitle, invocationCounter: 1,
                                             blockCipherKey: GreenBook.blockCipherKey, authenticationKey: GreenBook.authenticationKey)
            }
        }
        // Truncated below the tag.
        #expect(throws: DLMSSecurityError.decodeFailure("")) {
            try SecuritySuite0.unprotect(Array(payload.prefix(11)), securityControl: sc, systemTitle: GreenBook.serverSystemTitle, invocationCounter: 1,
                                         blockCipherKey: GreenBook.blockCipherKey, authenticationKey: GreenBook.authenticationKey)
        }
        // A wrong counter is a wrong IV.
        #expect(throws: DLMSSecurityError.authenticationFailed("")) {
            try SecuritySuite0.unprotect(payload, securityControl: sc, systemTitle: GreenBook.serverSystemTitle, invocationCounter: 2,
                                         blockCipherKey: GreenBook.blockCipherKey, authenticationKey: GreenBook.authenticationKey)
        }
    }

    @Test("weaker protection than the policy, or none, is a policy violation")
    func policyViolations() throws {
        let (client, _) = greenBookPair(policy: .authenticatedAndEncrypted)
        for weaker in [SecurityPolicy.authenticated, .encrypted] {
            #expect(throws: DLMSSecurityError.policyViolation("")) { try client.unprotect(bytes: Self.gloResponse(policy: weaker)) }
        }
        // A clear get-response where ciphering is required.
        #expect(throws: DLMSSecurityError.policyViolation("")) { try client.unprotect(bytes: hexBytes("C401C1000500BC614E")) }
        // Security control 0x00 under a ciphered tag.
        var none = try decodedCiphered(Self.gloResponse())
        none.securityControl = 0x00
        #expect(throws: DLMSSecurityError.policyViolation("")) { try client.unprotect(none) }
        // Stronger than required is fine.
        var lenient = client
        lenient.policy = .authenticated
        #expect(try lenient.unprotect(bytes: Self.gloResponse()) == hexBytes("C401C1000500BC614E"))
        // Other suites and compression are not implemented.
        var suite1 = try decodedCiphered(Self.gloResponse())
        suite1.securityControl = 0x31
        #expect(throws: DLMSSecurityError.unsupportedMechanism("")) { try client.unprotect(suite1) }
        var compressed = try decodedCiphered(Self.gloResponse())
        compressed.securityControl = 0xB0
        #expect(throws: DLMSSecurityError.unsupportedMechanism("")) { try client.unprotect(compressed) }
        var broadcast = try decodedCiphered(Self.gloResponse())
        broadcast.securityControl = 0x70
        #expect(throws: DLMSSecurityError.invalidKey("")) { try client.unprotect(broadcast) }
    }

    @Test("a ciphered tag must carry the APDU it announces")
    func wrongInnerTag() throws {
        let (client, server) = greenBookPair()
        // A get-response protected, then relabelled as glo-set-response (tag outside the AAD).
        var relabelled = try server.protect(hexBytes("C401C1000500BC614E"), kind: .global, invocationCounter: 5)
        relabelled.tag = 0xCD
        #expect(throws: DLMSSecurityError.decodeFailure("")) { try client.unprotect(relabelled) }
    }

    @Test("replayed and stale counters are refused; the guard moves only on success")
    func replay() throws {
        let (client, server) = greenBookPair()
        var guardian = InvocationCounterGuard()
        let first = try encoded(server.protect(GreenBook.getRequest, kind: .global, invocationCounter: 10))
        #expect(try client.unprotect(bytes: first, counterGuard: &guardian) == GreenBook.getRequest)
        #expect(guardian.lastAccepted == 10)
        // The same APDU again, and an older one.
        #expect(throws: DLMSSecurityError.replayedCounter("")) { try client.unprotect(bytes: first, counterGuard: &guardian) }
        let older = try encoded(server.protect(GreenBook.getRequest, kind: .global, invocationCounter: 9))
        #expect(throws: DLMSSecurityError.replayedCounter("")) { try client.unprotect(bytes: older, counterGuard: &guardian) }
        // A forged APDU with a high counter does not advance the guard.
        var forged = try decodedCiphered(encoded(server.protect(GreenBook.getRequest, kind: .global, invocationCounter: 1000)))
        forged.payload.bytes[forged.payload.count - 1] ^= 1
        #expect(throws: DLMSSecurityError.authenticationFailed("")) { try client.unprotect(forged, counterGuard: &guardian) }
        #expect(guardian.lastAccepted == 10)
        let next = try encoded(server.protect(GreenBook.getRequest, kind: .global, invocationCounter: 11))
        #expect(try client.unprotect(bytes: next, counterGuard: &guardian) == GreenBook.getRequest)
        #expect(guardian.lastAccepted == 11)

        var persisted = InvocationCounterGuard(lastAccepted: 11)
        #expect(throws: DLMSSecurityError.replayedCounter("")) { try persisted.accept(11) }
        try persisted.accept(.max)
        #expect(throws: DLMSSecurityError.replayedCounter("")) { try persisted.accept(.max) }
    }

    @Test("protectedAPDU and unprotectedAPDU (buffers) equal protect and unprotect (arrays), any kind and length", arguments: policies)
    func bufferPaths(policy: SecurityPolicy) throws {
        let (client, server) = greenBookPair(policy: policy, dedicatedKey: Self.dedicatedKey)
        var generator = SeededGenerator(seed: 0xB0_FFE2)
        for kind in CipheringKind.allCases {
            for length in [1, 2, 13, 16, 17, 40, 500, 520, 2694] {
                // A get-response (tag C4) with random content, so every kind has a ciphered form.
                let plain = [0xC4] + (1..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
                let counter = UInt32.random(in: 1...1_000_000, using: &generator)
                let wire = try server.protectedAPDU(ByteBuffer(bytes: plain), kind: kind, invocationCounter: counter)
                #expect(Array(wire.readableBytesView) == encoded(try server.protect(plain, kind: kind, invocationCounter: counter)), "\(kind) \(length)")
                var counterGuard = InvocationCounterGuard()
                let apdu = try decodedCiphered(Array(wire.readableBytesView))
                #expect(Array(try client.unprotectedAPDU(apdu, counterGuard: &counterGuard).readableBytesView) == plain, "\(kind) \(length)")
                #expect(counterGuard.lastAccepted == counter)
                // A replay is refused, and so is any changed payload byte when authenticated; the guard stays.
                #expect(throws: DLMSSecurityError.replayedCounter("")) { try client.unprotectedAPDU(apdu, counterGuard: &counterGuard) }
                if policy.requiresAuthentication {
                    var tampered = apdu
                    tampered.payload.bytes[Int.random(in: 0..<tampered.payload.count, using: &generator)] ^= 0x01
                    var fresh = InvocationCounterGuard()
                    #expect(throws: DLMSSecurityError.authenticationFailed("")) { try client.unprotectedAPDU(tampered, counterGuard: &fresh) }
                    #expect(fresh.lastAccepted == nil)
                }
            }
        }
        // A plain tag the ciphered tag does not announce is refused (glo-get-response carrying a get-request).
        let (sender, receiver) = greenBookPair(policy: policy)
        var apdu = try sender.protect(GreenBook.getRequest, kind: .global, invocationCounter: 9)
        apdu.tag = 0xCC
        var counterGuard = InvocationCounterGuard()
        #expect(throws: DLMSSecurityError.decodeFailure("")) { try receiver.unprotectedAPDU(apdu, counterGuard: &counterGuard) }
        #expect(counterGuard.lastAccepted == nil)
    }

    @Test("the transmit counter never wraps")
    func transmitCounter() throws {
        var counter = InvocationCounter(startingAt: UInt32.max - 1)
        #expect(try counter.next() == UInt32.max - 1)
        #expect(try counter.next() == UInt32.max)
        #expect(throws: DLMSSecurityError.counterExhausted("")) { try counter.next() }
        #expect(throws: DLMSSecurityError.counterExhausted("")) { try counter.next() }
    }

    @Test("random mutations and truncations never crash and never pass", arguments: policies)
    func randomMutations(policy: SecurityPolicy) throws {
        let (client, server) = greenBookPair(policy: policy, dedicatedKey: Self.dedicatedKey)
        var generator = SeededGenerator(seed: 0xD1_5EC)
        let plain = hexBytes(GuruxLikeProfile.response)
        for kind in CipheringKind.allCases {
            let wire = try encoded(server.protect(plain, kind: kind, invocationCounter: 77))
            for _ in 0..<300 {
                var mutated = wire
                switch Int.random(in: 0..<4, using: &generator) {
                case 0: mutated = Array(mutated.prefix(Int.random(in: 0..<mutated.count, using: &generator)))
                case 1: mutated.insert(UInt8.random(in: 0...255, using: &generator), at: Int.random(in: 0...mutated.count, using: &generator))
                case 2: mutated.remove(at: Int.random(in: 0..<mutated.count, using: &generator))
                default:
                    for _ in 0..<Int.random(in: 1...4, using: &generator) {
                        let index = Int.random(in: 0..<mutated.count, using: &generator)
                        mutated[index] ^= UInt8.random(in: 1...255, using: &generator)
                    }
                }
                let result = try? client.unprotect(bytes: mutated)
                if policy.requiresAuthentication {
                    // Only an unchanged protected content may come back (e.g. a length byte re-encoded identically).
                    #expect(result == nil || result == plain)
                }
            }
        }
    }
}

/// A 96-row load-profile GET-Response body (the Gurux capture's shape), for sizes that span blocks.
enum GuruxLikeProfile {
    static let response: String = {
        var hex = "C401C1000101" + "60"
        for row in 0..<96 {
            let minute = String(format: "%02X", (row * 15) % 60)
            hex += "0203090C07E80B1AFF10" + minute + "000000000005" + String(format: "%08X", 1000 + row) + "05" + String(format: "%08X", 2000 + 2 * row)
        }
        return hex
    }()
}

extension Array where Element == UInt8 {
    func contains(subsequence: [UInt8]) -> Bool {
        guard !subsequence.isEmpty, subsequence.count <= count else { return false }
        return (0...(count - subsequence.count)).contains { Array(self[$0..<($0 + subsequence.count)]) == subsequence }
    }
}
