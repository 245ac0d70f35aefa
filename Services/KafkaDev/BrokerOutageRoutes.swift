import Foundation
import Hummingbird
import Logging
import Messaging
import Observability
import ServiceRuntime
import Synchronization

/// kafka-dev's outage switches on its admin port, for fault tests and chaos runs:
/// - `POST /brokers/<id>/down`: broker `id` (1 … brokers) closes its connections and refuses
///   new ones, as a crashed or partitioned broker would; its partitions keep their messages;
/// - `POST /brokers/<id>/up`: it serves again.
///
/// Both answer `{"broker": id, "state": "down"|"up"}`; an unknown broker is a 404, a request
/// before the cluster is up a 503 (problem documents).
final class BrokerOutageSwitch: Sendable {
    private let cluster = Mutex<KafkaMockCluster?>(nil)
    private let logger: Logger

    init(logger: Logger) { self.logger = logger }

    /// Called by ``KafkaDevBroker`` once the mock cluster exists, and with `nil` when it stops.
    func attach(_ cluster: KafkaMockCluster?) { self.cluster.withLock { $0 = cluster } }

    struct BrokerState: ResponseEncodable, Sendable {
        var broker: Int
        var state: String
    }

    func addRoutes(to router: AdminRouter) {
        router.post("brokers/:id/down") { _, context in try self.set(context, up: false) }
        router.post("brokers/:id/up") { _, context in try self.set(context, up: true) }
    }

    private func set(_ context: BasicRequestContext, up: Bool) throws -> BrokerState {
        guard let cluster = cluster.withLock({ $0 }) else {
            throw HTTPProblem(.serviceUnavailable, detail: "the mock cluster is not running")
        }
        let text = context.parameters.get("id") ?? ""
        guard let id = Int(text), (1...cluster.brokers).contains(id) else {
            throw HTTPProblem.notFound("no broker '\(text)': the brokers are 1…\(cluster.brokers)")
        }
        do {
            if up { try cluster.setBrokerUp(id) } else { try cluster.setBrokerDown(id) }
        } catch {
            throw HTTPProblem(.internalServerError, detail: "\(error)")
        }
        logger.warning(up ? "mock broker up again" : "mock broker taken down (outage switch)", metadata: ["broker": "\(id)"])
        return BrokerState(broker: id, state: up ? "up" : "down")
    }
}
