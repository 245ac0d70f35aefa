import Testing
@testable import Collector

@Suite
struct ConnectionPacerTests {
    @Test
    func connectionsIntoOneSegmentAreSpacedOthersAreNot() {
        var state = ConnectionPacingState<ContinuousClock.Instant>(rate: 4)  // one every 250 ms
        let t0 = ContinuousClock.now
        let waits = (0..<4).map { _ in state.admit(segment: "cell-1", at: t0) }
        #expect(waits == [.zero, .milliseconds(250), .milliseconds(500), .milliseconds(750)])
        #expect(state.admit(segment: "cell-2", at: t0) == .zero, "another segment has its own slots")
        // Later arrivals wait only for what is still booked.
        #expect(state.admit(segment: "cell-1", at: t0.advanced(by: .milliseconds(900))) == .milliseconds(100))
        #expect(state.admit(segment: "cell-1", at: t0.advanced(by: .seconds(5))) == .zero, "an idle segment admits at once")
    }
}
