import COSEM
import DLMSClient
import DLMSCodec
import DLMSSecurity
import Foundation
import MeterSimulation
import NIOConcurrencyHelpers
import NIOCore
import Testing
import TestSupport

/// Our client against our simulated meter's server side over wrapper/TCP: HLS (mechanisms 3–6),
/// ciphered associations (suite 0), invocation counters, and what happens when something is
/// wrong. (Independent implementations are the interop tests' part.)
@Suite("Secured associations (HLS, ciphering, counters)", .serialized, .timeLimit(.minutes(1)))
struct SecureAssociationTests {
    static let ek = try! DLMSKey(hex: "000102030405060708090A0B0C0D0E0F")
    static let ak = try! DLMSKey(hex: "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
    static let clientTitle = try! SystemTitle(hex: "4853455300000001")

    /// A simulated meter behind a scripted wrapper server; every AARQ opens a new server session
    /// (the client SAP is 16 for a plain AARQ, 1 for an authenticated one). `tamper` may change
    /// answers on their way out.
    final class SecureMeter: Sendable {
        let meter: SimulatedMeter
        let server: ScriptedMeterServer
        let requests: NIOLockedValueBox<[ByteBuffer]>

        static func start(security: MeterSecurity = .examples, configure: (inout SimulatedMeter.Configuration) -> Void = { _ in },
                          tamper: @escaping @Sendable (ByteBuffer, Int) -> ScriptedMeterServer.Reply = { response, _ in .apdu(response) }) async throws -> SecureMeter {
            var configuration = SimulatedMeter.Configuration.fleetMember(index: 0)
            configuration.security = security
            configure(&configuration)
            let meter = SimulatedMeter(configuration: configuration)
            let session = NIOLockedValueBox<COSEMServerSession?>(nil)
            let requests = NIOLockedValueBox<[ByteBuffer]>([])
            let server = try await ScriptedMeterServer.start { request, index in
                requests.withLockedValue { $0.append(request) }
                let response: ByteBuffer? = session.withLockedValue { current in
                    if request.getInteger(at: request.readerIndex, as: UInt8.self) == AARQ.tag {
                        var copy = request
                        let authenticated = (try? AARQ.decode(from: &copy))?.mechanismName != nil
                        current = COSEMServerSession(meter: meter, clientSAP: authenticated ? 1 : 16)
                    }
                    return current?.handle(request, now: Date())
                }
                guard let response else { return .silence }
                return tamper(response, index)
            }
            return SecureMeter(meter: meter, server: server, requests: requests)
        }

        /// A meter for `body` (as ``start(security:configure:tamper:)``), its server stopped when
        /// `body` returns or throws.
        static func with<Result>(security: MeterSecurity = .examples, configure: (inout SimulatedMeter.Configuration) -> Void = { _ in },
                                 tamper: @escaping @Sendable (ByteBuffer, Int) -> ScriptedMeterServer.Reply = { response, _ in .apdu(response) },
                                 _ body: (SecureMeter) async throws -> Result) async throws -> Result {
            try await withResource(try await start(security: security, configure: configure, tamper: tamper), cleanup: { await $0.server.stop() }, body)
        }

        private init(meter: SimulatedMeter, server: ScriptedMeterServer, requests: NIOLockedValueBox<[ByteBuffer]>) {
            self.meter = meter
            self.server = server
            self.requests = requests
        }

        func connection(_ authentication: MeterConnection.Authentication, policy: SecurityPolicy = .authenticatedAndEncrypted,
                        blockCipherKey: DLMSKey = SecureAssociationTests.ek, authenticationKey: DLMSKey = SecureAssociationTests.ak,
                        counter: MeterConnection.Security.InvocationCounterSource = .standard, store: (any InvocationCounterStore)? = nil,
                        dedicatedKey: DLMSKey? = nil) -> MeterConnection {
            var timeouts = MeterConnection.Timeouts()
            // Generous for a loaded machine (3 s timed out once in a full run beside fuzzing).
            timeouts.step = .seconds(10)
            return MeterConnection(
                endpoint: .tcp(host: "127.0.0.1", port: server.port), clientSAP: 1, authentication: authentication, timeouts: timeouts,
                security: MeterConnection.Security(systemTitle: SecureAssociationTests.clientTitle, blockCipherKey: blockCipherKey,
                                                   authenticationKey: authenticationKey, policy: policy, dedicatedKey: dedicatedKey, invocationCounter: counter,
                                                   counterStore: store))
        }
    }

    static let day = Date(timeIntervalSince1970: ((Date().timeIntervalSince1970 - 3 * 86_400) / 86_400).rounded(.down) * 86_400)

    @Test("HLS-GMAC with authenticated and encrypted APDUs: clock, register and profile equal the meter's values")
    func gmacAuthenticatedAndEncrypted() async throws {
        try await SecureMeter.with { secure in
            let (register, profile, title) = try await DLMSClient.withAssociation(to: secure.connection(.high(.gmac, secret: nil))) { client in
                _ = try await client.readClock()
                let register = try await client.readRegister(OBISCode(1, 0, 1, 8, 0, 255))
                let profile = try await client.readProfile(OBISCode(1, 0, 99, 1, 0, 255), from: Self.day, to: Self.day.addingTimeInterval(4 * 3600))
                return (register, profile, client.association.serverSystemTitle)
            }
            #expect(title == secure.meter.systemTitle)
            #expect(profile.rows.map(\.values.array) == secure.meter.expectedProfileRows(from: Self.day, to: Self.day.addingTimeInterval(4 * 3600)))
            #expect(register.raw.integerValue != nil)

            // On the wire: the public client's plain read of 0.0.43.1.0.255, then an AARQ with the
            // ciphering context whose InitiateRequest is a glo-initiate-request (0x21), and only
            // glo-ciphered services (0xC8 get, 0xCB action) after it.
            let tags = secure.requests.withLockedValue { $0.map { $0.getInteger(at: $0.readerIndex, as: UInt8.self)! } }
            let secondAARQ = tags.indices.filter { tags[$0] == AARQ.tag }.dropFirst().first!
            #expect(tags[..<secondAARQ].contains(0xC0))
            #expect(tags[(secondAARQ + 1)...].allSatisfy { [0xC8, 0xCB, 0x62].contains($0) })
            var aarqBytes = secure.requests.withLockedValue { $0[secondAARQ] }
            let aarq = try AARQ.decode(from: &aarqBytes)
            #expect(aarq.applicationContextName == .logicalNameWithCiphering)
            guard case .ciphered(let initiate)? = aarq.userInformation else { Issue.record("plain InitiateRequest"); return }
            #expect(initiate.tag == 0x21)
            #expect(initiate.securityControl == 0x30)
        }
    }

    @Test("a dedicated key: the HLS reply stays glo-ciphered, the association's services are ded-ciphered and answered in kind")
    func dedicatedKeyAfterHLS() async throws {
        try await SecureMeter.with { secure in
            let dedicated = try DLMSKey(hex: "00112233445566778899AABBCCDDEEFF")
            let register = try await DLMSClient.withAssociation(to: secure.connection(.high(.gmac, secret: nil), dedicatedKey: dedicated)) { client in
                try await client.readRegister(OBISCode(1, 0, 1, 8, 0, 255))
            }
            #expect(register.raw.integerValue != nil)
            // After the ciphered AARQ: glo-action-request (0xCB, reply_to_HLS_authentication: the
            // association is not up before pass 4; Gurux's server refuses a ded- one), then
            // ded-get-requests (0xD0).
            let tags = secure.requests.withLockedValue { $0.map { $0.getInteger(at: $0.readerIndex, as: UInt8.self)! } }
            let secondAARQ = tags.indices.filter { tags[$0] == AARQ.tag }.dropFirst().first!
            let services = tags[(secondAARQ + 1)...].filter { $0 != 0x62 }
            #expect(services.first == 0xCB, "\(tags)")
            #expect(services.dropFirst().allSatisfy { $0 == 0xD0 } && services.count > 1, "\(tags)")
        }
    }

    @Test("HLS with MD5, SHA-1 and SHA-256 secrets, APDUs in the clear", arguments: [HLSMechanism.md5, .sha1, .sha256])
    func hlsSecrets(_ mechanism: HLSMechanism) async throws {
        try await SecureMeter.with { secure in
            let none = SecurityPolicy(requiresAuthentication: false, requiresEncryption: false)
            let time = try await DLMSClient.withAssociation(to: secure.connection(.high(mechanism, secret: try DLMSSecret(text: "Gurux")), policy: none)) { client in
                try await client.readClock()
            }
            #expect(time.iso8601 != nil)
            let wrong = await #expect(throws: DLMSClientError.self) {
                try await DLMSClient.withAssociation(to: secure.connection(.high(mechanism, secret: try DLMSSecret(text: "Guru")), policy: none)) { client in
                    try await client.readClock()
                }
            }
            #expect(wrong?.code == .associationRejected)
            #expect(wrong?.isRetriable == false)
        }
    }

