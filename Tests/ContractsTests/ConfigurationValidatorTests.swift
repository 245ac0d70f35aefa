import Foundation
import Testing
@testable import Contracts

/// The configuration document's rules: every problem at once, each at its JSON pointer.
@Suite
struct ConfigurationValidatorTests {
    static let validator = ConfigurationValidator(builtInProfiles: ["standard", "emh"])

    static let valid = """
        {"schema": "hes-configuration/v1",
         "regions": [{"id": "north"}],
         "schedules": [{"id": "daily", "cron": "0 2 * * *", "timeZone": "Europe/Berlin", "windowMinutes": 120, "jitterSeconds": 600}],
         "templates": [{"id": "home", "schedules": ["daily"], "defaults": {"protocol": "dlms-hdlc"},
                        "objects": [{"classID": 3, "obis": "1.0.1.8.0.255", "attribute": 2}],
                        "profiles": [{"obis": "1.0.99.1.0.255"}]}],
         "lines": [{"id": "bus-1", "region": "north", "endpoint": {"kind": "gateway-udp", "host": "10.0.0.1", "port": 4001}},
                   {"id": "ip-1", "region": "north", "endpoint": {"kind": "tcp", "host": "10.0.0.2", "port": 4059}, "maxSessions": 1}],
         "meters": [{"id": "M1", "line": "bus-1", "template": "home", "hdlcPhysicalAddress": 17},
                    {"id": "M2", "line": "bus-1", "template": "home", "hdlcPhysicalAddress": 18, "authentication": "hls-gmac",
                     "systemTitle": "4D4D4D0000BC614E", "keys": {"blockCipherKey": "000102030405060708090A0B0C0D0E0F",
                                                                 "authenticationKey": "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"}},
                    {"id": "M3", "line": "ip-1", "template": "home", "protocol": "dlms-wrapper"}]}
        """

    @Test("a valid document parses, with the template's defaults under each meter")
    func validDocument() throws {
        let document = try ConfigurationParser.parse(Data(Self.valid.utf8), validator: Self.validator).get()
        #expect(document.meters.count == 3)
        #expect(document.meters[0].settings.over(document.templates[0].defaults).protocol == .dlmsHDLC)
        #expect(document.meters[2].settings.over(document.templates[0].defaults).protocol == .dlmsWrapper)
        #expect(document.meters[1].keys?.blockCipherKey == .plain("000102030405060708090A0B0C0D0E0F"))
        #expect(document.positions == nil)
    }

    @Test("every problem is reported at once, each at its pointer, including elements that do not decode")
    func everyProblemAtOnce() throws {
        let bad = """
            {"schema": "hes-configuration/v1",
             "regions": [{"id": "North Region"}, {"id": "south"}],
             "schedules": [{"id": "daily", "cron": "0 0 30 2 *"}, {"id": "tz", "cron": "0 2 * * *", "timeZone": "Mars/Olympus"},
                           {"id": "wide", "cron": "0 * * * *", "windowMinutes": 10, "jitterSeconds": 600}],
             "templates": [{"id": "home", "schedules": ["daily", "weekly"], "defaults": {"protocol": "dlms-hdlc"},
                            "objects": [{"classID": 3, "obis": "1.0.1.8.0.256", "attribute": 2}]}],
             "lines": [{"id": "bus-1", "region": "south", "endpoint": {"kind": "serial", "device": "/dev/ttyS0"}, "maxSessions": 4},
                       {"id": "bad-port", "region": "south", "endpoint": {"kind": "tcp", "host": "10.0.0.1", "port": 70000}}],
             "meters": [{"id": "M1", "line": "bus-1", "template": "home", "hdlcPhysicalAddress": 17},
                        {"id": "M2", "line": "bus-1", "template": "home", "hdlcPhysicalAddress": 17},
                        {"id": "M3", "line": "bus-9", "template": "home"},
                        {"id": "M4", "line": "bus-1", "template": "home", "hdlcPhysicalAddress": 19, "authentication": "hls-gmac"},
                        {"id": "M5", "line": "bus-1", "template": "home", "protocol": "dlms-wrapper", "hdlcPhysicalAddress": 20},
                        {"id": "M1", "line": "bad-port", "template": "home"},
                        {"id": "M6", "template": "home"}]}
            """
        let problems: [ConfigurationProblem]
        switch ConfigurationParser.parse(Data(bad.utf8), validator: Self.validator) {
        case .success: Issue.record("an invalid document was accepted"); return
        case .failure(let found): problems = found.problems
        }
        let byPointer = Dictionary(grouping: problems, by: \.pointer)
        let expected = [
            "/regions/0/id",                 // not a topic-safe region id
            "/schedules/0/cron",             // Feb 30 never happens
            "/schedules/1/timeZone",         // unknown zone
            "/schedules/2/jitterSeconds",    // jitter longer than the window
            "/templates/0/schedules/1",      // unknown schedule
            "/templates/0/objects/0/obis",   // 256 in an OBIS code
            "/lines/0/maxSessions",          // a serial bus has one session
            "/lines/1/endpoint/port",        // does not decode: reported, the rest still checked
            "/meters/1/hdlcPhysicalAddress", // duplicate address on the bus
            "/meters/2/line",                // unknown line
            "/meters/3/keys/blockCipherKey", // hls-gmac without keys
            "/meters/3/keys/authenticationKey",
            "/meters/3/systemTitle",
            "/meters/4/protocol",            // the wrapper does not run on a serial line
            "/meters/5/id",                  // duplicate meter id
            "/meters/6",                     // no line: does not decode
        ]
        for pointer in expected {
            #expect(byPointer[pointer] != nil, "no problem at \(pointer); found: \(problems.map(\.description).joined(separator: "\n"))")
        }
        // The unreadable line's meter is not reported again as pointing to an unknown line.
        #expect(byPointer["/meters/5/line"] == nil)
        #expect(problems.first { $0.pointer == "/meters/1/hdlcPhysicalAddress" }?.detail.contains("/meters/0") == true)
        #expect(problems.first { $0.pointer == "/schedules/0/cron" }?.detail.contains("never") == true)
    }

