import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Prometheus
import ServiceRuntime
import Testing

/// The admin endpoints every executable serves, driven through Hummingbird's router test client.
@Suite
struct AdminServerTests {
    private struct Problem: Decodable {
        var type: String
        var title: String
        var status: Int
        var detail: String?
    }

    private struct Report: Decodable {
        var ready: Bool
        var pending: [String: String]
    }

    private static func makeServer(readiness: Readiness = Readiness(), registry: PrometheusCollectorRegistry = .init()) -> AdminServer {
        AdminServer(configuration: .init(), readiness: readiness, registry: registry, logger: Logger(label: "test"))
    }

    @Test
    func healthzAnswersWhileDependenciesAreAway() async throws {
        let readiness = Readiness()
        readiness.register("database", reason: "connection refused")
        let app = Application(router: Self.makeServer(readiness: readiness).makeRouter())
        try await app.test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "ok\n")
            }
        }
    }

    @Test
    func readyzNamesWhatIsMissingUntilItIsBack() async throws {
        let readiness = Readiness()
        readiness.register("database", reason: "connection refused")
        readiness.register("kafka", reason: "not checked yet")
        let app = Application(router: Self.makeServer(readiness: readiness).makeRouter())
        try await app.test(.router) { client in
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(response.headers[.contentType] == "application/json")
                let report = try JSONDecoder().decode(Report.self, from: Data(response.body.readableBytesView))
                #expect(!report.ready)
                #expect(report.pending == ["database": "connection refused", "kafka": "not checked yet"])
            }
            readiness.markReady("kafka")
            readiness.markReady("database")
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .ok)
                let report = try JSONDecoder().decode(Report.self, from: Data(response.body.readableBytesView))
                #expect(report.ready && report.pending.isEmpty)
            }
            readiness.markNotReady("database", reason: "server closed the connection")
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(String(buffer: response.body).contains("server closed the connection"))
            }
        }
    }

    @Test
    func metricsAreInPrometheusTextFormat() async throws {
        let registry = PrometheusCollectorRegistry()
        registry.makeCounter(name: "hes_test_things_total").increment(by: Int64(3))
        let app = Application(router: Self.makeServer(registry: registry).makeRouter())
        try await app.test(.router) { client in
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "text/plain; version=0.0.4")
                #expect(String(buffer: response.body).contains("hes_test_things_total 3"))
            }
        }
    }

    @Test
    func errorsAreProblemDocuments() async throws {
        struct Secret: Error { var description: String { "password=hunter2" } }
        let server = Self.makeServer()
        server.addRoutes { router in
            router.get("thing/:id") { _, context -> String in
                let id = try context.parameters.require("id", as: Int.self)
                throw HTTPProblem.notFound("no thing \(id)")
            }
            router.get("crash") { _, _ -> String in throw Secret() }
            router.post("echo") { request, context -> String in
                struct Body: Decodable { var name: String }
                return try await request.decode(as: Body.self, context: context).name
            }
        }
        let app = Application(router: server.makeRouter())
        try await app.test(.router) { client in
            let cases: [(String, HTTPRequest.Method, String?, HTTPResponse.Status, String?)] = [
                ("/thing/7", .get, nil, .notFound, "no thing 7"),
                ("/thing/seven", .get, nil, .badRequest, nil),
                ("/nowhere", .get, nil, .notFound, nil),
                ("/crash", .get, nil, .internalServerError, "server log"),
                ("/echo", .post, "{\"name\": 5}", .badRequest, nil),
                ("/echo", .post, "not json", .badRequest, nil),
            ]
            for (uri, method, body, status, detail) in cases {
                var headers = HTTPFields()
                headers[.contentType] = "application/json"
                try await client.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) { response in
                    #expect(response.status == status, "\(uri)")
                    #expect(response.headers[.contentType] == "application/problem+json", "\(uri)")
                    let problem = try JSONDecoder().decode(Problem.self, from: Data(response.body.readableBytesView))
                    #expect(problem.status == Int(status.code), "\(uri)")
                    #expect(problem.type == "about:blank")
                    #expect(problem.title == status.reasonPhrase)
                    if let detail { #expect(problem.detail?.contains(detail) == true, "\(uri): \(String(describing: problem.detail))") }
                    #expect(!String(buffer: response.body).contains("hunter2"))
                }
            }
            try await client.execute(uri: "/echo", method: .post, body: ByteBuffer(string: "{\"name\": \"ok\"}")) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "ok")
            }
        }
    }
}
