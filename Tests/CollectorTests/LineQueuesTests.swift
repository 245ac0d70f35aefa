import Testing
import TestSupport
@testable import Collector

/// The line discipline against a brute-force model over random event orders: never two tasks of
/// one line at once, priority tasks of a line before its queued scheduled ones, every task run
/// exactly once, and a runner for every line that has work.
@Suite
struct LineQueuesTests {
    struct Job: Equatable { var id: Int; var line: String; var priority: Bool }

    @Test(arguments: 0..<200)
    func randomOrdersKeepTheDiscipline(seed: Int) {
        var generator = SeededGenerator(seed: UInt64(seed))
        var queues = LineQueues<Job>()
        let lineNames = (0..<Int.random(in: 1...5, using: &generator)).map { "line-\($0)" }
        var runners: Set<String> = []          // lines with a runner (model)
        var running: [String: Job] = [:]        // the task each runner executes now
        var waiting: [String: [Job]] = [:]      // model queues, in arrival order
        var finished: [Int] = []
        var nextID = 0
        for _ in 0..<300 {
            if Bool.random(using: &generator) || running.isEmpty && runners.isEmpty {
                let line = lineNames.randomElement(using: &generator)!
                let job = Job(id: nextID, line: line, priority: Int.random(in: 0..<4, using: &generator) == 0)
                nextID += 1
                waiting[line, default: []].append(job)
                let starts = queues.enqueue(job, line: line, priority: job.priority)
                #expect(starts == !runners.contains(line), "a runner starts exactly when the line had none")
                if starts { runners.insert(line) }
            } else if let line = runners.randomElement(using: &generator) {
                if let job = running.removeValue(forKey: line) { finished.append(job.id) }
                let next = queues.next(line: line)
                // The model: the earliest priority task, else the earliest task.
                let queue = waiting[line] ?? []
                let expected = queue.first(where: \.priority) ?? queue.first
                #expect(next == expected)
                if let next {
                    #expect(next.line == line)
                    waiting[line]?.removeAll { $0.id == next.id }
                    running[line] = next
                } else {
                    runners.remove(line)
                }
            }
            #expect(running.values.allSatisfy { runners.contains($0.line) })
            #expect(queues.queuedCount == waiting.values.reduce(0) { $0 + $1.count })
        }
        // Drain: every task runs exactly once.
        for line in runners {
            if let job = running.removeValue(forKey: line) { finished.append(job.id) }
            while let job = queues.next(line: line) { finished.append(job.id) }
        }
        #expect(finished.sorted() == Array(0..<nextID))
        #expect(queues.activeLineCount == 0)
    }

    @Test
    func removeQueuedLeavesRunningTasksAlone() {
        var queues = LineQueues<Job>()
        let first = queues.enqueue(Job(id: 1, line: "a", priority: false), line: "a", priority: false)
        let second = queues.enqueue(Job(id: 2, line: "a", priority: false), line: "a", priority: false)
        #expect(first && !second)
        let next = queues.next(line: "a")
        #expect(next?.id == 1)
        let removed = queues.removeQueued { _ in true }
        #expect(removed.map(\.id) == [2])
        let none = queues.next(line: "a")
        #expect(none == nil)
        let again = queues.enqueue(Job(id: 3, line: "a", priority: true), line: "a", priority: true)
        #expect(again, "an idle line needs a runner again")
    }
}
