import Foundation
import Logging
import Persistence
import PostgresNIO

/// The operators' status page (`GET /status` on the admin port, server-rendered HTML, refreshed
/// every 15 s): the active configuration, regions and lines, collection success by hour, failures
/// by reason, outstanding commands and how far behind the IMS's confirmations are. Its numbers
/// come from the read models, `dispatched_tasks`, `task_outcomes` (the results the IMS
/// confirmed) and `commands`.
struct StatusPage: Sendable {
    struct Snapshot: Sendable {
        struct Region: Sendable { var id: String; var lines: Int; var meters: Int; var lineKinds: [String: Int] }
        struct Hour: Sendable { var region: String; var hour: Date; var succeeded: Int; var failed: Int; var readings: Int }
        struct Failure: Sendable { var reason: String; var tasks: Int; var meters: Int }
        struct Command: Sendable { var id: String; var kind: String; var meterID: String; var state: String; var createdAt: Date; var deadline: Date? }

        var generatedAt: Date
        var activeVersion: Int64?
        var activatedAt: Date?
        var regions: [Region] = []
        var hours: [Hour] = []
        var failures: [Failure] = []
        var commandStates: [String: Int] = [:]
        var outstandingCommands: [Command] = []
        /// Tasks emitted in the last 6 hours without a confirmed result yet.
        var awaitingResults = 0
        var dispatchedLastHour = 0
        /// Seconds from a task's end to the IMS's confirmation, over the last hour.
        var deliveryLagAverage: Double?
        var deliveryLagMaximum: Double?
        var lastConfirmation: Date?
    }

    let database: DatabaseService
    let logger: Logger

    /// Reads what the page shows.
    func snapshot() async throws -> Snapshot {
        try await database.withConnection { connection in
            var snapshot = Snapshot(generatedAt: Date())
            for try await (id, at) in try await connection.query(
                "SELECT id, activated_at FROM config_versions WHERE status = 'active'", logger: logger).decode((Int64, Date?).self) {
                snapshot.activeVersion = id
                snapshot.activatedAt = at
            }
            var kinds: [String: [String: Int]] = [:]
            for try await (region, kind, count) in try await connection.query(
                "SELECT region_id, kind, count(*)::bigint FROM lines GROUP BY 1, 2", logger: logger).decode((String, String, Int).self) {
                kinds[region, default: [:]][kind] = count
            }
            for try await (id, lines, meters) in try await connection.query("""
                SELECT r.id, (SELECT count(*) FROM lines l WHERE l.region_id = r.id)::bigint,
                       (SELECT count(*) FROM meters m JOIN lines l ON l.id = m.line_id WHERE l.region_id = r.id)::bigint
                FROM regions r ORDER BY r.id
                """, logger: logger).decode((String, Int, Int).self) {
                snapshot.regions.append(.init(id: id, lines: lines, meters: meters, lineKinds: kinds[id] ?? [:]))
            }
            for try await (region, hour, succeeded, failed, readings) in try await connection.query("""
                SELECT region_id, date_trunc('hour', finished_at), count(*) FILTER (WHERE outcome = 'succeeded')::bigint,
                       count(*) FILTER (WHERE outcome <> 'succeeded')::bigint, COALESCE(sum(readings), 0)::bigint
                FROM task_outcomes WHERE finished_at > now() - interval '6 hours' AND command_id IS NULL
                GROUP BY 1, 2 ORDER BY 1, 2 DESC
                """, logger: logger).decode((String, Date, Int, Int, Int).self) {
                snapshot.hours.append(.init(region: region, hour: hour, succeeded: succeeded, failed: failed, readings: readings))
            }
            for try await (reason, tasks, meters) in try await connection.query("""
                SELECT COALESCE(failure_code, outcome), count(*)::bigint, count(DISTINCT meter_id)::bigint FROM task_outcomes
                WHERE outcome <> 'succeeded' AND finished_at > now() - interval '24 hours'
                GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20
                """, logger: logger).decode((String, Int, Int).self) {
                snapshot.failures.append(.init(reason: reason, tasks: tasks, meters: meters))
            }
            for try await (state, count) in try await connection.query("""
                SELECT state, count(*)::bigint FROM commands WHERE created_at > now() - interval '24 hours' OR state IN ('accepted', 'dispatched', 'running')
                GROUP BY 1
                """, logger: logger).decode((String, Int).self) {
                snapshot.commandStates[state] = count
            }
            for try await (id, kind, meter, state, created, deadline) in try await connection.query("""
                SELECT id::text, kind, meter_id, state, created_at, deadline FROM commands
                WHERE state IN ('accepted', 'dispatched', 'running') ORDER BY created_at LIMIT 20
                """, logger: logger).decode((String, String, String, String, Date, Date?).self) {
                snapshot.outstandingCommands.append(.init(id: id, kind: kind, meterID: meter, state: state, createdAt: created, deadline: deadline))
            }
            for try await (awaiting, lastHour) in try await connection.query("""
                SELECT count(*) FILTER (WHERE o.task_id IS NULL)::bigint, count(*) FILTER (WHERE d.dispatched_at > now() - interval '1 hour')::bigint
                FROM dispatched_tasks d LEFT JOIN task_outcomes o ON o.task_id = d.task_id
                WHERE d.dispatched_at > now() - interval '6 hours'
                """, logger: logger).decode((Int, Int).self) {
                snapshot.awaitingResults = awaiting
                snapshot.dispatchedLastHour = lastHour
            }
            for try await (average, maximum, last) in try await connection.query("""
                SELECT avg(extract(epoch FROM confirmed_at - finished_at))::float8, max(extract(epoch FROM confirmed_at - finished_at))::float8,
                       (SELECT max(confirmed_at) FROM task_outcomes)
                FROM task_outcomes WHERE confirmed_at > now() - interval '1 hour'
                """, logger: logger).decode((Double?, Double?, Date?).self) {
                snapshot.deliveryLagAverage = average
                snapshot.deliveryLagMaximum = maximum
                snapshot.lastConfirmation = last
            }
            return snapshot
        }
    }

