import COSEM
import Contracts
import DLMSClient
import DLMSCodec
import DLMSSecurity
import Foundation
import Logging
import Observability
import ServiceRuntime

/// Runs one collection task: one association with the meter that does every action of the task
/// in order, and the task's `ReadingBatch` and `TaskResult`.
///
/// Per-object failures (an object the meter does not have, access denied) make the task
/// `partial`: the other objects are still read. A failure of the session itself (no answer,
/// association refused, garbage) ends it: the readings obtained so far are kept and published
/// with a `partial` result, or the task `failed` when there are none. The batch id is derived
/// from the task id, so a redelivered task produces the same id.
struct TaskExecutor: Sendable {
    /// How many objects one GET-with-list asks for. Default: 10 (meters' list limits are small).
    var objectsPerRequest = 10
    var defaults = MeterSessionPlan.Defaults()
    /// Attempts of a session that fails retriably, inside the task's deadline.
    var retry = RetryPolicy()
    /// Unwraps the tasks' keys (earlier keys too, during a rotation).
    let masterKeys: MasterKeyRing?
    let lines: LineRegistry
    /// Paces new connections per network segment. Default: off.
    var pacer = ConnectionPacer(rate: 0)
    let logger: Logger
    /// The collector's wall clock (tests shift it).
    var now: @Sendable () -> Date = { Date() }

    /// How often and after how long a retriably failed session runs again.
    struct RetryPolicy: Sendable {
        /// Sessions per task at most. Default: 3.
        var attempts = 3
        /// Wait before the second attempt, doubled before each further one. Default: 1 s.
        var initialBackoff: TimeInterval = 1

        func backoff(afterAttempt attempt: Int) -> TimeInterval {
            initialBackoff * Double(1 << min(attempt - 1, 10))
        }
    }

    struct Outcome: Sendable {
        var batch: ReadingBatch?
        var result: TaskResult
    }

    /// Executes `task`; never throws: every failure is a result.
    func execute(_ task: CollectionTask) async -> Outcome {
        var logger = self.logger
        logger[metadataKey: LogMetadataKey.taskID] = "\(task.taskID)"
        logger[metadataKey: LogMetadataKey.meterID] = "\(task.meterID)"
        logger[metadataKey: LogMetadataKey.lineID] = "\(task.lineID)"
        let startedAt = now()
        guard startedAt <= task.deadline else {
            return Outcome(batch: nil, result: Self.result(task, outcome: .expired, startedAt: startedAt, finishedAt: startedAt,
                failure: CollectorError(code: .taskExpired, reason: "the deadline \(ContractDate.format(task.deadline)) passed before the task started", retriable: false, step: "queue").failure))
        }
        let plan: MeterSessionPlan
        do {
            plan = try MeterSessionPlan(task.meter, masterKeys: masterKeys, defaults: defaults)
        } catch {
            let failure = CollectorError.classify(error, action: "plan")
            logger.warning("task cannot be executed", metadata: [LogMetadataKey.errorCode: "\(failure.code)", LogMetadataKey.error: "\(failure.reason)"])
            return Outcome(batch: nil, result: Self.result(task, outcome: .failed, startedAt: startedAt, finishedAt: now(), failure: failure.failure))
        }

        // A session that fails retriably (no answer, a dropped connection) is run again from
        // the start after a backoff, while the task's deadline leaves room; the result reports
        // the last attempt. Commands are safe to repeat: supply state and clock are targets.
        var session = SessionState()
        var attempt = 1
        while true {
            session = SessionState()
            let current = session
            let sessionLogger = logger
            do {
                try await withTaskDeadline(task.deadline) {
                    if !plan.sharesLine { try await self.pacer.waitForSlot(segment: task.meter.networkSegment) }
                    switch plan.session {
                    case .dlms:
                        try await self.lines.withAssociation(plan: plan, lineID: task.lineID, logger: sessionLogger) { client in
                            for action in task.actions {
                                try await self.run(action, client: client, task: task, session: current)
                            }
                        }
                    case .iec21ModeC(let meter):
                        try await self.lines.withPort(plan: plan, lineID: task.lineID) { transport in
                            try await IEC21TaskRunner(meter: meter, session: current, now: self.now).run(task.actions, over: transport)
                        }
                    }
                }
            } catch {
                session.sessionFailure = CollectorError.classify(error, action: session.currentAction)
            }
            guard let failure = session.sessionFailure, failure.retriable, failure.code != .cancelled, attempt < retry.attempts,
                  !Task.isCancelled else { break }
            let backoff = retry.backoff(afterAttempt: attempt)
            guard now().addingTimeInterval(backoff + 1) < task.deadline else { break }
            logger.info("session failed, retrying", metadata: [
                LogMetadataKey.errorCode: "\(failure.code)", LogMetadataKey.attempt: "\(attempt)", LogMetadataKey.retryIn: "\(backoff)s",
            ])
            try? await Task.sleep(for: .milliseconds(Int64(backoff * 1000)))
            attempt += 1
        }
        // Whether the session got anything done: details the actions recorded (not the count of attempts).
        let actionsRecordedDetails = !session.details.isEmpty
        if attempt > 1 { session.details["attempts"] = "\(attempt)" }
        let finishedAt = now()
        let outcome: TaskResult.Outcome
        let failure: CollectorError?
        switch (session.sessionFailure, session.objectFailures.first) {
        case (nil, nil):
            outcome = .succeeded
            failure = nil
        case (let sessionFailure?, _):
            outcome = session.readings.isEmpty && !actionsRecordedDetails ? .failed : .partial
            failure = sessionFailure
        case (nil, let objectFailure?):
            outcome = session.readings.isEmpty && !session.anyActionSucceeded ? .failed : .partial
            failure = objectFailure
        }
        var details = session.details
        if session.objectFailures.count > 1 {
            details["objectFailures"] = session.objectFailures.map { "\($0.step ?? "?"): \($0.code)" }.joined(separator: "; ")
        }
        if let failure {
            logger.warning("task \(outcome.rawValue)", metadata: [
                LogMetadataKey.errorCode: "\(failure.code)", LogMetadataKey.error: "\(failure.reason)", "step": "\(failure.step ?? "")",
            ])
        } else {
            logger.debug("task succeeded", metadata: ["readings": "\(session.readings.count)"])
        }
        let batch = session.readings.isEmpty ? nil : ReadingBatch(
            batchID: Self.batchID(task), taskID: task.taskID, region: task.region, meterID: task.meterID,
            collectedAt: finishedAt, readings: session.readings)
        return Outcome(batch: batch, result: Self.result(task, outcome: outcome, startedAt: startedAt, finishedAt: finishedAt,
                                                         failure: failure?.failure, readingCount: session.readings.count, details: details))
    }

