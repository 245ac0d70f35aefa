import Contracts
import Foundation
import Logging
import Metrics
import Messaging
import Observability
import Persistence
import Synchronization

/// Where emitted tasks go: Kafka in the service, a recorder in tests.
protocol TaskSink: Sendable {
    func send(_ task: CollectionTask, topic: String) async throws
}

extension KafkaProducer: TaskSink {
    func send(_ task: CollectionTask, topic: String) async throws {
        _ = try await send(topic: topic, key: task.lineID, value: try ContractCoder.encode(task))
    }
}

/// How much work a region's collectors have not taken yet; `nil` when unknown (no limit applies then).
protocol RegionLoad: Sendable {
    func outstanding(region: String) async -> Int?
}

/// Settings of the scheduling work.
struct SchedulingSettings: Sendable {
    /// Slots missed (downtime, no leader) are emitted once if they are at most this old (a slot
    /// whose window is still open always is). Default 1 h.
    var catchUp: TimeInterval = 3600
    /// How often due work is looked for. Default 1 s.
    var tick: Duration = .seconds(1)
    /// Tasks checked against the ledger, sent and recorded together. Default 5,000.
    var batchSize = 5_000
    /// Tasks sent to Kafka at once. Default 512.
    var inFlight = 512
    /// How often confirmed progress is compared with the schedules. Default 5 min.
    var gapInterval: TimeInterval = 300
    var gapLimits = GapPlanner.Limits()
    /// A hole is tried again (a new gap task) at most once per this interval. Default 1 h.
    var gapRetryInterval: TimeInterval = 3600
    /// Deadline of a gap-recovery task. Default 1 h.
    var gapDeadline: TimeInterval = 3600
    /// Scheduled and gap work of a region is held back while this many of its tasks are
    /// outstanding; 0 = no limit. Default 50,000.
    var maxOutstandingPerRegion = 50_000
    /// Confirmed progress is read again after this long. Default 60 s.
    var progressRefresh: TimeInterval = 60
}

/// The leader's work (DESIGN.md §1): schedule slots, commands and gap recovery turned into
/// tasks, each checked against the ledger, sent to Kafka and then recorded. Sending before
/// recording means a crash in between sends a task twice, never zero times; the deterministic
/// ids make the second copy recognisable. Owned by one task at a time (not `Sendable`).
final class SchedulingEngine {
    struct SlotKey: Hashable { var schedule: String; var slot: Date }

    /// The meters of one slot by region, with how far each region's emission got.
    final class SlotState {
        let plan: FleetPlan
        let schedule: FleetPlan.PlannedSchedule
        let slot: Date
        var regions: [String: (entries: [SlotPlanner.Entry], cursor: Int)]
        var reportedLate = false

        init(plan: FleetPlan, schedule: FleetPlan.PlannedSchedule, slot: Date, entries: [SlotPlanner.Entry]) {
            self.plan = plan
            self.schedule = schedule
            self.slot = slot
            var regions: [String: (entries: [SlotPlanner.Entry], cursor: Int)] = [:]
            for entry in entries { regions[plan.meters[entry.meter].region, default: ([], 0)].entries.append(entry) }
            self.regions = regions
        }
    }

    private struct Emission {
        var task: CollectionTask
        var entry: SchedulerStore.LedgerEntry
    }

    let store: SchedulerStore
    let sink: any TaskSink
    let load: (any RegionLoad)?
    let rewrapper: KeyRewrapper
    let settings: SchedulingSettings
    let logger: Logger
    let metrics = SchedulerMetrics()

    private(set) var plan: FleetPlan?
    private var entriesBySchedule: [String: [SlotPlanner.Entry]] = [:]
    private var schedulesByMeter: [Int: [FleetPlan.PlannedSchedule]] = [:]
    private var keyCache: [Int: Result<MeterAccess.Keys?, SchedulerError>] = [:]
    private var slots: [SlotKey: SlotState] = [:]
    private var progress: TaskFactory.Progress = [:]
    private var progressLoadedAt: Date?
    private var lastGapRun: Date?
    /// Gap reads asked for within the retry interval (see ``SchedulerStore/recentGapStarts(since:)``),
    /// read again with the progress.
    private var recentGaps: Set<String> = []
    private var pressured: Set<String> = []
    private var outstandingNow: [String: Int] = [:]

    init(store: SchedulerStore, sink: any TaskSink, load: (any RegionLoad)?, rewrapper: KeyRewrapper,
         settings: SchedulingSettings, logger: Logger) {
        self.store = store
        self.sink = sink
        self.load = load
        self.rewrapper = rewrapper
        self.settings = settings
        self.logger = logger
    }