    // MARK: - Rendering

    /// The page for `snapshot`. Pure: every value is escaped.
    static func render(_ snapshot: Snapshot) -> String {
        let time = ISO8601DateFormatter()
        var html = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="15">
            <title>SwiftHES status</title>
            <style>
            body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
            h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.6em; }
            table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
            th { background: #f2f2f2; } td.text, th.text { text-align: left; }
            .ok { color: #176b2c; } .bad { color: #a61b1b; } .muted { color: #777; }
            .bar { display: inline-block; height: .8em; background: #3b8b4f; vertical-align: middle; }
            .bar.failed { background: #c0392b; }
            </style></head><body>
            <h1>SwiftHES status</h1>

            """
        let version = snapshot.activeVersion.map { "configuration version <b id=\"config-version\">\($0)</b> active since \(escape(snapshot.activatedAt.map { time.string(from: $0) } ?? "?"))" }
            ?? "<span class=\"bad\">no configuration is active</span>"
        html += "<p>\(version) · generated \(escape(time.string(from: snapshot.generatedAt)))</p>\n"

        html += "<h2>Regions and lines</h2>\n<table id=\"regions\"><tr><th class=\"text\">region</th><th>lines</th><th>meters</th><th class=\"text\">line kinds</th></tr>\n"
        for region in snapshot.regions {
            let kinds = region.lineKinds.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            html += "<tr><td class=\"text\">\(escape(region.id))</td><td>\(region.lines)</td><td>\(region.meters)</td><td class=\"text\">\(escape(kinds))</td></tr>\n"
        }
        if snapshot.regions.isEmpty { html += "<tr><td class=\"text muted\" colspan=\"4\">none</td></tr>\n" }
        html += "</table>\n"

        let succeeded = snapshot.hours.reduce(0) { $0 + $1.succeeded }
        let failed = snapshot.hours.reduce(0) { $0 + $1.failed }
        let readings = snapshot.hours.reduce(0) { $0 + $1.readings }
        let rate = succeeded + failed == 0 ? "–" : String(format: "%.1f %%", 100 * Double(succeeded) / Double(succeeded + failed))
        html += """
            <h2>Collection, last 6 hours</h2>
            <p>scheduled and gap tasks: <b id="tasks-succeeded" class="ok">\(succeeded)</b> succeeded,
            <b id="tasks-failed" class="bad">\(failed)</b> not, success <b id="success-rate">\(rate)</b>;
            <b id="readings-confirmed">\(readings)</b> readings confirmed by the IMS</p>
            <table id="hours"><tr><th class="text">region</th><th class="text">hour (UTC)</th><th>succeeded</th><th>failed</th><th>readings</th><th class="text"></th></tr>

            """
        let widest = max(1, snapshot.hours.map { $0.succeeded + $0.failed }.max() ?? 1)
        for hour in snapshot.hours {
            let good = 200 * hour.succeeded / widest, bad = 200 * hour.failed / widest
            html += "<tr><td class=\"text\">\(escape(hour.region))</td><td class=\"text\">\(escape(time.string(from: hour.hour)))</td><td>\(hour.succeeded)</td><td>\(hour.failed)</td><td>\(hour.readings)</td>"
            html += "<td class=\"text\"><span class=\"bar\" style=\"width:\(good)px\"></span><span class=\"bar failed\" style=\"width:\(bad)px\"></span></td></tr>\n"
        }
        if snapshot.hours.isEmpty { html += "<tr><td class=\"text muted\" colspan=\"6\">no results yet</td></tr>\n" }
        html += "</table>\n"

        html += "<h2>Failures by reason, last 24 hours</h2>\n<table id=\"failures\"><tr><th class=\"text\">reason</th><th>tasks</th><th>meters</th></tr>\n"
        for failure in snapshot.failures {
            html += "<tr><td class=\"text\">\(escape(failure.reason))</td><td>\(failure.tasks)</td><td>\(failure.meters)</td></tr>\n"
        }
        if snapshot.failures.isEmpty { html += "<tr><td class=\"text muted\" colspan=\"3\">none</td></tr>\n" }
        html += "</table>\n"

        let states = snapshot.commandStates.sorted { $0.key < $1.key }.map { "\(escape($0.key)) \($0.value)" }.joined(separator: " · ")
        html += "<h2>Commands</h2>\n<p id=\"command-states\">\(states.isEmpty ? "none in the last 24 hours" : states)</p>\n"
        if !snapshot.outstandingCommands.isEmpty {
            html += "<table id=\"commands\"><tr><th class=\"text\">command</th><th class=\"text\">kind</th><th class=\"text\">meter</th><th class=\"text\">state</th><th class=\"text\">created</th><th class=\"text\">deadline</th></tr>\n"
            for command in snapshot.outstandingCommands {
                html += "<tr><td class=\"text\">\(escape(command.id))</td><td class=\"text\">\(escape(command.kind))</td><td class=\"text\">\(escape(command.meterID))</td>"
                html += "<td class=\"text\">\(escape(command.state))</td><td class=\"text\">\(escape(time.string(from: command.createdAt)))</td><td class=\"text\">\(escape(command.deadline.map { time.string(from: $0) } ?? "–"))</td></tr>\n"
            }
            html += "</table>\n"
        }

        func seconds(_ value: Double?) -> String { value.map { String(format: "%.1f s", $0) } ?? "–" }
        html += """
            <h2>Delivery to the IMS</h2>
            <p>tasks emitted in the last hour: <b id="dispatched-last-hour">\(snapshot.dispatchedLastHour)</b>;
            waiting for a confirmed result (last 6 hours): <b id="awaiting-results">\(snapshot.awaitingResults)</b>;
            task end → IMS confirmation: average <b id="lag-average">\(seconds(snapshot.deliveryLagAverage))</b>,
            maximum <b id="lag-maximum">\(seconds(snapshot.deliveryLagMaximum))</b> (last hour);
            last confirmation \(escape(snapshot.lastConfirmation.map { time.string(from: $0) } ?? "never"))</p>
            </body></html>

            """
        return html
    }

    static func escape(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.count)
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}
