import AsyncHTTPClient
import Contracts
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// What the uploader sends reading batches as.
enum IMSFormat: String, Sendable, CaseIterable {
    /// The native JSON API (``IMSAPI``): `POST /v1/readings` with the batches as published.
    case native
    /// IEC 61968-9 `MeterReadings` in a 61968-100 `RequestMessage` (``CIMMeterReadings``):
    /// `POST /v1/cim/meter-readings`. Task results stay native JSON (`POST /v1/results`).
    case cim
}

/// Posts delivery requests to the IMS (``IMSAPI``, or ``CIMMeterReadings`` for readings in CIM
/// mode) over async-http-client, and says what the answer means for the messages in it.
struct IMSClient: Sendable {
    struct Configuration: Sendable {
        /// `http(s)://host:port`, without a trailing slash.
        var baseURL: String
        /// Sent as `Authorization: Bearer <token>`.
        var token: String?
        /// PEM file of the CA that signed the IMS's certificate (`https` only); `nil`: the system's.
        var caFile: String?
        /// One request's deadline, connecting to reading the reply. Default: 30 s.
        var requestTimeout: Duration = .seconds(30)
        var connectTimeout: Duration = .seconds(5)
    }

    /// What an IMS answer means.
    enum Answer: Sendable, Equatable {
        /// Decided: every item accepted except those in `rejected` (2xx, or 422 listing items).
        case decided(status: Int, reply: IMSDeliveryReply?)
        /// Refused as a whole, for good (400, 422 without items): retrying will not help.
        case refused(status: Int, reason: String)
        /// The body is too large for the IMS (413): smaller requests may pass.
        case tooLarge(reason: String)
        /// Not decided (connection failure, timeout, 5xx, 401/403/404, 429): send again later.
        case undecided(reason: String)
    }

    let configuration: Configuration
    let http: HTTPClient

    init(configuration: Configuration) throws {
        var baseURL = configuration.baseURL
        while baseURL.hasSuffix("/") { baseURL.removeLast() }
        var configuration = configuration
        configuration.baseURL = baseURL
        self.configuration = configuration
        var httpConfiguration = HTTPClient.Configuration()
        httpConfiguration.timeout = .init(connect: .milliseconds(configuration.connectTimeout.wholeMilliseconds),
                                          read: .milliseconds(configuration.requestTimeout.wholeMilliseconds))
        if let caFile = configuration.caFile {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .file(caFile)
            httpConfiguration.tlsConfiguration = tls
        }
        httpConfiguration.httpVersion = .http1Only
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: httpConfiguration)
    }

    func shutdown() async {
        try? await http.shutdown()
    }

    /// Posts `body` (JSON, or a CIM `RequestMessage` when `format` is ``IMSFormat/cim``) and
    /// classifies the answer.
    func post(path: String, body: [UInt8], idempotencyKey: String, format: IMSFormat = .native) async -> Answer {
        var request = HTTPClientRequest(url: configuration.baseURL + path)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: format == .cim ? CIMMeterReadings.contentType : "application/json")
        request.headers.add(name: IMSAPI.idempotencyKeyHeader, value: idempotencyKey)
        if let token = configuration.token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await http.execute(request, timeout: .milliseconds(configuration.requestTimeout.wholeMilliseconds))
            let bytes = try await response.body.collect(upTo: 16 << 20)
            return Self.classify(status: Int(response.status.code), body: Array(bytes.readableBytesView), format: format)
        } catch {
            return .undecided(reason: "\(error)")
        }
    }

    /// The meaning of a status and body (pure; see ``Answer``). A CIM `ResponseMessage` is read
    /// into the same reply: its `Error`s naming an item are that item's rejection.
    static func classify(status: Int, body: [UInt8], format: IMSFormat = .native) -> Answer {
        let reply = format == .cim ? CIMReplyParser.parse(body) : try? ContractCoder.decode(IMSDeliveryReply.self, from: body)
        let text = String(decoding: body.prefix(512), as: UTF8.self)
        switch status {
        case 200..<300:
            return .decided(status: status, reply: reply)
        case 422 where reply.map({ !$0.rejected.isEmpty }) == true:
            return .decided(status: status, reply: reply)
        case 413:
            return .tooLarge(reason: "HTTP 413: \(text)")
        case 400, 422:
            return .refused(status: status, reason: "HTTP \(status): \(text)")
        default:
            return .undecided(reason: "HTTP \(status): \(text)")
        }
    }
}

extension Duration {
    /// The duration in whole milliseconds (for APIs that take an integer count).
    var wholeMilliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}