    /// Stable across redeliveries of the same task: the IMS deduplicates by it.
    static func batchID(_ task: CollectionTask) -> String { "\(task.taskID)#readings" }

    static func result(_ task: CollectionTask, outcome: TaskResult.Outcome, startedAt: Date, finishedAt: Date,
                       failure: TaskResult.Failure?, readingCount: Int = 0, details: [String: String] = [:]) -> TaskResult {
        TaskResult(taskID: task.taskID, commandID: task.commandID, region: task.region, lineID: task.lineID, meterID: task.meterID,
                   outcome: outcome, failure: failure, startedAt: startedAt, finishedAt: finishedAt, readingCount: readingCount, details: details)
    }

    // MARK: - Actions

    /// What a session gathered so far; one task fills it at a time (the session's), and the
    /// executor reads it after the session ended, so readings survive a session that failed.
    final class SessionState: @unchecked Sendable {
        var readings: [Reading] = []
        var details: [String: String] = [:]
        var objectFailures: [CollectorError] = []
        var sessionFailure: CollectorError?
        var currentAction: String?
        var anyActionSucceeded = false
    }

    private func run(_ action: TaskAction, client: DLMSClient, task: CollectionTask, session: SessionState) async throws {
        switch action {
        case .readObjects(let objects):
            session.currentAction = "read-objects"
            try await readObjects(objects, client: client, session: session)
        case .readProfile(let profile, let from, let to):
            session.currentAction = "read-profile \(profile.obis)"
            try await readProfile(profile, from: from, to: to, client: client, session: session)
        case .synchronizeClock(let maximumDeviation):
            session.currentAction = "synchronize-clock"
            try await synchronizeClock(maximumDeviation: maximumDeviation, client: client, session: session)
        case .setSupplyState(let target):
            session.currentAction = "set-supply-state \(target.rawValue)"
            try await setSupplyState(target, client: client, session: session)
        }
        session.anyActionSucceeded = true
    }

