import Foundation

/// What changes from one configuration to another, element by element (by id): what `validate`
/// reports as its dry-run summary and `GET /v1/config/diff` returns.
public struct ConfigurationDiff: Codable, Sendable, Hashable {
    /// The ids added, removed and changed in one kind of element.
    public struct Changes: Codable, Sendable, Hashable {
        public var added: [String] = []
        public var removed: [String] = []
        public var changed: [String] = []

        public init(added: [String] = [], removed: [String] = [], changed: [String] = []) {
            self.added = added
            self.removed = removed
            self.changed = changed
        }

        public var isEmpty: Bool { added.isEmpty && removed.isEmpty && changed.isEmpty }
        public var count: Int { added.count + removed.count + changed.count }
    }

    public var from: Int64?
    public var to: Int64?
    public var regions: Changes
    public var lines: Changes
    public var templates: Changes
    public var schedules: Changes
    public var manufacturerProfiles: Changes
    public var meters: Changes
    /// Meters whose own entry is unchanged but whose template or line changed: they are read
    /// differently from now on.
    public var metersAffectedIndirectly: Int

    public var isEmpty: Bool {
        [regions, lines, templates, schedules, manufacturerProfiles, meters].allSatisfy(\.isEmpty)
    }

    /// The changes from `old` (nil: nothing yet) to `new`.
    public init(from old: ConfigurationDocument?, to new: ConfigurationDocument, fromVersion: Int64? = nil, toVersion: Int64? = nil) {
        from = fromVersion
        to = toVersion
        regions = Self.compare(old?.regions ?? [], new.regions, id: \.id)
        lines = Self.compare(old?.lines ?? [], new.lines, id: \.id)
        templates = Self.compare(old?.templates ?? [], new.templates, id: \.id)
        schedules = Self.compare(old?.schedules ?? [], new.schedules, id: \.id)
        manufacturerProfiles = Self.compare(old?.manufacturerProfiles ?? [], new.manufacturerProfiles, id: \.id)
        meters = Self.compare(old?.meters ?? [], new.meters, id: \.id)
        let changedTemplates = Set(templates.changed)
        let changedLines = Set(lines.changed)
        let direct = Set(meters.added + meters.changed)
        metersAffectedIndirectly = new.meters.reduce(0) { count, meter in
            !direct.contains(meter.id) && (changedTemplates.contains(meter.template) || changedLines.contains(meter.line)) ? count + 1 : count
        }
    }

    static func compare<Element: Hashable>(_ old: [Element], _ new: [Element], id: (Element) -> String) -> Changes {
        var before: [String: Element] = [:]
        before.reserveCapacity(old.count)
        for element in old { before[id(element)] = element }
        var changes = Changes()
        var seen = Set<String>()
        seen.reserveCapacity(new.count)
        for element in new {
            let key = id(element)
            seen.insert(key)
            if let previous = before[key] {
                if previous != element { changes.changed.append(key) }
            } else {
                changes.added.append(key)
            }
        }
        changes.removed = old.map(id).filter { !seen.contains($0) }
        return changes
    }
}

/// A partial update: meters added or replaced (by id) and meters removed, applied to a base
/// version to make a new one (validated and versioned like a whole document).
public struct MeterChanges: Codable, Sendable, Hashable {
    public var upsert: [ConfigurationDocument.Meter]
    public var remove: [String]

    public init(upsert: [ConfigurationDocument.Meter] = [], remove: [String] = []) {
        self.upsert = upsert
        self.remove = remove
    }

    private enum CodingKeys: String, CodingKey { case upsert, remove }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        upsert = try c.decodeIfPresent([ConfigurationDocument.Meter].self, forKey: .upsert) ?? []
        remove = try c.decodeIfPresent([String].self, forKey: .remove) ?? []
    }

    /// `base` with these changes: removed meters dropped, upserted meters replacing theirs in
    /// place or appended in order.
    public func applied(to base: ConfigurationDocument) -> ConfigurationDocument {
        var document = base
        let removed = Set(remove)
        var replacement: [String: ConfigurationDocument.Meter] = [:]
        for meter in upsert { replacement[meter.id] = meter }
        var placed = Set<String>()
        document.meters = base.meters.compactMap { meter in
            if removed.contains(meter.id) { return nil }
            if let new = replacement[meter.id] {
                placed.insert(meter.id)
                return new
            }
            return meter
        }
        for meter in upsert where !placed.contains(meter.id) && !removed.contains(meter.id) {
            placed.insert(meter.id)
            document.meters.append(replacement[meter.id]!)
        }
        return document
    }
}
