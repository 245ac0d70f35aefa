import Foundation

extension ConfigurationDocument {
    /// How a collector reaches and opens `meter`: its line's endpoint, timeouts and network
    /// segment, the template's defaults under the meter's own settings, and the manufacturer
    /// profile resolved (a profile this document defines travels inline, a built-in by name).
    ///
    /// `keys` are the meter's secrets as the collectors receive them (wrapped); the document's
    /// own (sealed) secrets are never copied into a task.
    public func access(of meter: Meter, line: Line, template: Template?, keys: MeterAccess.Keys?) -> MeterAccess {
        let settings = meter.settings.over(template?.defaults ?? MeterSettings())
        let profileName = settings.manufacturerProfile ?? "standard"
        let profile = manufacturerProfiles.first { $0.id == profileName }?.profile ?? .named(profileName)
        return MeterAccess(
            endpoint: line.endpoint,
            protocol: settings.protocol ?? .dlmsHDLC,
            clientSAP: settings.clientSAP ?? 16,
            serverLogicalAddress: settings.serverLogicalAddress ?? 1,
            hdlcPhysicalAddress: meter.hdlcPhysicalAddress,
            deviceAddress: meter.deviceAddress,
            authentication: settings.authentication ?? .none,
            security: settings.security ?? .none,
            systemTitle: meter.systemTitle,
            serverSystemTitle: meter.serverSystemTitle,
            manufacturerProfile: profile,
            keys: keys,
            timeouts: line.timeouts,
            networkSegment: line.networkSegment)
    }
}
