import DequeModule

/// The collector's line discipline, without I/O: tasks wait in their line's queue, priority
/// tasks (commands, gap recovery) ahead of scheduled ones, and at most one task of a line runs
/// at a time (DESIGN.md invariant 5: a bus or serial port never has two sessions). Lines run
/// concurrently; the process-wide session limit is the runner's (a semaphore).
///
/// Events in, decisions out: ``enqueue(_:line:priority:)`` says whether the line needs a runner
/// started; a runner takes tasks with ``next(line:)`` until it returns `nil`, which also marks
/// the line idle, so the next enqueue starts a runner again.
struct LineQueues<Job> {
    private struct Line {
        var priority: Deque<Job> = []
        var normal: Deque<Job> = []
        var running = false
        var isEmpty: Bool { priority.isEmpty && normal.isEmpty }
        var count: Int { priority.count + normal.count }
    }

    private var lines: [String: Line] = [:]

    /// Queues `job` on `line`. Returns `true` when the line has no runner yet: the caller
    /// starts one, which then takes the job with ``next(line:)``.
    mutating func enqueue(_ job: Job, line: String, priority: Bool) -> Bool {
        var state = lines[line, default: Line()]
        if priority { state.priority.append(job) } else { state.normal.append(job) }
        let startsRunner = !state.running
        state.running = true
        lines[line] = state
        return startsRunner
    }

    /// The line's next task, priority first; `nil` when its queue is empty, and the line is
    /// then idle (its runner ends).
    mutating func next(line: String) -> Job? {
        guard var state = lines[line] else { return nil }
        if let job = state.priority.popFirst() ?? state.normal.popFirst() {
            lines[line] = state
            return job
        }
        lines[line] = nil
        return nil
    }

    /// Removes the queued (not yet started) tasks that match, e.g. those of partitions this
    /// member no longer owns; a running task is not affected. Returns what was removed.
    mutating func removeQueued(where matches: (Job) -> Bool) -> [Job] {
        var removed: [Job] = []
        for (name, var state) in lines {
            removed += state.priority.filter(matches) + state.normal.filter(matches)
            state.priority.removeAll(where: matches)
            state.normal.removeAll(where: matches)
            lines[name] = state
        }
        return removed
    }

    /// Tasks waiting (not running) on `line`.
    func queuedCount(line: String) -> Int { lines[line]?.count ?? 0 }
    /// Tasks waiting on all lines.
    var queuedCount: Int { lines.values.reduce(0) { $0 + $1.count } }
    /// Lines that have a runner.
    var activeLineCount: Int { lines.count }
}
