import COSEM
import NIOCore

/// `Exception-Response` (Green Book 9.3.6, tag 0xD8): the server could not even parse or
/// accept the request.
public struct ExceptionResponse: Hashable, Sendable, Codable, CustomStringConvertible {
    /// 1 service-not-allowed, 2 service-unknown.
    public var stateError: UInt8
    /// 1 operation-not-possible, 2 service-not-supported, 3 other-reason, 4 pdu-too-long,
    /// 5 deciphering-error, 6 invocation-counter-error.
    public var serviceError: UInt8
    /// The server's expected invocation counter, sent with invocation-counter-error.
    public var invocationCounter: UInt32?

    public static let tag: UInt8 = 0xD8

    public init(stateError: UInt8, serviceError: UInt8, invocationCounter: UInt32? = nil) {
        self.stateError = stateError
        self.serviceError = serviceError
        self.invocationCounter = invocationCounter
    }

    public var stateErrorName: String {
        switch stateError { case 1: "service-not-allowed"; case 2: "service-unknown"; default: "state-error(\(stateError))" }
    }

    public var serviceErrorName: String {
        switch serviceError {
        case 1: "operation-not-possible"
        case 2: "service-not-supported"
        case 3: "other-reason"
        case 4: "pdu-too-long"
        case 5: "deciphering-error"
        case 6: "invocation-counter-error"
        default: "service-error(\(serviceError))"
        }
    }

    public var description: String {
        "exception-response: \(stateErrorName), \(serviceErrorName)" + (invocationCounter.map { " (invocation counter \($0))" } ?? "")
    }

    @inlinable
    public static func decode(from buffer: inout ByteBuffer) throws -> ExceptionResponse {
        let tag: UInt8 = try buffer.readDLMSInteger("exception-response tag")
        guard tag == Self.tag else { throw DLMSError.unexpectedTag(tag, in: "exception-response") }
        let state: UInt8 = try buffer.readDLMSInteger("state-error")
        let service: UInt8 = try buffer.readDLMSInteger("service-error")
        var counter: UInt32? = nil
        if service == 6, buffer.readableBytes >= 4 { counter = buffer.readInteger(as: UInt32.self) }
        return ExceptionResponse(stateError: state, serviceError: service, invocationCounter: counter)
    }

    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(Self.tag)
        buffer.writeInteger(stateError)
        buffer.writeInteger(serviceError)
        if let invocationCounter { buffer.writeInteger(invocationCounter) }
    }
}

/// `ConfirmedServiceError` (Green Book 9.3.6, tag 0x0E), e.g. an InitiateRequest the server refused.
public struct ConfirmedServiceError: Hashable, Sendable, Codable, CustomStringConvertible {
    /// Which service failed: 1 initiateError, 2 getStatus, 3 getNameList, 4 getVariableAttribute,
    /// 5 read, 6 write, … (the context-specific tag of the CHOICE).
    public var service: UInt8
    /// The `ServiceError` CHOICE: 0 application-reference, 1 hardware-resource, 2 vde-state-error,
    /// 3 service, 4 definition, 5 access, 6 initiate, 7 load-data-set, 8 change-scope, 9 task, 10 other.
    public var errorKind: UInt8
    public var errorValue: UInt8

    public static let tag: UInt8 = 0x0E

    public init(service: UInt8, errorKind: UInt8, errorValue: UInt8) {
        self.service = service
        self.errorKind = errorKind
        self.errorValue = errorValue
    }

    public var serviceName: String {
        let names = [1: "initiateError", 2: "getStatus", 3: "getNameList", 4: "getVariableAttribute", 5: "read", 6: "write",
                     7: "getDataSetAttribute", 8: "getTIAttribute", 9: "changeScope", 10: "start", 11: "stop", 12: "resume",
                     13: "makeUsable", 14: "initiateLoad", 15: "loadSegment", 16: "terminateLoad", 17: "initiateUpLoad",
                     18: "upLoadSegment", 19: "terminateUpLoad"]
        return names[Int(service)] ?? "service(\(service))"
    }

    /// The error in words, e.g. `initiate: dlms-version-too-low`.
    public var reason: String {
        let table: [UInt8: (String, [String])] = [
            0: ("application-reference", ["other", "time-elapsed", "application-unreachable", "application-reference-invalid",
                                          "application-context-unsupported", "provider-communication-error", "deciphering-error"]),
            1: ("hardware-resource", ["other", "memory-unavailable", "processor-resource-unavailable", "mass-storage-unavailable", "other-resource-unavailable"]),
            2: ("vde-state-error", ["other", "no-dlms-context", "loading-data-set", "status-nochange", "status-inoperable"]),
            3: ("service", ["other", "pdu-size", "service-unsupported"]),
            4: ("definition", ["other", "object-undefined", "object-class-inconsistent", "object-attribute-inconsistent"]),
            5: ("access", ["other", "scope-of-access-violated", "object-access-violated", "hardware-fault", "object-unavailable"]),
            6: ("initiate", ["other", "dlms-version-too-low", "incompatible-conformance", "pdu-size-too-short", "refused-by-the-VDE-handler"]),
            7: ("load-data-set", ["other", "primitive-out-of-sequence", "not-loadable", "dataset-size-too-large", "not-awaited-segment",
                                  "interpretation-failure", "storage-failure", "data-set-not-ready"]),
            8: ("change-scope", ["other"]),
            9: ("task", ["other", "no-remote-control", "ti-stopped", "ti-running", "ti-unusable"]),
            10: ("other", ["other"]),
        ]
        guard let (kind, values) = table[errorKind] else { return "service-error(\(errorKind)): \(errorValue)" }
        return "\(kind): " + (Int(errorValue) < values.count ? values[Int(errorValue)] : "\(errorValue)")
    }

    public var description: String { "confirmed-service-error in \(serviceName): \(reason)" }

    @inlinable
    public static func decode(from buffer: inout ByteBuffer) throws -> ConfirmedServiceError {
        let tag: UInt8 = try buffer.readDLMSInteger("confirmed-service-error tag")
        guard tag == Self.tag else { throw DLMSError.unexpectedTag(tag, in: "confirmed-service-error") }
        let service: UInt8 = try buffer.readDLMSInteger("confirmed service")
        let kind: UInt8 = try buffer.readDLMSInteger("service-error choice")
        let value: UInt8 = try buffer.readDLMSInteger("service-error value")
        return ConfirmedServiceError(service: service, errorKind: kind, errorValue: value)
    }

    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(Self.tag)
        buffer.writeInteger(service)
        buffer.writeInteger(errorKind)
        buffer.writeInteger(errorValue)
    }
}
