import Contracts
import Foundation
import Logging
import PostgresNIO

/// The normalized tables of the active version, rebuilt from its document in the activating
/// transaction (bulk inserts of arrays, one statement per table). The scheduler reads them.
enum ReadModels {
    static func rebuild(from document: ConfigurationDocument, version: Int64, on connection: PostgresConnection, logger: Logger) async throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        func json(_ value: some Encodable) throws -> String { String(decoding: try encoder.encode(value), as: UTF8.self) }

        try await connection.query("TRUNCATE template_schedules, meters, lines, schedules, templates, regions, meter_secrets", logger: logger)

        let regions = document.regions
        try await connection.query("""
            INSERT INTO regions (id, config_version_id, spec)
            SELECT i, \(version), s::jsonb FROM unnest(\(regions.map(\.id))::text[], \(try regions.map(json))::text[]) AS r (i, s)
            """, logger: logger)

        let lines = document.lines
        try await connection.query("""
            INSERT INTO lines (id, region_id, kind, address, max_concurrency, config_version_id, spec)
            SELECT i, r, k, a, m, \(version), s::jsonb
            FROM unnest(\(lines.map(\.id))::text[], \(lines.map(\.region))::text[], \(lines.map(\.endpoint.kindName))::text[],
                        \(lines.map(\.endpoint.address))::text[], \(lines.map(\.maxSessions))::int[], \(try lines.map(json))::text[])
                 AS l (i, r, k, a, m, s)
            """, logger: logger)

        let templates = document.templates
        try await connection.query("""
            INSERT INTO templates (id, config_version_id, spec)
            SELECT i, \(version), s::jsonb FROM unnest(\(templates.map(\.id))::text[], \(try templates.map(json))::text[]) AS t (i, s)
            """, logger: logger)

        let schedules = document.schedules
        try await connection.query("""
            INSERT INTO schedules (id, cron, time_zone, collection_window, jitter, config_version_id, spec)
            SELECT i, c, z, make_interval(mins => w), make_interval(secs => j), \(version), s::jsonb
            FROM unnest(\(schedules.map(\.id))::text[], \(schedules.map(\.cron))::text[], \(schedules.map(\.timeZone))::text[],
                        \(schedules.map(\.windowMinutes))::int[], \(schedules.map(\.jitterSeconds))::int[], \(try schedules.map(json))::text[])
                 AS x (i, c, z, w, j, s)
            """, logger: logger)

        let pairs = templates.flatMap { template in Set(template.schedules).sorted().map { (template.id, $0) } }
        try await connection.query("""
            INSERT INTO template_schedules (template_id, schedule_id)
            SELECT * FROM unnest(\(pairs.map(\.0))::text[], \(pairs.map(\.1))::text[])
            """, logger: logger)

        let defaults = Dictionary(templates.map { ($0.id, $0.defaults) }, uniquingKeysWith: { first, _ in first })
        var ids: [String] = [], serials: [String] = [], lineIDs: [String] = [], templateIDs: [String] = [], protocols: [String] = []
        var authentications: [String] = [], addresses: [Int] = [], profiles: [String] = [], specs: [String] = []
        var secretMeters: [String] = [], secretKinds: [String] = [], secretBoxes: [String] = [], secretKeyIDs: [String] = []
        let count = document.meters.count
        ids.reserveCapacity(count)
        specs.reserveCapacity(count)
        for meter in document.meters {
            let settings = meter.settings.over(defaults[meter.template] ?? .init())
            let authentication = settings.authentication ?? .none
            ids.append(meter.id)
            serials.append(meter.serialNumber ?? meter.id)
            lineIDs.append(meter.line)
            templateIDs.append(meter.template)
            protocols.append((settings.protocol ?? .dlmsHDLC).rawValue)
            authentications.append(authentication.rawValue)
            addresses.append(meter.hdlcPhysicalAddress ?? -1)
            profiles.append(settings.manufacturerProfile ?? "")
            var spec = meter
            spec.keys = nil
            specs.append(try json(spec))
            for (name, secret) in meter.keys?.all ?? [] {
                guard case .sealed(let keyID, let box) = secret else { continue }
                secretMeters.append(meter.id)
                secretKinds.append(SecretVault.secretKind(name, authentication: authentication))
                secretBoxes.append(box)
                secretKeyIDs.append(keyID)
            }
        }
        try await connection.query("""
            INSERT INTO meters (id, serial_number, line_id, template_id, protocol, authentication, hdlc_address, manufacturer_profile, config_version_id, spec)
            SELECT i, n, l, t, p, a, NULLIF(h, -1), NULLIF(m, ''), \(version), s::jsonb
            FROM unnest(\(ids)::text[], \(serials)::text[], \(lineIDs)::text[], \(templateIDs)::text[], \(protocols)::text[],
                        \(authentications)::text[], \(addresses)::int[], \(profiles)::text[], \(specs)::text[])
                 AS x (i, n, l, t, p, a, h, m, s)
            """, logger: logger)
        try await connection.query("""
            INSERT INTO meter_secrets (meter_id, key_kind, ciphertext, key_id)
            SELECT m, k, decode(b, 'base64'), i FROM unnest(\(secretMeters)::text[], \(secretKinds)::text[], \(secretBoxes)::text[], \(secretKeyIDs)::text[])
                 AS x (m, k, b, i)
            """, logger: logger)
    }
}
