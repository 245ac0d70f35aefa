import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import MeterSimulation
import Prometheus
import ServiceRuntime
import Synchronization
import Testing
@testable import MeterSim

/// meter-sim's admin routes through Hummingbird's router test client: JSON out, fault switches
/// in as a body or a query, and bad input answered with a problem document that names it.
@Suite
struct MeterSimAdminRouteTests {
    private struct Problem: Decodable {
        var status: Int
        var detail: String?
    }

    private static func makeApplication() throws -> (some ApplicationProtocol, MeterFleet) {
        var configuration = MeterSimConfiguration(runtime: RuntimeConfiguration(executable: "meter-sim"), groups: [])
        var group = MeterSimConfiguration.Group()
        group.count = 2
        configuration.groups = [group]
        let readiness = Readiness()
        let fleet = MeterFleet(configuration: configuration, readiness: readiness, logger: Logger(label: "test"))
        let entries = try fleet.makeEntries().entries
        fleet.entries.withLock { $0 = entries }
        let server = AdminServer(configuration: .init(), readiness: readiness, registry: .init(), logger: Logger(label: "test"))
        server.addRoutes { router in fleet.addAdminRoutes(to: router) }
        return (Application(router: server.makeRouter()), fleet)
    }

    @Test
    func listsTheMetersAsJSON() async throws {
        let (app, _) = try Self.makeApplication()
        try await app.test(.router) { client in
            try await client.execute(uri: "/meters", method: .get) { response in
                #expect(response.status == .ok)
                let meters = try JSONDecoder().decode([MeterStatus].self, from: Data(response.body.readableBytesView))
                #expect(meters.map(\.serial) == ["SIM00000001", "SIM00000002"])
                #expect(meters.allSatisfy { !$0.faults.silent && !$0.refusesAssociation && $0.transport == "tcp" })
            }
            try await client.execute(uri: "/meters/SIM00000002", method: .get) { response in
                #expect(response.status == .ok)
                let meter = try JSONDecoder().decode(MeterStatus.self, from: Data(response.body.readableBytesView))
                #expect(meter.serial == "SIM00000002")
            }
        }
    }

    @Test
    func switchesFaultsByBodyOrQuery() async throws {
        let (app, fleet) = try Self.makeApplication()
        try await app.test(.router) { client in
            try await client.execute(uri: "/meters/SIM00000002/faults", method: .post,
                                     body: ByteBuffer(string: #"{"silent": true, "refuse": true}"#)) { response in
                #expect(response.status == .ok)
                let meter = try JSONDecoder().decode(MeterStatus.self, from: Data(response.body.readableBytesView))
                #expect(meter.faults.silent && meter.refusesAssociation && !meter.faults.garbage)
            }
            try await client.execute(uri: "/meters/SIM00000002/faults?silent=false&garbage=1", method: .post) { response in
                #expect(response.status == .ok)
                let meter = try JSONDecoder().decode(MeterStatus.self, from: Data(response.body.readableBytesView))
                #expect(!meter.faults.silent && meter.faults.garbage && meter.refusesAssociation)
            }
        }
        let entry = fleet.entries.withLock { $0[1] }
        #expect(entry.faults.withLock { $0 } == MeterFaults(garbage: true))
        #expect(entry.meter.refusesAssociation)
        #expect(fleet.entries.withLock { $0[0] }.faults.withLock { $0 } == MeterFaults())
    }

    @Test(arguments: [
        ("/meters/SIM00000001/faults?loud=true", "", 400, "unknown fault 'loud'"),
        ("/meters/SIM00000001/faults?silent=maybe", "", 400, "silent: 'maybe' is not true or false"),
        ("/meters/SIM00000001/faults", #"{"silent": "yes"}"#, 400, "silent"),
        ("/meters/SIM00000001/faults", #"{"explode": true}"#, 400, "unknown fault 'explode'"),
        ("/meters/SIM00000001/faults", "[1,2", 400, "not a fault switch object"),
        ("/meters/SIM00000009/faults?silent=true", "", 404, "SIM00000009"),
        ("/meters/EMH1", "", 404, "EMH1"),
        ("/meters/SIM00000001/nothing", "", 404, nil),
    ] as [(String, String, Int, String?)])
    func badInputIsAProblemAndChangesNothing(uri: String, body: String, status: Int, detail: String?) async throws {
        let (app, fleet) = try Self.makeApplication()
        try await app.test(.router) { client in
            let method: HTTPRequest.Method = uri.hasSuffix("nothing") || !uri.contains("faults") ? .get : .post
            try await client.execute(uri: uri, method: method, body: body.isEmpty ? nil : ByteBuffer(string: body)) { response in
                #expect(Int(response.status.code) == status)
                #expect(response.headers[.contentType] == "application/problem+json")
                let problem = try JSONDecoder().decode(Problem.self, from: Data(response.body.readableBytesView))
                #expect(problem.status == status)
                if let detail { #expect(problem.detail?.contains(detail) == true, "\(String(describing: problem.detail))") }
            }
        }
        #expect(fleet.entries.withLock { $0 }.allSatisfy { $0.faults.withLock { $0 } == MeterFaults() && !$0.meter.refusesAssociation })
    }
}
