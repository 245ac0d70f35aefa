import Contracts
import COSEM
import DLMSClient
import DLMSSecurity
import Testing
@testable import Collector

/// A task's meter access becomes a session: keys unwrapped with the master key, clear errors
/// (with the field) for what no session can follow.
@Suite
struct MeterSessionPlanTests {
    static let master = try! MasterKey(id: "m1", hex: "000102030405060708090A0B0C0D0E0F")

    static func wrappedPassword(_ text: String, master: MasterKey = master) throws -> WrappedSecret {
        let wrapped = try WrappedDLMSSecret(wrapping: DLMSSecret(text: text), with: master)
        return WrappedSecret(masterKeyID: wrapped.masterKeyID, wrapped: Hex.encode(wrapped.wrapped))
    }

    @Test
    func llsPasswordIsUnwrapped() throws {
        let access = MeterAccess(endpoint: .gatewayUDP(host: "127.0.0.1", port: 4001), protocol: .dlmsHDLC, clientSAP: 17,
                                 hdlcPhysicalAddress: 18, authentication: .lls, keys: .init(password: try Self.wrappedPassword("12345678")))
        let plan = try MeterSessionPlan(access, masterKey: Self.master)
        #expect(plan.sharesLine)
        #expect(plan.connection.serverPhysicalAddress == 18)
        #expect(plan.connection.clientSAP == 17)
        #expect(plan.connection.authentication == .low(password: Array("12345678".utf8)))
        #expect(!"\(plan.connection)".contains("12345678"))
    }

    @Test
    func secretsOfAnyLengthRoundTrip() throws {
        for length in [1, 7, 8, 15, 16, 17, 32, 100, 255] {
            let secret = String(repeating: "x", count: length)
            let wrapped = try WrappedDLMSSecret(wrapping: DLMSSecret(text: secret), with: Self.master)
            #expect(wrapped.wrapped.count >= 24 && wrapped.wrapped.count % 8 == 0)
            #expect(try wrapped.unwrap(with: Self.master) == DLMSSecret(text: secret))
        }
    }

    @Test
    func problemsNameTheirField() throws {
        let other = try MasterKey(id: "m1", hex: "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF")
        let cases: [(MeterAccess, MasterKey?, CollectorError.Code, String)] = [
            (MeterAccess(endpoint: .tcp(host: "h", port: 1), protocol: .dlmsWrapper, authentication: .lls), Self.master, .taskInvalid, "meter.keys.password"),
            (MeterAccess(endpoint: .tcp(host: "h", port: 1), protocol: .dlmsWrapper, authentication: .lls,
                         keys: .init(password: try Self.wrappedPassword("p"))), nil, .keysUnavailable, "HES_MASTER_KEY_FILE"),
            (MeterAccess(endpoint: .tcp(host: "h", port: 1), protocol: .dlmsWrapper, authentication: .lls,
                         keys: .init(password: try Self.wrappedPassword("p", master: other))), Self.master, .keysInvalid, "does not unwrap"),
            (MeterAccess(endpoint: .serial(device: "/dev/x", baudRate: 9600), protocol: .dlmsWrapper), Self.master, .taskInvalid, "meter.protocol"),
            (MeterAccess(endpoint: .tcp(host: "h", port: 1), protocol: .dlmsWrapper, manufacturerProfile: .named("acme")), Self.master, .taskInvalid, "unknown manufacturer profile 'acme'"),
            (MeterAccess(endpoint: .tcp(host: "h", port: 1), protocol: .dlmsWrapper, security: .both), Self.master, .taskInvalid, "meter.systemTitle"),
            (MeterAccess(endpoint: .tcp(host: "h", port: 1), protocol: .iec62056_21), Self.master, .taskUnsupported, "IEC 62056-21"),
        ]
        for (access, master, code, text) in cases {
            do {
                _ = try MeterSessionPlan(access, masterKey: master)
                Issue.record("\(access) was accepted")
            } catch let error as CollectorError {
                #expect(error.code == code, "\(error)")
                #expect(error.reason.contains(text), "\(error.reason)")
            }
        }
    }

    @Test
    func inlineProfileIsDecoded() throws {
        let json = #"{"endpoint":{"kind":"tcp","host":"h","port":1},"protocol":"dlms-hdlc","manufacturerProfile":{"name":"acme","serverAddressSize":4,"sendsSNRMParameters":false,"releaseMode":"disc-only"}}"#
        let access = try ContractCoderTestHook.decodeAccess(json)
        let plan = try MeterSessionPlan(access, masterKey: nil)
        #expect(plan.connection.profile.name == "acme")
        #expect(plan.connection.profile.sendsSNRMParameters == false)
    }
}

enum ContractCoderTestHook {
    static func decodeAccess(_ json: String) throws -> MeterAccess {
        try JSONDecoder().decode(MeterAccess.self, from: Data(json.utf8))
    }
}

import Foundation
