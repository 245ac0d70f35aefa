import Metrics

/// The uploader's metrics for one kind of delivery (`readings` or `results`), made once: the
/// intake updates the buffer gauge per message.
struct UploaderMetrics: Sendable {
    /// Bytes consumed and not yet confirmed.
    let bufferedBytes: Gauge
    /// Readings (or results) per IMS request.
    let requestItems: Recorder
    /// One IMS request, sent to answered.
    let requestDuration: Timer
    /// IMS requests sent again after an undecided answer.
    let retries: Counter
    /// Items the IMS accepted.
    let delivered: Counter
    /// Messages published to the dead-letter topic.
    let deadLetters: Counter
    private let kind: String

    init(kind: String) {
        let dimensions = [("kind", kind)]
        self.kind = kind
        bufferedBytes = Gauge(label: "hes_uploader_buffered_bytes", dimensions: dimensions)
        requestItems = Recorder(label: "hes_uploader_request_items", dimensions: dimensions)
        requestDuration = Timer(label: "hes_uploader_ims_request_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds)
        retries = Counter(label: "hes_uploader_retries_total", dimensions: dimensions)
        delivered = Counter(label: "hes_uploader_items_delivered_total", dimensions: dimensions)
        deadLetters = Counter(label: "hes_uploader_dead_letters_total", dimensions: dimensions)
    }

    /// Items the IMS rejected for good, by its code.
    func rejected(code: String) -> Counter {
        Counter(label: "hes_uploader_items_rejected_total", dimensions: [("kind", kind), ("code", code)])
    }

    /// Readings in the items the IMS accepted.
    static let readingsDelivered = Counter(label: "hes_uploader_readings_delivered_total")
    /// The breaker toward the IMS: 0 closed, 1 half-open, 2 open.
    static let circuitState = Gauge(label: "hes_uploader_circuit_state")
}
