import ArgumentParser
import Foundation
import Logging
import Observability
import Testing
@testable import ServiceRuntime

@Suite
struct SettingsResolverTests {
    private func resolver(environment: [String: String] = [:], file: String? = nil) throws -> SettingsResolver {
        guard let file else { return try SettingsResolver(environment: environment, filePath: nil) }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("settings-\(UUID().uuidString).env")
        try file.write(to: url, atomically: true, encoding: .utf8)
        return try SettingsResolver(environment: environment, filePath: url.path)
    }

    @Test
    func flagBeatsEnvironmentBeatsFileBeatsDefault() throws {
        let settings = try resolver(environment: ["HES_REGION": "env"], file: "HES_REGION=file\nHES_IMS_URL=http://file\n")
        #expect(settings.string("flag", flagName: "region", env: "HES_REGION", default: "d") == "flag")
        #expect(settings.string(nil, flagName: "region", env: "HES_REGION", default: "d") == "env")
        #expect(settings.string(nil, flagName: "ims-url", env: "HES_IMS_URL", default: "d") == "http://file")
        #expect(settings.string(nil, flagName: "other", env: "HES_OTHER", default: "d") == "d")
    }

    @Test
    func fileSyntax() throws {
        let values = try SettingsResolver.parse("""
            # comment

            export HES_A=1
            HES_B = "two words"
            HES_C='x=y'
            """, path: "f")
        #expect(values == ["HES_A": "1", "HES_B": "two words", "HES_C": "x=y"])
        #expect(throws: ValidationError.self) { try SettingsResolver.parse("HES_A\n", path: "f") }
        #expect(throws: ValidationError.self) { try SettingsResolver.parse("=1\n", path: "f") }
    }

    @Test
    func missingFileIsAnError() {
        #expect(throws: ValidationError.self) { try SettingsResolver(environment: [:], filePath: "/nonexistent/hes.env") }
    }

    @Test
    func integersAreCheckedAndNameTheirSource() throws {
        let settings = try resolver(environment: ["HES_ADMIN_PORT": "http"])
        do {
            _ = try settings.int(nil, flagName: "admin-port", env: "HES_ADMIN_PORT", default: 1)
            Issue.record("expected an error")
        } catch let error as ValidationError {
            #expect(error.message == "environment HES_ADMIN_PORT: 'http' is not a whole number")
        }
        #expect(throws: ValidationError.self) {
            try settings.int(70000, flagName: "admin-port", env: "HES_ADMIN_PORT", default: 1, range: 0...65535)
        }
        #expect(try settings.int(8080, flagName: "admin-port", env: "HES_ADMIN_PORT", default: 1, range: 0...65535) == 8080)
    }

    @Test(arguments: [
        ("250ms", Duration.milliseconds(250)), ("10s", .seconds(10)), ("5m", .seconds(300)),
        ("1h", .seconds(3600)), ("1.5", .milliseconds(1500)), ("0", .zero),
    ])
    func durations(text: String, expected: Duration) {
        #expect(SettingsResolver.parseDuration(text) == expected)
    }

    @Test(arguments: ["", "ms", "-1s", "ten", "5 minutes"])
    func invalidDurations(text: String) {
        #expect(SettingsResolver.parseDuration(text) == nil)
    }

    @Test
    func requiredSettingNamesBothPlaces() throws {
        let settings = try resolver()
        do {
            _ = try settings.requiredString(nil, flagName: "region", env: "HES_REGION")
            Issue.record("expected an error")
        } catch let error as ValidationError {
            #expect(error.message == "missing setting: pass --region or set HES_REGION")
        }
    }

    @Test
    func commonOptionsRejectBadLogSettings() throws {
        let options = try CommonOptions.parse(["--log-format", "xml"])
        #expect(throws: ValidationError.self) {
            try options.runtimeConfiguration(executable: "t", defaultAdminPort: 1, settings: try resolver())
        }
        let good = try CommonOptions.parse(["--log-format", "json", "--log-level", "debug", "--admin-port", "0"])
        let runtime = try good.runtimeConfiguration(executable: "t", defaultAdminPort: 1, settings: try resolver())
        #expect(runtime.logLevel == .debug)
        #expect(runtime.logFormat == .json)
        #expect(runtime.admin.port == 0)
    }
}

@Suite
struct ReadinessTests {
    @Test
    func readyOnlyWhenEveryComponentIs() {
        let readiness = Readiness()
        #expect(readiness.status.isReady)
        readiness.register("database")
        readiness.register("kafka")
        #expect(!readiness.status.isReady)
        readiness.markReady("database")
        #expect(readiness.status.pending == ["kafka": "starting"])
        readiness.markReady("kafka")
        #expect(readiness.status.isReady)
        readiness.markNotReady("database", reason: "connection lost")
        #expect(readiness.status.pending == ["database": "connection lost"])
    }
}