    /// Runs ticks until cancelled. A failing tick (database or Kafka away) is logged and tried again.
    func run(clock: @Sendable () -> Date = { Date() }) async throws {
        try await store.database.waitUntilPrepared()
        var failures = 0
        while !Task.isCancelled {
            do {
                try await tick(now: clock())
                failures = 0
                try await Task.sleep(for: settings.tick)
            } catch is CancellationError {
                return
            } catch {
                failures += 1
                let delay = Duration.milliseconds(min(10_000, 500 * (1 << min(failures, 5))))
                logger.error("scheduling tick failed: \(error); trying again", metadata: [
                    LogMetadataKey.attempt: "\(failures)", LogMetadataKey.retryIn: "\(delay)",
                ])
                try await Task.sleep(for: delay)
            }
        }
    }

    /// One round: reload the plan if another version became active, dispatch commands,
    /// emit due slot work, and every ``SchedulingSettings/gapInterval`` recover gaps.
    func tick(now: Date) async throws {
        try await refreshPlan()
        guard let plan else { return }
        try await refreshLoad()
        try await dispatchCommands(now: now, plan: plan)
        if progressLoadedAt.map({ now.timeIntervalSince($0) >= settings.progressRefresh || $0 > now }) ?? true {
            progress = try await store.progress()
            // Between reloads the set is kept up to date here: emissions add their keys, failed sends take theirs out.
            recentGaps = try await store.recentGapStarts(since: now.addingTimeInterval(-settings.gapRetryInterval))
            progressLoadedAt = now
        }
        try await emitSlots(now: now, plan: plan)
        if lastGapRun.map({ now.timeIntervalSince($0) >= settings.gapInterval || $0 > now }) ?? true {
            try await recoverGaps(now: now, plan: plan)
            lastGapRun = now
        }
    }

    /// Set by the activation `NOTIFY` listener: the next tick re-reads the active version.
    let activations = ActivationSignal()
    private var checkedVersion: Int64?
    private var lastVersionCheck: Date?

    // MARK: - Plan

    private func refreshPlan() async throws {
        let now = Date()
        // The version is polled every 5 s besides the NOTIFY, which a broken listener can miss.
        let notified = activations.consume()
        if !notified, checkedVersion != nil, let last = lastVersionCheck, now.timeIntervalSince(last) < 5 { return }
        lastVersionCheck = now
        guard let version = try await store.activeVersion() else {
            if plan == nil, checkedVersion == nil { logger.info("no configuration is active yet: nothing to schedule") }
            checkedVersion = 0
            return
        }
        checkedVersion = version
        guard version != plan?.version else { return }
        guard let (loaded, document) = try await store.activeDocument() else { return }
        let plan = FleetPlan(document: document, version: loaded)
        for problem in plan.problems { logger.warning("configuration \(loaded): \(problem)") }
        self.plan = plan
        entriesBySchedule = [:]
        schedulesByMeter = [:]
        for (id, schedule) in plan.schedules {
            entriesBySchedule[id] = SlotPlanner.entries(for: schedule, plan: plan)
            for meter in schedule.meters { schedulesByMeter[meter, default: []].append(schedule) }
        }
        keyCache = [:]
        metrics.configVersion.record(loaded)
        metrics.plannedMeters.record(plan.meters.count)
        logger.info("planning with configuration \(loaded): \(plan.meters.count) meter(s), \(plan.schedules.count) schedule(s), \(plan.regions.count) region(s); slots already started keep their version")
    }

    private func keys(meter index: Int, plan: FleetPlan) -> Result<MeterAccess.Keys?, SchedulerError> {
        if let cached = keyCache[index] { return cached }
        let meter = plan.meters[index]
        let result: Result<MeterAccess.Keys?, SchedulerError>
        do {
            result = .success(try rewrapper.taskKeys(meterID: meter.id, sealed: meter.sealedKeys))
        } catch let error as SchedulerError {
            result = .failure(error)
        } catch {
            result = .failure(.keysUnavailable("\(error)"))
        }
        if case .failure(let error) = result {
            logger.error("meter cannot be scheduled: \(error.reason)", metadata: [LogMetadataKey.meterID: "\(meter.id)", LogMetadataKey.errorCode: "\(error.code)"])
        }
        keyCache[index] = result
        return result
    }

    // MARK: - Backpressure