    /// The objects in GET-with-list requests, each led by the clock so every value has the
    /// meter's own time as its capture time; registers' scalers are asked for in the same list.
    private func readObjects(_ objects: [ObjectReference], client: DLMSClient, session: SessionState) async throws {
        var references: [(ObjectReference, OBISCode)] = []
        for object in objects {
            guard let code = OBISCode(object.obis), (0...Int(Int8.max)).contains(object.attribute),
                  UInt16(exactly: object.classID) != nil else {
                session.objectFailures.append(CollectorError(code: .taskInvalid, reason: "'\(object.obis)' attribute \(object.attribute) of class \(object.classID) is not a COSEM attribute", retriable: false, step: "get \(object.obis)"))
                continue
            }
            references.append((object, code))
        }
        var start = 0
        while start < references.count {
            let chunk = Array(references[start..<min(start + objectsPerRequest, references.count)])
            start += chunk.count
            var attributes = [AttributeWithSelection(ClockValue.descriptor(.clock, .time))]
            for (object, code) in chunk {
                let classID = COSEMClassID(rawValue: UInt16(object.classID))
                attributes.append(AttributeWithSelection(CosemAttributeDescriptor(classID: classID, instance: code, attribute: Int8(object.attribute))))
                if Self.hasScaler(object) {
                    attributes.append(AttributeWithSelection(CosemAttributeDescriptor(classID: classID, instance: code, attribute: 3)))
                }
            }
            let results = try await client.getWithList(attributes)
            guard results.count == attributes.count else {
                throw DLMSClientError(code: .unexpectedResponse, step: .get, reason: "asked for \(attributes.count) attributes, got \(results.count)")
            }
            let readAt: Date
            if case .data(let clock) = results[0], let time = clock.dateTimeValue?.unixTime {
                readAt = Date(timeIntervalSince1970: TimeInterval(time))
            } else {
                readAt = now()
            }
            var index = 1
            for (object, code) in chunk {
                let value = results[index]
                index += 1
                var scaler: ScalerUnit?
                if Self.hasScaler(object) {
                    if case .data(let data) = results[index] { scaler = try? ScalerUnit(data: data) }
                    index += 1
                }
                switch value {
                case .data(let data):
                    session.readings.append(ReadingConverter.reading(obis: code, classID: object.classID, attribute: object.attribute,
                                                                     value: data, scalerUnit: scaler, captureTime: readAt))
                case .dataAccessResult(let result):
                    session.objectFailures.append(CollectorError(code: .objectUnavailable, reason: "\(object.obis) attribute \(object.attribute): \(result)",
                                                                 retriable: result.isRetriable, step: "get \(object.obis)"))
                }
            }
        }
    }

    private static func hasScaler(_ object: ObjectReference) -> Bool {
        // Register, extended register: attribute 2 is the value, 3 its scaler_unit.
        (object.classID == 3 || object.classID == 4) && object.attribute == 2
    }

    private func readProfile(_ profile: ObjectReference, from: Date, to: Date, client: DLMSClient, session: SessionState) async throws {
        guard let code = OBISCode(profile.obis) else {
            session.objectFailures.append(CollectorError(code: .taskInvalid, reason: "'\(profile.obis)' is not an OBIS code", retriable: false, step: "read-profile"))
            return
        }
        let reading = try await client.readProfile(code, from: from, to: to)
        // The scalers of the captured registers, asked for once per session.
        let registers = Array(Set(reading.columns.filter { $0.classID == .register || $0.classID == .extendedRegister }.map(\.logicalName)))
            .sorted { "\($0)" < "\($1)" }
        var scalers: [OBISCode: ScalerUnit] = [:]
        if !registers.isEmpty {
            let results = try await client.getWithList(registers.map {
                AttributeWithSelection(CosemAttributeDescriptor(classID: .register, instance: $0, attribute: 3))
            })
            for (code, result) in zip(registers, results) {
                if case .data(let data) = result, let scaler = try? ScalerUnit(data: data) { scalers[code] = scaler }
            }
        }
        let (readings, skipped) = ReadingConverter.readings(profileRows: reading.rows, scalers: scalers, profile: profile.obis)
        session.readings.append(contentsOf: readings)
        session.details["profileRows.\(profile.obis)"] = "\(reading.rows.count)"
        if skipped > 0 {
            session.objectFailures.append(CollectorError(code: .malformedResponse, reason: "\(skipped) profile row(s) without a usable capture time",
                                                         retriable: false, step: "read-profile \(profile.obis)"))
        }
    }

