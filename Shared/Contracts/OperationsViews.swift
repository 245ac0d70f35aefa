import Foundation

/// `GET /v1/meters/{id}/status`: one meter as operators see it — where it is configured, what
/// its recent tasks came to (as the IMS confirmed them) and up to when the IMS holds its data.
public struct MeterStatusView: Codable, Sendable, Hashable {
    public struct Outcome: Codable, Sendable, Hashable {
        public var taskID: String
        public var commandID: String?
        public var outcome: String
        public var failureCode: String?
        public var readings: Int
        public var finishedAt: Date

        public init(taskID: String, commandID: String?, outcome: String, failureCode: String?, readings: Int, finishedAt: Date) {
            self.taskID = taskID
            self.commandID = commandID
            self.outcome = outcome
            self.failureCode = failureCode
            self.readings = readings
            self.finishedAt = finishedAt
        }
    }

    public struct Progress: Codable, Sendable, Hashable {
        public var profile: String
        public var confirmedUntil: Date
        public init(profile: String, confirmedUntil: Date) {
            self.profile = profile
            self.confirmedUntil = confirmedUntil
        }
    }

    public var meterID: String
    public var region: String
    public var lineID: String
    public var template: String?
    public var protocolName: String
    /// The newest first, at most ten.
    public var recentOutcomes: [Outcome]
    public var progress: [Progress]
    public var lastDispatchedAt: Date?
    public var openCommands: Int

    public init(meterID: String, region: String, lineID: String, template: String?, protocolName: String, recentOutcomes: [Outcome],
                progress: [Progress], lastDispatchedAt: Date?, openCommands: Int) {
        self.meterID = meterID
        self.region = region
        self.lineID = lineID
        self.template = template
        self.protocolName = protocolName
        self.recentOutcomes = recentOutcomes
        self.progress = progress
        self.lastDispatchedAt = lastDispatchedAt
        self.openCommands = openCommands
    }
}

/// `GET /v1/regions/status`: each region's size and its last hour of work.
public struct RegionStatusView: Codable, Sendable, Hashable {
    public var region: String
    public var lines: Int
    public var meters: Int
    /// Tasks the scheduler emitted in the last hour.
    public var dispatchedLastHour: Int
    public var succeededLastHour: Int
    public var failedLastHour: Int
    /// Tasks of the last 6 hours without a result the IMS confirmed: queued at the collectors,
    /// running, or on their way to the IMS.
    public var awaitingResults: Int
    public var lastConfirmation: Date?

    public init(region: String, lines: Int, meters: Int, dispatchedLastHour: Int, succeededLastHour: Int, failedLastHour: Int,
                awaitingResults: Int, lastConfirmation: Date?) {
        self.region = region
        self.lines = lines
        self.meters = meters
        self.dispatchedLastHour = dispatchedLastHour
        self.succeededLastHour = succeededLastHour
        self.failedLastHour = failedLastHour
        self.awaitingResults = awaitingResults
        self.lastConfirmation = lastConfirmation
    }
}