    private func refreshLoad() async throws {
        guard let load, settings.maxOutstandingPerRegion > 0, let plan else { return }
        for region in plan.regions {
            guard let outstanding = await load.outstanding(region: region) else { continue }
            outstandingNow[region] = outstanding
            metrics.outstanding(region: region).record(outstanding)
            let held = outstanding >= settings.maxOutstandingPerRegion
            if held, !pressured.contains(region) {
                pressured.insert(region)
                logger.warning("region \(region) has \(outstanding) task(s) outstanding (limit \(settings.maxOutstandingPerRegion)): holding back its scheduled and gap work until its collectors catch up", metadata: [LogMetadataKey.region: "\(region)"])
            } else if !held, pressured.contains(region) {
                pressured.remove(region)
                logger.info("region \(region) is down to \(outstanding) outstanding task(s): emitting again", metadata: [LogMetadataKey.region: "\(region)"])
            }
            metrics.backpressure(region: region).record(held ? 1 : 0)
        }
    }

    /// How many more tasks the region may get now.
    private func headroom(region: String) -> Int {
        guard settings.maxOutstandingPerRegion > 0, let outstanding = outstandingNow[region] else { return Int.max }
        return max(0, settings.maxOutstandingPerRegion - outstanding)
    }

    // MARK: - Slots

    /// Slots are in scope while their window is open, and missed ones up to the catch-up age.
    private func emitSlots(now: Date, plan: FleetPlan) async throws {
        for (id, schedule) in plan.schedules {
            let earliest = now.addingTimeInterval(-max(settings.catchUp, schedule.window))
            for slot in schedule.cron.fires(after: earliest, through: now) where slots[SlotKey(schedule: id, slot: slot)] == nil {
                slots[SlotKey(schedule: id, slot: slot)] = SlotState(plan: plan, schedule: schedule, slot: slot, entries: entriesBySchedule[id] ?? [])
            }
        }
        slots = slots.filter { $0.value.slot > now.addingTimeInterval(-max(settings.catchUp, $0.value.schedule.window)) }
        for key in slots.keys.sorted(by: { ($0.slot, $0.schedule) < ($1.slot, $1.schedule) }) {
            guard let state = slots[key] else { continue }
            try await emit(state, now: now)
        }
    }

    private func emit(_ state: SlotState, now: Date) async throws {
        let elapsed = now.timeIntervalSince(state.slot)
        let factory = TaskFactory(plan: state.plan)
        for region in state.regions.keys.sorted() {
            while let queue = state.regions[region], queue.cursor < queue.entries.count, queue.entries[queue.cursor].offset <= elapsed {
                let room = headroom(region: region)
                guard room > 0 else { break }
                var end = queue.cursor
                while end < queue.entries.count, queue.entries[end].offset <= elapsed, end - queue.cursor < min(settings.batchSize, room) { end += 1 }
                var emissions: [Emission] = []
                for entry in queue.entries[queue.cursor..<end] {
                    emissions.append(contentsOf: scheduledEmissions(meter: entry.meter, state: state, factory: factory, now: now))
                }
                try await send(emissions)
                state.regions[region]?.cursor = end
                if let current = outstandingNow[region] { outstandingNow[region] = current + (end - queue.cursor) }
                if !state.reportedLate, now.timeIntervalSince(state.slot.addingTimeInterval(queue.entries[end - 1].offset)) > 60 {
                    state.reportedLate = true
                    metrics.slotsLate.increment()
                    logger.warning("slot \(ISO8601DateFormatter().string(from: state.slot)) of schedule \(state.schedule.schedule.id) emitted late (catching up)", metadata: [LogMetadataKey.region: "\(region)"])
                }
            }
        }
    }

    /// A meter's scheduled task, and gap reads for what lies before its lookback.
    private func scheduledEmissions(meter index: Int, state: SlotState, factory: TaskFactory, now: Date) -> [Emission] {
        guard case .success(let keys) = keys(meter: index, plan: state.plan) else {
            metrics.skipped(reason: "keys").increment()
            return []
        }
        let task = factory.scheduled(meter: index, schedule: state.schedule, slot: state.slot, now: now, keys: keys, progress: progress)
        let meter = state.plan.meters[index]
        var emissions = [Emission(task: task, entry: ledgerEntry(task, kind: .scheduled, scheduleID: state.schedule.schedule.id, slot: state.slot,
                                                                 topic: KafkaTopics.tasks(region: meter.region)))]
        // A meter silent for longer than the lookback: its older hole goes out now, before this
        // read's confirmation moves `meter_progress` past it.
        for profile in meter.profiles {
            guard let confirmed = progress[TaskFactory.ProgressKey(meterID: meter.id, obis: profile.obis)] else { continue }
            let lookbackStart = state.slot.addingTimeInterval(-profile.lookbackHours * 3600)
            let pieces = GapPlanner.pieces(confirmed: confirmed, expected: lookbackStart, now: now, limits: settings.gapLimits)
            emissions += gapEmissions(meter: index, profile: profile, pieces: pieces, attempt: Int64(state.slot.timeIntervalSince1970),
                                      keys: keys, factory: factory, now: now)
        }
        return emissions
    }