    /// Reads the meter's clock to measure its offset (half the round trip counts as the time
    /// the answer travelled), sets it when the offset exceeds `maximumDeviation`, compensating
    /// for the one-way delay of the setting request, and measures again.
    private func synchronizeClock(maximumDeviation: Double, client: DLMSClient, session: SessionState) async throws {
        let before = try await measureClock(client)
        session.details["clockOffsetBeforeSeconds"] = Self.seconds(before.offset)
        session.details["roundTripSeconds"] = Self.seconds(before.roundTrip)
        guard abs(before.offset) > maximumDeviation else {
            session.details["clockSet"] = "false"
            return
        }
        let sentAt = now()
        let target = sentAt.addingTimeInterval(before.roundTrip / 2)
        let instant = target.timeIntervalSince1970
        let whole = instant.rounded(.down)
        var time = CosemDateTime(unixTime: Int64(whole), utcOffsetMinutes: before.meterTime.utcOffsetMinutes ?? 0)
        time.time.hundredths = UInt8(min(99, Int(((instant - whole) * 100).rounded(.down))))
        try await client.setClock(time)
        let after = try await measureClock(client)
        session.details["clockSet"] = "true"
        session.details["clockOffsetAfterSeconds"] = Self.seconds(after.offset)
        guard abs(after.offset) <= max(maximumDeviation, 1) else {
            throw CollectorError(code: .clockNotSynchronized, reason: "the clock is \(Self.seconds(after.offset)) s off after setting it", retriable: true, step: "synchronize-clock")
        }
    }

    private func measureClock(_ client: DLMSClient) async throws -> (offset: Double, roundTrip: Double, meterTime: CosemDateTime) {
        let sent = now()
        let meterTime = try await client.readClock()
        let received = now()
        guard let unix = meterTime.unixTime else {
            throw DLMSClientError(code: .malformedResponse, step: .get, reason: "the clock's time is not fully specified: \(meterTime)")
        }
        let hundredths = Double(meterTime.time.hundredthsValue ?? 0) / 100
        let roundTrip = received.timeIntervalSince(sent)
        let meterInstant = Double(unix) + hundredths
        let trueInstant = sent.timeIntervalSince1970 + roundTrip / 2
        return (meterInstant - trueInstant, roundTrip, meterTime)
    }

    /// Brings the disconnect control (class 70, 0.0.96.3.10.255) to `target`: reads its state,
    /// acts only if it differs, reads it back. A redelivered task therefore does nothing more.
    private func setSupplyState(_ target: TaskAction.SupplyState, client: DLMSClient, session: SessionState) async throws {
        let disconnector = OBISCode(0, 0, 96, 3, 10, 255)
        let state = try await readControlState(client, disconnector)
        session.details["supplyStateBefore"] = state.name
        if state.satisfies(target) {
            session.details["supplyAction"] = "none"
            session.details["supplyState"] = state.name
            return
        }
        switch target {
        case .disconnected: try await client.remoteDisconnect(disconnector)
        case .connected: try await client.remoteReconnect(disconnector)
        }
        session.details["supplyAction"] = target == .disconnected ? "remote-disconnect" : "remote-reconnect"
        let after = try await readControlState(client, disconnector)
        session.details["supplyState"] = after.name
        guard after.satisfies(target) else {
            throw CollectorError(code: .supplyStateNotReached, reason: "the disconnect control is \(after.name) after acting, not \(target.rawValue)", retriable: false, step: "set-supply-state")
        }
    }

    /// Class 70 control_state (attribute 3): 0 disconnected, 1 connected, 2 ready for reconnection.
    private struct ControlState {
        var value: UInt8
        var name: String {
            switch value {
            case 0: "disconnected"
            case 1: "connected"
            case 2: "ready-for-reconnection"
            default: "state-\(value)"
            }
        }

        /// Ready for reconnection counts as connected: the customer's button closes it, the
        /// head-end cannot (Blue Book 4.5.8, transition e).
        func satisfies(_ target: TaskAction.SupplyState) -> Bool {
            switch target {
            case .disconnected: value == 0
            case .connected: value == 1 || value == 2
            }
        }
    }

    private func readControlState(_ client: DLMSClient, _ disconnector: OBISCode) async throws -> ControlState {
        let value = try await client.get(CosemAttributeDescriptor(classID: .disconnectControl, instance: disconnector, attribute: 3))
        guard let number = value.integerValue, (0...255).contains(number) else {
            throw DLMSClientError(code: .malformedResponse, step: .get, reason: "the disconnect control's state is not an enum: \(value)")
        }
        return ControlState(value: UInt8(number))
    }

    private static func seconds(_ value: Double) -> String { String(format: "%.3f", value) }
}

/// Runs `body`, cancelled with a `meter.timeout` failure when `deadline` passes first.
func withTaskDeadline(_ deadline: Date, _ body: @escaping @Sendable () async throws -> Void) async throws {
    let remaining = deadline.timeIntervalSinceNow
    guard remaining > 0 else {
        throw CollectorError(code: .taskExpired, reason: "the task's deadline passed", retriable: false, step: "session")
    }
    try await withDeadline(.milliseconds(Int64(remaining * 1000)), clock: ContinuousClock(), timeoutError: {
        CollectorError(code: .meterTimeout, reason: "the task's deadline passed during the session", retriable: true, step: "session")
    }, body)
}
