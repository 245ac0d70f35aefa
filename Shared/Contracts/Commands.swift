import Foundation

/// An on-demand command from the IMS (DESIGN.md §7), as `POST /v1/commands` takes it.
/// `{"kind": "read-profile", "meterID": "M1", "profile": "1.0.99.1.0.255", "from": "…", "to": "…"}`,
/// `{"kind": "disconnect", "meterID": "M1"}`.
public struct CommandRequest: Codable, Sendable, Hashable {
    public enum Kind: String, Codable, Sendable, Hashable, CaseIterable {
        case readProfile = "read-profile", readObjects = "read-objects", timeSync = "time-sync", disconnect, reconnect
    }

    public var kind: Kind
    public var meterID: String
    /// read-profile: the profile's OBIS code. Default `1.0.99.1.0.255`.
    public var profile: String?
    /// read-profile: the capture-time range.
    public var from: Date?
    public var to: Date?
    /// read-objects: what to read.
    public var objects: [ObjectReference]?
    /// time-sync: the clock is set when it is further off than this. Default 2 s.
    public var maximumDeviationSeconds: Double?
    /// After this instant the command expires unexecuted. Default: one hour after it is accepted.
    public var deadline: Date?

    public init(kind: Kind, meterID: String, profile: String? = nil, from: Date? = nil, to: Date? = nil, objects: [ObjectReference]? = nil,
                maximumDeviationSeconds: Double? = nil, deadline: Date? = nil) {
        self.kind = kind
        self.meterID = meterID
        self.profile = profile
        self.from = from
        self.to = to
        self.objects = objects
        self.maximumDeviationSeconds = maximumDeviationSeconds
        self.deadline = deadline
    }

    /// What is wrong with the request's fields for its kind (pointers into the request).
    public func problems(now: Date) -> [ConfigurationProblem] {
        var problems: [ConfigurationProblem] = []
        if meterID.isEmpty { problems.append(.init(pointer: "/meterID", detail: "a meter id is required")) }
        switch kind {
        case .readProfile:
            if let profile, ConfigurationValidator.obisProblem(profile) != nil {
                problems.append(.init(pointer: "/profile", detail: "an OBIS code is six groups 0…255 (1.0.99.1.0.255), not '\(profile)'"))
            }
            guard let from, let to else {
                problems.append(.init(pointer: from == nil ? "/from" : "/to", detail: "read-profile needs the range: 'from' and 'to'"))
                break
            }
            if from >= to { problems.append(.init(pointer: "/to", detail: "'to' must be after 'from'")) }
            if to.timeIntervalSince(from) > 92 * 86_400 { problems.append(.init(pointer: "/from", detail: "a range is at most 92 days")) }
        case .readObjects:
            let objects = objects ?? []
            if objects.isEmpty || objects.count > 64 { problems.append(.init(pointer: "/objects", detail: "read-objects needs 1…64 objects")) }
            for (index, object) in objects.enumerated() where ConfigurationValidator.obisProblem(object.obis) != nil {
                problems.append(.init(pointer: "/objects/\(index)/obis", detail: "not an OBIS code: '\(object.obis)'"))
            }
        case .timeSync:
            if let deviation = maximumDeviationSeconds, !(deviation >= 0 && deviation <= 3600) {
                problems.append(.init(pointer: "/maximumDeviationSeconds", detail: "0…3600 seconds, not \(deviation)"))
            }
        case .disconnect, .reconnect:
            break
        }
        if let deadline {
            if deadline <= now { problems.append(.init(pointer: "/deadline", detail: "the deadline has passed already")) }
            if deadline.timeIntervalSince(now) > 7 * 86_400 { problems.append(.init(pointer: "/deadline", detail: "a deadline is at most 7 days ahead")) }
        }
        return problems
    }

    /// The task actions that carry the command out.
    public var actions: [TaskAction] {
        switch kind {
        case .readProfile:
            [.readProfile(profile: ObjectReference(classID: 7, obis: profile ?? "1.0.99.1.0.255", attribute: 2), from: from ?? .distantPast, to: to ?? .distantPast)]
        case .readObjects: [.readObjects(objects ?? [])]
        case .timeSync: [.synchronizeClock(maximumDeviation: maximumDeviationSeconds ?? 2)]
        case .disconnect: [.setSupplyState(.disconnected)]
        case .reconnect: [.setSupplyState(.connected)]
        }
    }
}

/// A command as the API shows it: its request, where it is in its life
/// (`accepted → dispatched → running → succeeded | failed | expired | cancelled`), and its outcome.
public struct CommandView: Codable, Sendable, Hashable {
    public var id: String
    public var request: CommandRequest
    public var state: String
    public var requiresApproval: Bool
    public var requestedBy: String
    public var approvedBy: String?
    public var deadline: Date
    public var createdAt: Date
    public var updatedAt: Date
    public var dispatchedAt: Date?
    public var finishedAt: Date?
    /// The outcome the collector reported (through the uploader), as JSON.
    public var result: String?
    public var error: String?

    public init(id: String, request: CommandRequest, state: String, requiresApproval: Bool, requestedBy: String, approvedBy: String?,
                deadline: Date, createdAt: Date, updatedAt: Date, dispatchedAt: Date?, finishedAt: Date?, result: String?, error: String?) {
        self.id = id
        self.request = request
        self.state = state
        self.requiresApproval = requiresApproval
        self.requestedBy = requestedBy
        self.approvedBy = approvedBy
        self.deadline = deadline
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.dispatchedAt = dispatchedAt
        self.finishedAt = finishedAt
        self.result = result
        self.error = error
    }
}