    @Test("secrets are never quoted in problems, and a redacted secret with nothing to keep is refused")
    func secretProblems() throws {
        var document = try ConfigurationParser.parse(Data(Self.valid.utf8), validator: Self.validator).get()
        document.meters[1].keys?.blockCipherKey = .plain("SECRETSECRETSECRET")
        document.meters[1].keys?.authenticationKey = .redacted
        let problems = Self.validator.validate(document)
        #expect(problems.map(\.pointer).sorted() == ["/meters/1/keys/authenticationKey", "/meters/1/keys/blockCipherKey"])
        #expect(!problems.contains { $0.detail.contains("SECRETSECRET") })
        #expect(!"\(ConfiguredSecret.plain("SECRETSECRET"))".contains("SECRET"))
        let encoded = String(decoding: try JSONEncoder().encode(document.redacted()), as: UTF8.self)
        #expect(!encoded.contains("000102030405") && encoded.contains("\"redacted\":true"))
    }

    @Test("a diff names what was added, removed and changed, and the meters a template change touches")
    func diff() throws {
        let old = try ConfigurationParser.parse(Data(Self.valid.utf8), validator: Self.validator).get()
        var new = old
        new.meters.removeFirst()
        new.meters[0].hdlcPhysicalAddress = 21
        new.meters.append(ConfigurationDocument.Meter(id: "M9", line: "ip-1", template: "home", settings: .init(protocol: .dlmsWrapper)))
        new.templates[0].objects.append(ObjectReference(classID: 8, obis: "0.0.1.0.0.255", attribute: 2))
        let diff = ConfigurationDiff(from: old, to: new)
        #expect(diff.meters == ConfigurationDiff.Changes(added: ["M9"], removed: ["M1"], changed: ["M2"]))
        #expect(diff.templates.changed == ["home"])
        #expect(diff.metersAffectedIndirectly == 1)  // M3: unchanged itself, its template changed
        #expect(ConfigurationDiff(from: new, to: new).isEmpty)
    }

    @Test("a partial update replaces meters in place, appends new ones and drops removed ones")
    func meterChanges() throws {
        let base = try ConfigurationParser.parse(Data(Self.valid.utf8), validator: Self.validator).get()
        var replaced = base.meters[2]
        replaced.serialNumber = "SN-3"
        let changes = MeterChanges(upsert: [replaced, ConfigurationDocument.Meter(id: "M4", line: "ip-1", template: "home")], remove: ["M1"])
        let result = changes.applied(to: base)
        #expect(result.meters.map(\.id) == ["M2", "M3", "M4"])
        #expect(result.meters[1].serialNumber == "SN-3")
    }
}
