import COSEM
import DLMSCodec
import Foundation

/// A register read with its scaler and unit.
public struct RegisterReading: Hashable, Sendable {
    public var logicalName: OBISCode
    public var classID: COSEMClassID
    /// The value as the meter sent it.
    public var raw: DLMSData
    /// `nil` for data objects (class 1), which have none.
    public var scalerUnit: ScalerUnit?

    /// The value with the scaler applied, for numeric values.
    public var scaledValue: Double? {
        guard let number = raw.doubleValue else { return nil }
        return scalerUnit.map { $0.scale(number) } ?? number
    }
}

/// Rows of a profile generic buffer with the columns they were captured from.
public struct ProfileReading: Hashable, Sendable {
    public var logicalName: OBISCode
    public var columns: [CaptureObjectDefinition]
    public var capturePeriod: UInt32?
    public var rows: [ProfileRow]
}

extension DLMSClient {
    /// Reads the meter's clock (class 8, attribute 2).
    public func readClock(_ logicalName: OBISCode = .clock) async throws -> CosemDateTime {
        let data = try await get(ClockValue.descriptor(logicalName, .time))
        guard let time = data.dateTimeValue else {
            throw DLMSClientError(code: .malformedResponse, step: .get, reason: "the clock's time is not a date-time: \(data)")
        }
        return time
    }

    /// Sets the meter's clock (class 8, attribute 2).
    public func setClock(_ time: CosemDateTime, _ logicalName: OBISCode = .clock) async throws {
        try await set(ClockValue.descriptor(logicalName, .time), to: .octetString(dateTime: time))
    }

    /// Reads a register's value and scaler/unit together (one GET-with-list when the meter
    /// allows it). Without an explicit class: the clock is read as class 8, electricity
    /// quantities (A = 1) as registers (class 3) and everything else as data (class 1); a meter
    /// that answers object-class-inconsistent or object-undefined for the guess is asked again
    /// as a data object.
    public func readRegister(_ logicalName: OBISCode, classID: COSEMClassID? = nil) async throws -> RegisterReading {
        let guess = classID ?? Self.likelyClass(of: logicalName)
        if guess == .register || guess == .extendedRegister || guess == .demandRegister {
            let valueAttribute: Int8 = guess == .demandRegister ? 3 : 2
            let scalerAttribute: Int8 = guess == .demandRegister ? 4 : 3
            let results = try await getWithList([
                AttributeWithSelection(CosemAttributeDescriptor(classID: guess, instance: logicalName, attribute: valueAttribute)),
                AttributeWithSelection(CosemAttributeDescriptor(classID: guess, instance: logicalName, attribute: scalerAttribute)),
            ])
            switch (results[0], results[1]) {
            case (.data(let value), .data(let scaler)):
                do {
                    return RegisterReading(logicalName: logicalName, classID: guess, raw: value, scalerUnit: try ScalerUnit(data: scaler))
                } catch {
                    throw DLMSClientError.wrapping(error, step: .get)
                }
            case (.dataAccessResult(let result), _) where classID == nil && (result == .objectClassInconsistent || result == .objectUndefined):
                break
            case (.dataAccessResult(let result), _), (_, .dataAccessResult(let result)):
                throw DLMSClientError(code: .dataAccessFailed, step: .get, reason: "\(logicalName): \(result)", dataAccessResult: result)
            }
        }
        let descriptorClass = guess == .clock ? COSEMClassID.clock : (classID ?? .data)
        let value = try await get(CosemAttributeDescriptor(classID: descriptorClass, instance: logicalName, attribute: 2))
        return RegisterReading(logicalName: logicalName, classID: descriptorClass, raw: value, scalerUnit: nil)
    }

    /// Reads the rows of a profile generic (class 7) captured between `from` and `to`
    /// (selective access by range on the clock; both ends included).
    ///
    /// - Parameter utcOffsetMinutes: the offset the range is written with. Default: 0 (UTC).
    public func readProfile(_ logicalName: OBISCode, from: Date, to: Date, utcOffsetMinutes: Int = 0) async throws -> ProfileReading {
        guard from <= to else {
            throw DLMSClientError(code: .invalidArgument, step: .get, reason: "profile range starts after it ends")
        }
        let definition = try await getWithList([
            AttributeWithSelection(ProfileGeneric.descriptor(logicalName, .captureObjects)),
            AttributeWithSelection(ProfileGeneric.descriptor(logicalName, .capturePeriod)),
        ])
        guard case .data(let captureData) = definition[0] else {
            if case .dataAccessResult(let result) = definition[0] {
                throw DLMSClientError(code: .dataAccessFailed, step: .get, reason: "\(logicalName) capture objects: \(result)", dataAccessResult: result)
            }
            throw DLMSClientError(code: .unexpectedResponse, step: .get, reason: "\(logicalName) capture objects")
        }
        let columns: [CaptureObjectDefinition]
        do {
            columns = try ProfileGeneric.captureObjects(from: captureData)
        } catch {
            throw DLMSClientError.wrapping(error, step: .get)
        }
        var period: UInt32?
        if case .data(let data) = definition[1], let value = data.integerValue { period = UInt32(clamping: value) }

        let range = RangeDescriptor(
            from: CosemDateTime(unixTime: Int64(from.timeIntervalSince1970.rounded(.down)), utcOffsetMinutes: utcOffsetMinutes),
            to: CosemDateTime(unixTime: Int64(to.timeIntervalSince1970.rounded(.down)), utcOffsetMinutes: utcOffsetMinutes))
        let buffer = try await get(ProfileGeneric.descriptor(logicalName, .buffer), accessSelection: AccessSelection(range))
        do {
            let rows = try ProfileGeneric.rows(buffer: buffer, captureObjects: columns)
            return ProfileReading(logicalName: logicalName, columns: columns, capturePeriod: period, rows: rows)
        } catch {
            throw DLMSClientError.wrapping(error, step: .get)
        }
    }

    /// Opens the breaker (class 70 method 1, remote_disconnect).
    public func remoteDisconnect(_ logicalName: OBISCode = OBISCode(0, 0, 96, 3, 10, 255)) async throws {
        try await action(CosemMethodDescriptor(classID: .disconnectControl, instance: logicalName, method: 1), parameters: .int8(0))
    }

    /// Closes the breaker or arms it for the customer (class 70 method 2, remote_reconnect).
    public func remoteReconnect(_ logicalName: OBISCode = OBISCode(0, 0, 96, 3, 10, 255)) async throws {
        try await action(CosemMethodDescriptor(classID: .disconnectControl, instance: logicalName, method: 2), parameters: .int8(0))
    }

    static func likelyClass(of logicalName: OBISCode) -> COSEMClassID {
        if logicalName == .clock { return .clock }
        // Electricity (A = 1) quantities other than profiles (C = 99, 98) and the abstract
        // service channels are registers on practically every meter.
        if logicalName.a == 1, logicalName.c != 99, logicalName.c != 98, logicalName.c != 0, logicalName.c < 128 { return .register }
        return .data
    }
}
