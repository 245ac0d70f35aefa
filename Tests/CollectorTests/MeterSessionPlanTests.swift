import Contracts
import COSEM
import DLMSClient
import DLMSLink
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
        let plan = try MeterSessionPlan(access, masterKeys: MasterKeyRing(current: Self.master))
        #expect(plan.sharesLine)
        #expect(plan.connection?.serverPhysicalAddress == 18)
        #expect(plan.connection?.clientSAP == 17)
        #expect(plan.connection?.authentication == .low(password: Array("12345678".utf8)))
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
            (MeterAccess(endpoint: .tcp(host: "h", port: 1), protocol: .iec62056_21), Self.master, .taskInvalid, "IEC 62056-21 runs over a serial line"),
            (MeterAccess(endpoint: .gatewayUDP(host: "h", port: 1), protocol: .iec62056_21, authentication: .hlsGMAC), Self.master, .taskInvalid, "meter.authentication"),
            (MeterAccess(endpoint: .serial(device: "/dev/x", baudRate: 9600), protocol: .iec62056_21, authentication: .lls), Self.master, .taskInvalid, "P1 password"),
        ]
        for (access, master, code, text) in cases {
            do {
                _ = try MeterSessionPlan(access, masterKeys: master.map { MasterKeyRing(current: $0) })
                Issue.record("\(access) was accepted")
            } catch let error as CollectorError {
                #expect(error.code == code, "\(error)")
                #expect(error.reason.contains(text), "\(error.reason)")
            }
        }
    }

    @Test("an IEC 62056-21 meter is read in mode C: its port at sign-on, its address, the LLS password as P1, the family's load-profile command")
    func iec21ModeC() throws {
        let access = MeterAccess(endpoint: .optical(device: "/dev/ttyUSB3", maximumBaudRate: 4800), protocol: .iec62056_21,
                                 deviceAddress: "12345678", authentication: .lls, manufacturerProfile: .named("emh"),
                                 keys: .init(password: try Self.wrappedPassword("00000042")))
        let plan = try MeterSessionPlan(access, masterKeys: MasterKeyRing(current: Self.master))
        guard case .iec21ModeC(let meter) = plan.session else {
            Issue.record("not a mode C session: \(plan.session)")
            return
        }
        #expect(plan.connection == nil)
        #expect(plan.sharesLine)
        #expect(plan.endpoint == TransportEndpoint.serial(.iec21(path: "/dev/ttyUSB3")))
        #expect(meter.configuration.address == "12345678")
        #expect(meter.configuration.maximumBaudRate == 4800)
        #expect(meter.password == "00000042")
        #expect(meter.loadProfile == ManufacturerProfile.builtIn["emh"]!.iec21LoadProfile)

        let open = try MeterSessionPlan(MeterAccess(endpoint: .gatewayUDP(host: "10.0.0.1", port: 4001), protocol: .iec62056_21), masterKeys: nil)
        guard case .iec21ModeC(let gateway) = open.session else {
            Issue.record("not a mode C session")
            return
        }
        #expect(gateway.password == nil)
        #expect(open.endpoint == TransportEndpoint.gatewayUDP(host: "10.0.0.1", port: 4001))
    }

    @Test
    func inlineProfileIsDecoded() throws {
        let json = #"{"endpoint":{"kind":"tcp","host":"h","port":1},"protocol":"dlms-hdlc","manufacturerProfile":{"name":"acme","serverAddressSize":4,"sendsSNRMParameters":false,"releaseMode":"disc-only"}}"#
        let access = try ContractCoderTestHook.decodeAccess(json)
        let plan = try MeterSessionPlan(access, masterKeys: nil)
        #expect(plan.connection?.profile.name == "acme")
        #expect(plan.connection?.profile.sendsSNRMParameters == false)
    }
}

enum ContractCoderTestHook {
    static func decodeAccess(_ json: String) throws -> MeterAccess {
        try JSONDecoder().decode(MeterAccess.self, from: Data(json.utf8))
    }
}

import Foundation