    @Test("authenticated-only and encrypted-only policies", arguments: [SecurityPolicy.authenticated, .encrypted])
    func policies(_ policy: SecurityPolicy) async throws {
        try await SecureMeter.with { secure in
            let register = try await DLMSClient.withAssociation(to: secure.connection(.high(.gmac, secret: nil), policy: policy)) { client in
                try await client.readRegister(OBISCode(1, 0, 1, 8, 0, 255))
            }
            #expect(register.raw.integerValue != nil)
        }
    }

    @Test("a wrong authentication key is refused by the meter: nothing deciphered, the meter still usable")
    func wrongKey() async throws {
        try await SecureMeter.with { secure in
            let wrongAK = try DLMSKey(hex: "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDE")
            let error = await #expect(throws: DLMSClientError.self) {
                try await DLMSClient.withAssociation(to: secure.connection(.high(.gmac, secret: nil), authenticationKey: wrongAK)) { client in
                    try await client.readClock()
                }
            }
            #expect(error?.code == .associationRejected)
            // The Green Book's refusal: acse-service-user no-reason-given with the clear
            // ConfirmedServiceError initiateError / application-reference / deciphering-error. Before,
            // the meter sent acse-service-provider 6: Gurux's client called it "Invalid error code",
            // dlms-cosem's raised ValueError (no such AcseServiceProviderDiagnostics).
            #expect(error?.reason.contains("rejected-permanent (acse-service-user: no-reason-given)") == true, "\(String(describing: error))")
            #expect(error?.reason.contains("initiateError: application-reference: deciphering-error") == true, "\(String(describing: error))")
            _ = try await DLMSClient.withAssociation(to: secure.connection(.high(.gmac, secret: nil))) { try await $0.readClock() }
        }
    }

    @Test("a tampered answer is refused with securityFailed")
    func tamperedAnswer() async throws {
        try await SecureMeter.with(tamper: { response, _ in
            guard response.getInteger(at: response.readerIndex, as: UInt8.self) == 0xCC else { return .apdu(response) }
            var bytes = Array(response.readableBytesView)
            bytes[bytes.count - 3] ^= 0x01
            return .apdu(ByteBuffer(bytes: bytes))
        }) { secure in
            let error = await #expect(throws: DLMSClientError.self) {
                try await DLMSClient.withAssociation(to: secure.connection(.high(.gmac, secret: nil))) { try await $0.readClock() }
            }
            #expect(error?.code == .securityFailed)
            #expect(error?.step == .get)
        }
    }

    @Test("a replayed answer (an earlier invocation counter) is refused with securityFailed")
    func replayedAnswer() async throws {
        let first = NIOLockedValueBox<ByteBuffer?>(nil)
        try await SecureMeter.with(tamper: { response, _ in
            guard response.getInteger(at: response.readerIndex, as: UInt8.self) == 0xCC else { return .apdu(response) }
            return first.withLockedValue { stored in
                if let stored { return .apdu(stored) }
                stored = response
                return .apdu(response)
            }
        }) { secure in
            let error = await #expect(throws: DLMSClientError.self) {
                try await DLMSClient.withAssociation(to: secure.connection(.high(.gmac, secret: nil))) { client in
                    _ = try await client.readClock()
                    _ = try await client.readClock()
                }
            }
            #expect(error?.code == .securityFailed)
            #expect(error?.reason.contains("replayedCounter") == true)
        }
    }

    @Test("a meter reporting a stale counter refuses the client; a counter store keeps the client ahead")
    func staleCounter() async throws {
        try await SecureMeter.with(configure: { $0.reportsStaleInvocationCounter = true }) { secure in
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hes-ic-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let store = FileInvocationCounterStore(path: directory.appendingPathComponent("counters.json").path)

            // A first association moves the meter's receive counter well above 0.
            _ = try await DLMSClient.withAssociation(to: secure.connection(.high(.gmac, secret: nil), counter: .startingAt(1000), store: store)) {
                try await $0.readClock()
            }
            // Trusting the meter's (stale) counter object: the ciphered AARQ is a replay.
            let error = await #expect(throws: DLMSClientError.self) {
                try await DLMSClient.withAssociation(to: secure.connection(.high(.gmac, secret: nil))) { try await $0.readClock() }
            }
            #expect(error?.code == .associationRejected)
            // With the store, the client starts above what it used before.
            _ = try await DLMSClient.withAssociation(to: secure.connection(.high(.gmac, secret: nil), store: store)) { try await $0.readClock() }
            let key = secure.connection(.high(.gmac, secret: nil)).description
            #expect(try await store.lastUsed(key: key)! > 1000)
        }
    }

    @Test("keys never appear in descriptions, logs or errors")
    func keysStaySecret() async throws {
        try await SecureMeter.with { secure in
            let connection = secure.connection(.high(.gmac, secret: nil))
            for text in ["\(connection)", String(reflecting: connection), "\(String(describing: connection.security))"] {
                #expect(!text.contains("000102030405060708090A0B0C0D0E0F") && !text.lowercased().contains("d0d1d2d3"))
            }
        }
    }
}