    // MARK: - Commands

    private func dispatchCommands(now: Date, plan: FleetPlan) async throws {
        let commands = try await store.openCommands(limit: 500)
        guard !commands.isEmpty else { return }
        let factory = TaskFactory(plan: plan)
        var emissions: [Emission] = []
        var kinds: [String: String] = [:]  // task id → command kind, for the log
        for command in commands {
            var logger = self.logger
            logger[metadataKey: LogMetadataKey.commandID] = "\(command.id.uuidString.lowercased())"
            logger[metadataKey: LogMetadataKey.meterID] = "\(command.request.meterID)"
            if command.deadline <= now {
                logger.warning("command expired before it could be dispatched")
                try await store.finish(command: command.id, state: "expired", reason: "the deadline passed before it was dispatched")
                continue
            }
            guard let index = plan.meterIndex[command.request.meterID] else {
                logger.error("command names a meter the active configuration (version \(plan.version)) does not have")
                try await store.finish(command: command.id, state: "failed",
                                       reason: "meter \(command.request.meterID) is not in the active configuration (version \(plan.version))")
                continue
            }
            switch keys(meter: index, plan: plan) {
            case .failure(let error):
                try await store.finish(command: command.id, state: "failed", reason: error.description)
            case .success(let keys):
                let task = try factory.command(id: command.id, request: command.request, deadline: command.deadline, now: now, keys: keys)
                var entry = ledgerEntry(task, kind: .command, slot: now, topic: KafkaTopics.priorityTasks(region: task.region))
                entry.commandID = command.id
                emissions.append(Emission(task: task, entry: entry))
                kinds[task.taskID] = command.request.kind.rawValue
            }
        }
        try await send(emissions, recordingExisting: true)
        for emission in emissions {
            logger.info("command \(kinds[emission.task.taskID] ?? "") dispatched to \(emission.entry.topic)", metadata: [
                LogMetadataKey.commandID: "\(emission.entry.commandID.map { $0.uuidString.lowercased() } ?? "")",
                LogMetadataKey.meterID: "\(emission.task.meterID)", LogMetadataKey.taskID: "\(emission.task.taskID)",
            ])
        }
    }

    // MARK: - Gap recovery

    /// Compares what the IMS confirmed with the latest closed slot of each meter's schedules and
    /// emits range reads for the holes: at most ``GapPlanner/Limits/piecesPerMeter`` per meter and
    /// profile, once per ``SchedulingSettings/gapRetryInterval``.
    func recoverGaps(now: Date, plan: FleetPlan) async throws {
        let factory = TaskFactory(plan: plan)
        let attempt = Int64(now.timeIntervalSince1970 / settings.gapRetryInterval)
        var emissions: [Emission] = []
        var perRegion: [String: Int] = [:]
        for (index, schedules) in schedulesByMeter.sorted(by: { $0.key < $1.key }) {
            let meter = plan.meters[index]
            guard !meter.profiles.isEmpty, perRegion[meter.region, default: 0] < headroom(region: meter.region) else { continue }
            let expected = schedules.compactMap { GapPlanner.expectedUntil(cron: $0.cron, window: $0.window, now: now) }.max()
            guard let expected else { continue }
            for profile in meter.profiles {
                // A meter never confirmed is its scheduled read's to start (lookback), not a gap.
                guard let confirmed = progress[TaskFactory.ProgressKey(meterID: meter.id, obis: profile.obis)] else { continue }
                let pieces = GapPlanner.pieces(confirmed: confirmed, expected: expected, now: now, limits: settings.gapLimits)
                guard !pieces.isEmpty, case .success(let keys) = keys(meter: index, plan: plan) else { continue }
                let gaps = gapEmissions(meter: index, profile: profile, pieces: pieces, attempt: attempt, keys: keys, factory: factory, now: now)
                emissions += gaps
                perRegion[meter.region, default: 0] += gaps.count
            }
            if emissions.count >= settings.batchSize {
                try await send(emissions)
                emissions = []
            }
        }
        try await send(emissions)
    }

