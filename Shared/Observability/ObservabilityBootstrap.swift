import Logging
import Metrics
import Prometheus
import Synchronization

/// Installs the process-wide logging and metrics backends, once per process.
///
/// swift-log and swift-metrics allow exactly one bootstrap per process; a second call here is a
/// no-op that returns the registry installed first, so tests may call it freely.
public enum ObservabilityBootstrap {
    private static let installed = Mutex<PrometheusCollectorRegistry?>(nil)

    /// Installs logging (`format`, `level`) and a Prometheus metrics registry.
    /// - Parameters:
    ///   - service: the executable name, added to every log record as `service`.
    ///   - format: text or JSON lines on standard error.
    ///   - level: the minimum level written.
    /// - Returns: the registry that `/metrics` serves.
    @discardableResult
    public static func bootstrap(service: String, format: LogFormat, level: Logger.Level) -> PrometheusCollectorRegistry {
        installed.withLock { registry in
            if let registry { return registry }
            let newRegistry = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: newRegistry))
            LoggingSystem.bootstrap { label in
                var handler = LineLogHandler(label: label, format: format)
                handler.logLevel = level
                if format == .json {
                    // Text lines already start with the logger label; JSON records need the service
                    // as a field for log shippers that merge many processes.
                    handler[metadataKey: LogMetadataKey.service] = .string(service)
                }
                return handler
            }
            registry = newRegistry
            return newRegistry
        }
    }
}
