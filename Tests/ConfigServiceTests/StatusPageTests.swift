import Foundation
import Testing
@testable import ConfigService

@Suite struct StatusPageTests {
    @Test("the page shows the snapshot's numbers and escapes every value")
    func rendersAndEscapes() {
        var snapshot = StatusPage.Snapshot(generatedAt: Date(timeIntervalSince1970: 1_800_000_000))
        snapshot.activeVersion = 12
        snapshot.regions = [.init(id: "north<script>", lines: 3, meters: 250, lineKinds: ["tcp": 2, "gateway-udp": 1])]
        snapshot.hours = [
            .init(region: "north<script>", hour: Date(timeIntervalSince1970: 1_799_996_400), succeeded: 240, failed: 10, readings: 69_840),
            .init(region: "north<script>", hour: Date(timeIntervalSince1970: 1_799_992_800), succeeded: 250, failed: 0, readings: 72_750),
        ]
        snapshot.failures = [.init(reason: "meter.timeout", tasks: 8, meters: 6), .init(reason: "a&b", tasks: 2, meters: 2)]
        snapshot.commandStates = ["dispatched": 1, "succeeded": 4]
        snapshot.outstandingCommands = [.init(id: "c1", kind: "disconnect", meterID: "M\"1", state: "dispatched", createdAt: Date(), deadline: nil)]
        snapshot.deliveryLagAverage = 1.25
        let page = StatusPage.render(snapshot)
        #expect(page.contains(#"<b id="tasks-succeeded" class="ok">490</b>"#))
        #expect(page.contains(#"<b id="tasks-failed" class="bad">10</b>"#))
        #expect(page.contains(#"<b id="success-rate">98.0 %</b>"#))
        #expect(page.contains(#"<b id="readings-confirmed">142590</b>"#))
        #expect(page.contains(#"<b id="config-version">12</b>"#))
        #expect(page.contains("<td>250</td>"))
        #expect(page.contains("gateway-udp 1, tcp 2"))
        #expect(page.contains("dispatched 1 · succeeded 4"))
        #expect(page.contains("1.2 s") || page.contains("1.3 s"))
        #expect(!page.contains("<script>"))
        #expect(page.contains("north&lt;script&gt;"))
        #expect(page.contains("a&amp;b"))
        #expect(page.contains("M&quot;1"))
    }

    @Test("an empty installation says so instead of showing empty tables")
    func empty() {
        let page = StatusPage.render(StatusPage.Snapshot(generatedAt: Date()))
        #expect(page.contains("no configuration is active"))
        #expect(page.contains("no results yet"))
        #expect(page.contains("none in the last 24 hours"))
    }
}