    /// The gap reads of `pieces` not asked for within the retry interval, for the priority topic.
    private func gapEmissions(meter index: Int, profile: ConfigurationDocument.ProfileRead, pieces: [GapPlanner.Piece], attempt: Int64,
                              keys: MeterAccess.Keys?, factory: TaskFactory, now: Date) -> [Emission] {
        let meter = factory.plan.meters[index]
        return pieces.compactMap { piece in
            guard recentGaps.insert(SchedulerStore.gapKey(meter: meter.id, obis: profile.obis, start: piece.from)).inserted else { return nil }
            let task = factory.gap(meter: index, profile: profile, range: piece, attempt: attempt, now: now,
                                   deadline: now.addingTimeInterval(settings.gapDeadline), keys: keys)
            return Emission(task: task, entry: ledgerEntry(task, kind: .gapRecovery, profile: profile.obis, range: piece,
                                                           topic: KafkaTopics.priorityTasks(region: meter.region)))
        }
    }

    // MARK: - Sending

    private func ledgerEntry(_ task: CollectionTask, kind: SchedulerStore.LedgerEntry.Kind, scheduleID: String? = nil, slot: Date? = nil,
                             profile: String? = nil, range: GapPlanner.Piece? = nil, topic: String) -> SchedulerStore.LedgerEntry {
        SchedulerStore.LedgerEntry(
            taskID: UUID(uuidString: task.taskID)!, kind: kind, region: task.region, lineID: task.lineID, meterID: task.meterID,
            scheduleID: scheduleID, slot: slot ?? task.createdAt, commandID: nil, profileOBIS: profile,
            rangeStart: range?.from, rangeEnd: range?.to, topic: topic)
    }

    /// Sends what the ledger does not hold yet, then records it. A failed send is logged and
    /// thrown after the others are recorded, so the same batch is tried again.
    /// - Parameter recordingExisting: also record tasks the ledger held (their command rows
    ///   move to `dispatched` even if a previous leader died between the two steps).
    private func send(_ emissions: [Emission], recordingExisting: Bool = false) async throws {
        guard !emissions.isEmpty else { return }
        let known = try await store.dispatched(among: emissions.map(\.entry.taskID))
        let fresh = emissions.filter { !known.contains($0.entry.taskID) }
        var sent: [SchedulerStore.LedgerEntry] = recordingExisting ? emissions.filter { known.contains($0.entry.taskID) }.map(\.entry) : []
        var firstError: (any Error)?
        let sink = self.sink
        try await withThrowingTaskGroup(of: (SchedulerStore.LedgerEntry, (any Error)?).self) { group in
            var next = fresh.makeIterator()
            var running = 0
            func start(_ emission: Emission) {
                group.addTask {
                    do {
                        try await sink.send(emission.task, topic: emission.entry.topic)
                        return (emission.entry, nil)
                    } catch {
                        return (emission.entry, error)
                    }
                }
            }
            while running < settings.inFlight, let emission = next.next() { start(emission); running += 1 }
            while let (entry, error) = try await group.next() {
                running -= 1
                if let error {
                    firstError = firstError ?? error
                    metrics.sendFailures.increment()
                    // Not asked for after all: the hole may be asked for again at once.
                    if entry.kind == .gapRecovery, let obis = entry.profileOBIS, let start = entry.rangeStart {
                        recentGaps.remove(SchedulerStore.gapKey(meter: entry.meterID, obis: obis, start: start))
                    }
                } else {
                    sent.append(entry)
                    metrics.emitted(origin: entry.kind.origin, region: entry.region).increment()
                    if entry.kind == .gapRecovery { metrics.gapsFound.increment() }
                }
                if let emission = next.next() { start(emission); running += 1 }
            }
        }
        try await store.record(sent)
        if let firstError {
            throw SchedulerError.sendFailed("\(fresh.count - sent.count) of \(fresh.count) task(s) were not accepted by Kafka (\(firstError)); they are sent again")
        }
    }
}

/// "A configuration was activated": raised by the `NOTIFY` listener, consumed by the engine.
final class ActivationSignal: Sendable {
    private let raised = Atomic<Bool>(false)
    func raise() { raised.store(true, ordering: .releasing) }
    func consume() -> Bool { raised.exchange(false, ordering: .acquiringAndReleasing) }
}

extension SchedulerStore.LedgerEntry.Kind {
    /// The task origin the metrics name.
    var origin: String {
        switch self {
        case .scheduled: "schedule"
        case .command: "command"
        case .gapRecovery: "gap-recovery"
        }
    }
}
