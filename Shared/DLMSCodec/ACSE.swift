import COSEM
import NIOCore

// MARK: - Names

/// An object identifier in its BER content form, e.g. `60 85 74 05 08 01 01`.
public struct DLMSObjectIdentifier: Hashable, Sendable {
    public var bytes: [UInt8]
    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// The DLMS UA arc `2.16.756.5.8.<kind>.<id>` (BER `60 85 74 05 08 kind id`), when the identifier uses it.
    func dlmsUA(kind: UInt8) -> UInt8? {
        bytes.count == 7 && bytes[0...5].elementsEqual([0x60, 0x85, 0x74, 0x05, 0x08, kind]) ? bytes[6] : nil
    }

    static func dlmsUA(kind: UInt8, id: UInt8) -> DLMSObjectIdentifier { DLMSObjectIdentifier([0x60, 0x85, 0x74, 0x05, 0x08, kind, id]) }
}

/// The application context name (Green Book 9.4.2.2.2).
public struct ApplicationContextName: Hashable, Sendable, Codable, CustomStringConvertible {
    public var oid: DLMSObjectIdentifier
    public init(oid: DLMSObjectIdentifier) { self.oid = oid }

    public static let logicalName = ApplicationContextName(oid: .dlmsUA(kind: 1, id: 1))
    public static let shortName = ApplicationContextName(oid: .dlmsUA(kind: 1, id: 2))
    public static let logicalNameWithCiphering = ApplicationContextName(oid: .dlmsUA(kind: 1, id: 3))
    public static let shortNameWithCiphering = ApplicationContextName(oid: .dlmsUA(kind: 1, id: 4))

    static let names: [UInt8: String] = [1: "logical-name", 2: "short-name", 3: "logical-name-with-ciphering", 4: "short-name-with-ciphering"]

    public var usesLogicalNames: Bool { oid.dlmsUA(kind: 1).map { $0 == 1 || $0 == 3 } ?? false }
    public var usesCiphering: Bool { oid.dlmsUA(kind: 1).map { $0 == 3 || $0 == 4 } ?? false }

    public var description: String { oid.dlmsUA(kind: 1).flatMap { Self.names[$0] } ?? "oid:" + DLMSBytes(oid.bytes).hex }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        if let (id, _) = Self.names.first(where: { $0.value == text }) { self = .init(oid: .dlmsUA(kind: 1, id: id)); return }
        guard text.hasPrefix("oid:") else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown application context '\(text)'"))
        }
        self.init(oid: DLMSObjectIdentifier(Array(try ByteBuffer(dlmsHex: text.dropFirst(4)).readableBytesView)))
    }
    public func encode(to encoder: any Encoder) throws { var c = encoder.singleValueContainer(); try c.encode(description) }
}

/// The authentication mechanism name (Green Book 9.4.2.2.3).
public struct AuthenticationMechanism: Hashable, Sendable, Codable, CustomStringConvertible {
    public var oid: DLMSObjectIdentifier
    public init(oid: DLMSObjectIdentifier) { self.oid = oid }

    public static let lowest = AuthenticationMechanism(oid: .dlmsUA(kind: 2, id: 0))
    public static let low = AuthenticationMechanism(oid: .dlmsUA(kind: 2, id: 1))
    public static let high = AuthenticationMechanism(oid: .dlmsUA(kind: 2, id: 2))
    public static let highMD5 = AuthenticationMechanism(oid: .dlmsUA(kind: 2, id: 3))
    public static let highSHA1 = AuthenticationMechanism(oid: .dlmsUA(kind: 2, id: 4))
    public static let highGMAC = AuthenticationMechanism(oid: .dlmsUA(kind: 2, id: 5))
    public static let highSHA256 = AuthenticationMechanism(oid: .dlmsUA(kind: 2, id: 6))
    public static let highECDSA = AuthenticationMechanism(oid: .dlmsUA(kind: 2, id: 7))

    static let names: [UInt8: String] = [0: "lowest", 1: "low", 2: "high", 3: "high-md5", 4: "high-sha1", 5: "high-gmac", 6: "high-sha256", 7: "high-ecdsa"]

    /// The mechanism id (0 lowest … 7 high-ECDSA), when the name is in the DLMS UA arc.
    public var id: UInt8? { oid.dlmsUA(kind: 2) }
    public var description: String { id.flatMap { Self.names[$0] } ?? "oid:" + DLMSBytes(oid.bytes).hex }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        if let (id, _) = Self.names.first(where: { $0.value == text }) { self = .init(oid: .dlmsUA(kind: 2, id: id)); return }
        guard text.hasPrefix("oid:") else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown mechanism '\(text)'"))
        }
        self.init(oid: DLMSObjectIdentifier(Array(try ByteBuffer(dlmsHex: text.dropFirst(4)).readableBytesView)))
    }
    public func encode(to encoder: any Encoder) throws { var c = encoder.singleValueContainer(); try c.encode(description) }
}

/// `Authentication-Value ::= CHOICE { charstring [0] GraphicString, bitstring [1] BIT STRING, … }`.
public enum AuthenticationValue: Hashable, Sendable, Codable {
    /// A password (LLS) or challenge (HLS).
    case charString(DLMSBytes)
    /// The raw BIT STRING contents, unused-bits byte first.
    case bitString(DLMSBytes)

    static func decode(_ content: ByteBuffer) throws -> AuthenticationValue {
        var content = content
        let (tag, value) = try content.readBERElement("authentication-value")
        try content.expectFullyConsumed("authentication-value")
        switch tag {
        case 0x80: return .charString(DLMSBytes(value.readableBytesView))
        case 0x81: return .bitString(DLMSBytes(value.readableBytesView))
        default: throw DLMSError.unexpectedTag(tag, in: "authentication-value")
        }
    }

    func encode(into buffer: inout ByteBuffer) {
        switch self {
        case .charString(let b): buffer.writeBERElement(tag: 0x80, bytes: b.bytes)
        case .bitString(let b): buffer.writeBERElement(tag: 0x81, bytes: b.bytes)
        }
    }

    public var bytes: [UInt8] {
        switch self { case .charString(let b), .bitString(let b): b.bytes }
    }
}

/// The xDLMS APDU carried in an ACSE user-information field (`BE len 04 len …`).
public enum ACSEUserInformation: Hashable, Sendable, Codable {
    case initiateRequest(InitiateRequest)
    case initiateResponse(InitiateResponse)
    case confirmedServiceError(ConfirmedServiceError)
    /// glo-/ded-InitiateRequest or Response (security-protected).
    case ciphered(CipheredAPDU)

    static func decode(_ content: ByteBuffer) throws -> ACSEUserInformation {
        var content = content
        let (tag, inner) = try content.readBERElement("user-information")
        guard tag == 0x04 else { throw DLMSError.unexpectedTag(tag, in: "user-information (expected OCTET STRING)") }
        try content.expectFullyConsumed("user-information")
        var apdu = inner
        guard let first = apdu.getInteger(at: apdu.readerIndex, as: UInt8.self) else { throw DLMSError.truncated("user-information is empty") }
        let result: ACSEUserInformation
        switch first {
        case InitiateRequest.tag: result = .initiateRequest(try InitiateRequest.decode(from: &apdu))
        case InitiateResponse.tag: result = .initiateResponse(try InitiateResponse.decode(from: &apdu))
        case ConfirmedServiceError.tag: result = .confirmedServiceError(try ConfirmedServiceError.decode(from: &apdu))
        case let t where CipheredAPDU.isCipheredTag(t): result = .ciphered(try CipheredAPDU.decode(from: &apdu, limits: .default))
        default: throw DLMSError.unexpectedTag(first, in: "user-information APDU")
        }
        try apdu.expectFullyConsumed("user-information APDU")
        return result
    }

    func encode(into buffer: inout ByteBuffer) {
        buffer.writeBERElement(tag: 0xBE) { outer in
            outer.writeBERElement(tag: 0x04) { inner in
                switch self {
                case .initiateRequest(let r): r.encode(into: &inner)
                case .initiateResponse(let r): r.encode(into: &inner)
                case .confirmedServiceError(let e): e.encode(into: &inner)
                case .ciphered(let c): c.encode(into: &inner)
                }
            }
        }
    }
}

/// An ACSE element this codec keeps without interpreting: its tag and contents.
public struct ACSEElement: Hashable, Sendable, Codable {
    public var tag: UInt8
    public var content: DLMSBytes
    public init(tag: UInt8, content: DLMSBytes) {
        self.tag = tag
        self.content = content
    }
}

/// Reads the `[n] { OCTET STRING }` wrapping used by AP titles.
private func decodeWrappedOctetString(_ content: ByteBuffer, _ context: StaticString) throws -> DLMSBytes {
    var content = content
    let (tag, value) = try content.readBERElement(context)
    guard tag == 0x04 else { throw DLMSError.unexpectedTag(tag, in: "\(context) (expected OCTET STRING)") }
    try content.expectFullyConsumed(context)
    return DLMSBytes(value.readableBytesView)
}

private func decodeWrappedOID(_ content: ByteBuffer, _ context: StaticString) throws -> DLMSObjectIdentifier {
    var content = content
    let (tag, value) = try content.readBERElement(context)
    guard tag == 0x06 else { throw DLMSError.unexpectedTag(tag, in: "\(context) (expected OBJECT IDENTIFIER)") }
    try content.expectFullyConsumed(context)
    return DLMSObjectIdentifier(Array(value.readableBytesView))
}

private func decodeWrappedInteger(_ content: ByteBuffer, _ context: StaticString) throws -> Int {
    var content = content
    let (tag, value) = try content.readBERElement(context)
    guard tag == 0x02 else { throw DLMSError.unexpectedTag(tag, in: "\(context) (expected INTEGER)") }
    try content.expectFullyConsumed(context)
    return try decodeBERInteger(value, context)
}

// MARK: - AARQ

/// `AARQ-apdu` (ISO/IEC 8650-1 as profiled by Green Book 9.4.2.2, tag 0x60).
public struct AARQ: Hashable, Sendable, Codable {
    /// Contents of the protocol-version BIT STRING (usually absent, meaning version 1).
    public var protocolVersion: DLMSBytes?
    public var applicationContextName: ApplicationContextName
    public var calledAPTitle: DLMSBytes?
    public var calledAEQualifier: DLMSBytes?
    public var calledAPInvocationID: DLMSBytes?
    public var calledAEInvocationID: DLMSBytes?
    /// The client system title (HLS and ciphering).
    public var callingAPTitle: DLMSBytes?
    public var callingAEQualifier: DLMSBytes?
    public var callingAPInvocationID: DLMSBytes?
    public var callingAEInvocationID: DLMSBytes?
    /// Contents of the sender-acse-requirements BIT STRING (`07 80` = authentication).
    public var senderACSERequirements: DLMSBytes?
    public var mechanismName: AuthenticationMechanism?
    public var callingAuthenticationValue: AuthenticationValue?
    public var implementationInformation: DLMSBytes?
    public var userInformation: ACSEUserInformation?
    /// Elements this codec does not interpret, re-encoded after the known ones.
    public var otherElements: [ACSEElement]

    public static let tag: UInt8 = 0x60

    public init(applicationContextName: ApplicationContextName = .logicalName, callingAPTitle: DLMSBytes? = nil,
                senderACSERequirements: DLMSBytes? = nil, mechanismName: AuthenticationMechanism? = nil,
                callingAuthenticationValue: AuthenticationValue? = nil, userInformation: ACSEUserInformation? = nil) {
        self.applicationContextName = applicationContextName
        self.callingAPTitle = callingAPTitle
        self.senderACSERequirements = senderACSERequirements
        self.mechanismName = mechanismName
        self.callingAuthenticationValue = callingAuthenticationValue
        self.userInformation = userInformation
        self.otherElements = []
    }

    /// An AARQ with authentication: sets the ACSE requirements, mechanism and authentication value together.
    public static func authenticated(context: ApplicationContextName = .logicalName, mechanism: AuthenticationMechanism,
                                     secret: [UInt8], callingAPTitle: DLMSBytes? = nil, initiate: InitiateRequest) -> AARQ {
        AARQ(applicationContextName: context, callingAPTitle: callingAPTitle, senderACSERequirements: [0x07, 0x80],
             mechanismName: mechanism, callingAuthenticationValue: .charString(DLMSBytes(secret)), userInformation: .initiateRequest(initiate))
    }

    public static func decode(from buffer: inout ByteBuffer) throws -> AARQ {
        let (tag, content) = try buffer.readBERElement("AARQ")
        guard tag == Self.tag else { throw DLMSError.unexpectedTag(tag, in: "AARQ") }
        var body = content
        var aarq = AARQ()
        var sawContext = false
        while body.readableBytes > 0 {
            let (t, c) = try body.readBERElement("AARQ element")
            let raw = DLMSBytes(c.readableBytesView)
            switch t {
            case 0x80: aarq.protocolVersion = raw
            case 0xA1: aarq.applicationContextName = ApplicationContextName(oid: try decodeWrappedOID(c, "application-context-name")); sawContext = true
            case 0xA2: aarq.calledAPTitle = raw
            case 0xA3: aarq.calledAEQualifier = raw
            case 0xA4: aarq.calledAPInvocationID = raw
            case 0xA5: aarq.calledAEInvocationID = raw
            case 0xA6: aarq.callingAPTitle = try decodeWrappedOctetString(c, "calling-AP-title")
            case 0xA7: aarq.callingAEQualifier = raw
            case 0xA8: aarq.callingAPInvocationID = raw
            case 0xA9: aarq.callingAEInvocationID = raw
            case 0x8A: aarq.senderACSERequirements = raw
            case 0x8B: aarq.mechanismName = AuthenticationMechanism(oid: DLMSObjectIdentifier(raw.bytes))
            case 0xAC: aarq.callingAuthenticationValue = try AuthenticationValue.decode(c)
            case 0xBD: aarq.implementationInformation = raw
            case 0xBE: aarq.userInformation = try ACSEUserInformation.decode(c)
            default: aarq.otherElements.append(ACSEElement(tag: t, content: raw))
            }
        }
        guard sawContext else { throw DLMSError.invalidValue("AARQ without application-context-name") }
        return aarq
    }

    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeBERElement(tag: Self.tag) { b in
            if let protocolVersion { b.writeBERElement(tag: 0x80, bytes: protocolVersion.bytes) }
            b.writeBERElement(tag: 0xA1) { $0.writeBERElement(tag: 0x06, bytes: applicationContextName.oid.bytes) }
            if let calledAPTitle { b.writeBERElement(tag: 0xA2, bytes: calledAPTitle.bytes) }
            if let calledAEQualifier { b.writeBERElement(tag: 0xA3, bytes: calledAEQualifier.bytes) }
            if let calledAPInvocationID { b.writeBERElement(tag: 0xA4, bytes: calledAPInvocationID.bytes) }
            if let calledAEInvocationID { b.writeBERElement(tag: 0xA5, bytes: calledAEInvocationID.bytes) }
            if let callingAPTitle { b.writeBERElement(tag: 0xA6) { $0.writeBERElement(tag: 0x04, bytes: callingAPTitle.bytes) } }
            if let callingAEQualifier { b.writeBERElement(tag: 0xA7, bytes: callingAEQualifier.bytes) }
            if let callingAPInvocationID { b.writeBERElement(tag: 0xA8, bytes: callingAPInvocationID.bytes) }
            if let callingAEInvocationID { b.writeBERElement(tag: 0xA9, bytes: callingAEInvocationID.bytes) }
            if let senderACSERequirements { b.writeBERElement(tag: 0x8A, bytes: senderACSERequirements.bytes) }
            if let mechanismName { b.writeBERElement(tag: 0x8B, bytes: mechanismName.oid.bytes) }
            if let callingAuthenticationValue { b.writeBERElement(tag: 0xAC) { callingAuthenticationValue.encode(into: &$0) } }
            if let implementationInformation { b.writeBERElement(tag: 0xBD, bytes: implementationInformation.bytes) }
            if let userInformation { userInformation.encode(into: &b) }
            for e in otherElements { b.writeBERElement(tag: e.tag, bytes: e.content.bytes) }
        }
    }
}

// MARK: - AARE

/// `Association-result` (ISO/IEC 8650-1): 0 accepted, 1 rejected-permanent, 2 rejected-transient.
public struct AssociationResult: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public var rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    public static let accepted = AssociationResult(rawValue: 0)
    public static let rejectedPermanent = AssociationResult(rawValue: 1)
    public static let rejectedTransient = AssociationResult(rawValue: 2)
    public var description: String {
        switch rawValue { case 0: "accepted"; case 1: "rejected-permanent"; case 2: "rejected-transient"; default: "result(\(rawValue))" }
    }
}

/// `Associate-source-diagnostic`: who answered (ACSE service user or provider) and why.
public struct AssociateSourceDiagnostic: Hashable, Sendable, Codable, CustomStringConvertible {
    public enum Source: UInt8, Hashable, Sendable, Codable {
        case serviceUser = 1
        case serviceProvider = 2
    }

    public var source: Source
    public var value: Int

    public init(source: Source, value: Int) {
        self.source = source
        self.value = value
    }

    public static let null = AssociateSourceDiagnostic(source: .serviceUser, value: 0)

    /// The diagnostic in words, e.g. `authentication-failure`.
    public var reason: String {
        switch source {
        case .serviceUser:
            let names = ["null", "no-reason-given", "application-context-name-not-supported", "calling-AP-title-not-recognized",
                         "calling-AP-invocation-identifier-not-recognized", "calling-AE-qualifier-not-recognized",
                         "calling-AE-invocation-identifier-not-recognized", "called-AP-title-not-recognized",
                         "called-AP-invocation-identifier-not-recognized", "called-AE-qualifier-not-recognized",
                         "called-AE-invocation-identifier-not-recognized", "authentication-mechanism-name-not-recognised",
                         "authentication-mechanism-name-required", "authentication-failure", "authentication-required"]
            return value >= 0 && value < names.count ? names[value] : "acse-service-user(\(value))"
        case .serviceProvider:
            let names = ["null", "no-reason-given", "no-common-acse-version"]
            return value >= 0 && value < names.count ? names[value] : "acse-service-provider(\(value))"
        }
    }

    public var description: String { "\(source == .serviceUser ? "acse-service-user" : "acse-service-provider"): \(reason)" }
}

/// `AARE-apdu` (Green Book 9.4.2.2, tag 0x61).
public struct AARE: Hashable, Sendable, Codable {
    public var protocolVersion: DLMSBytes?
    public var applicationContextName: ApplicationContextName
    public var result: AssociationResult
    public var resultSourceDiagnostic: AssociateSourceDiagnostic
    /// The server system title.
    public var respondingAPTitle: DLMSBytes?
    public var respondingAEQualifier: DLMSBytes?
    public var respondingAPInvocationID: DLMSBytes?
    public var respondingAEInvocationID: DLMSBytes?
    public var responderACSERequirements: DLMSBytes?
    public var mechanismName: AuthenticationMechanism?
    /// The server's challenge (HLS).
    public var respondingAuthenticationValue: AuthenticationValue?
    public var implementationInformation: DLMSBytes?
    public var userInformation: ACSEUserInformation?
    public var otherElements: [ACSEElement]

    public static let tag: UInt8 = 0x61

    public init(applicationContextName: ApplicationContextName = .logicalName, result: AssociationResult = .accepted,
                resultSourceDiagnostic: AssociateSourceDiagnostic = .null, respondingAPTitle: DLMSBytes? = nil,
                responderACSERequirements: DLMSBytes? = nil, mechanismName: AuthenticationMechanism? = nil,
                respondingAuthenticationValue: AuthenticationValue? = nil, userInformation: ACSEUserInformation? = nil) {
        self.applicationContextName = applicationContextName
        self.result = result
        self.resultSourceDiagnostic = resultSourceDiagnostic
        self.respondingAPTitle = respondingAPTitle
        self.responderACSERequirements = responderACSERequirements
        self.mechanismName = mechanismName
        self.respondingAuthenticationValue = respondingAuthenticationValue
        self.userInformation = userInformation
        self.otherElements = []
    }

    /// Whether the association was accepted; a rejection is a value with readable reasons, not an error.
    public var isAccepted: Bool { result == .accepted }

    /// `accepted`, or e.g. `rejected-permanent (acse-service-user: authentication-failure)`.
    public var resultDescription: String {
        result == .accepted ? "accepted" : "\(result) (\(resultSourceDiagnostic))"
            + (userInformation.flatMap { if case .confirmedServiceError(let e) = $0 { "; \(e)" } else { nil } } ?? "")
    }

    public static func decode(from buffer: inout ByteBuffer) throws -> AARE {
        let (tag, content) = try buffer.readBERElement("AARE")
        guard tag == Self.tag else { throw DLMSError.unexpectedTag(tag, in: "AARE") }
        var body = content
        var aare = AARE()
        var seen = (context: false, result: false, diagnostic: false)
        while body.readableBytes > 0 {
            let (t, c) = try body.readBERElement("AARE element")
            let raw = DLMSBytes(c.readableBytesView)
            switch t {
            case 0x80: aare.protocolVersion = raw
            case 0xA1: aare.applicationContextName = ApplicationContextName(oid: try decodeWrappedOID(c, "application-context-name")); seen.context = true
            case 0xA2: aare.result = AssociationResult(rawValue: try decodeWrappedInteger(c, "result")); seen.result = true
            case 0xA3:
                var inner = c
                let (choice, value) = try inner.readBERElement("result-source-diagnostic")
                try inner.expectFullyConsumed("result-source-diagnostic")
                guard let source = AssociateSourceDiagnostic.Source(rawValue: choice & 0x1F), choice & 0xE0 == 0xA0 else {
                    throw DLMSError.unexpectedTag(choice, in: "result-source-diagnostic")
                }
                aare.resultSourceDiagnostic = AssociateSourceDiagnostic(source: source, value: try decodeWrappedInteger(value, "diagnostic"))
                seen.diagnostic = true
            case 0xA4: aare.respondingAPTitle = try decodeWrappedOctetString(c, "responding-AP-title")
            case 0xA5: aare.respondingAEQualifier = raw
            case 0xA6: aare.respondingAPInvocationID = raw
            case 0xA7: aare.respondingAEInvocationID = raw
            case 0x88: aare.responderACSERequirements = raw
            case 0x89: aare.mechanismName = AuthenticationMechanism(oid: DLMSObjectIdentifier(raw.bytes))
            case 0xAA: aare.respondingAuthenticationValue = try AuthenticationValue.decode(c)
            case 0xBD: aare.implementationInformation = raw
            case 0xBE: aare.userInformation = try ACSEUserInformation.decode(c)
            default: aare.otherElements.append(ACSEElement(tag: t, content: raw))
            }
        }
        guard seen.context, seen.result, seen.diagnostic else {
            throw DLMSError.invalidValue("AARE lacks application-context-name, result or result-source-diagnostic")
        }
        return aare
    }

    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeBERElement(tag: Self.tag) { b in
            if let protocolVersion { b.writeBERElement(tag: 0x80, bytes: protocolVersion.bytes) }
            b.writeBERElement(tag: 0xA1) { $0.writeBERElement(tag: 0x06, bytes: applicationContextName.oid.bytes) }
            b.writeBERElement(tag: 0xA2) { $0.writeBERElement(tag: 0x02, bytes: encodeBERInteger(result.rawValue)) }
            b.writeBERElement(tag: 0xA3) { d in
                d.writeBERElement(tag: 0xA0 | resultSourceDiagnostic.source.rawValue) {
                    $0.writeBERElement(tag: 0x02, bytes: encodeBERInteger(resultSourceDiagnostic.value))
                }
            }
            if let respondingAPTitle { b.writeBERElement(tag: 0xA4) { $0.writeBERElement(tag: 0x04, bytes: respondingAPTitle.bytes) } }
            if let respondingAEQualifier { b.writeBERElement(tag: 0xA5, bytes: respondingAEQualifier.bytes) }
            if let respondingAPInvocationID { b.writeBERElement(tag: 0xA6, bytes: respondingAPInvocationID.bytes) }
            if let respondingAEInvocationID { b.writeBERElement(tag: 0xA7, bytes: respondingAEInvocationID.bytes) }
            if let responderACSERequirements { b.writeBERElement(tag: 0x88, bytes: responderACSERequirements.bytes) }
            if let mechanismName { b.writeBERElement(tag: 0x89, bytes: mechanismName.oid.bytes) }
            if let respondingAuthenticationValue { b.writeBERElement(tag: 0xAA) { respondingAuthenticationValue.encode(into: &$0) } }
            if let implementationInformation { b.writeBERElement(tag: 0xBD, bytes: implementationInformation.bytes) }
            if let userInformation { userInformation.encode(into: &b) }
            for e in otherElements { b.writeBERElement(tag: e.tag, bytes: e.content.bytes) }
        }
    }
}

// MARK: - RLRQ / RLRE

/// `RLRQ-apdu` (tag 0x62) and `RLRE-apdu` (tag 0x63): release request and response.
/// Request reasons: 0 normal, 1 urgent, 30 user-defined; response reasons: 0 normal, 1 not-finished, 30 user-defined.
public struct ReleaseAPDU: Hashable, Sendable, Codable {
    public var reason: Int?
    public var userInformation: ACSEUserInformation?
    public var otherElements: [ACSEElement]

    public init(reason: Int? = 0, userInformation: ACSEUserInformation? = nil) {
        self.reason = reason
        self.userInformation = userInformation
        self.otherElements = []
    }

    public var reasonName: String? {
        switch reason { case 0: "normal"; case 1: "urgent/not-finished"; case 30: "user-defined"; case nil: nil; case let r?: "reason(\(r))" }
    }

    static func decode(from buffer: inout ByteBuffer, tag expected: UInt8, _ context: StaticString) throws -> ReleaseAPDU {
        let (tag, content) = try buffer.readBERElement(context)
        guard tag == expected else { throw DLMSError.unexpectedTag(tag, in: "\(context)") }
        var body = content
        var apdu = ReleaseAPDU(reason: nil)
        while body.readableBytes > 0 {
            let (t, c) = try body.readBERElement(context)
            switch t {
            case 0x80: apdu.reason = try decodeBERInteger(c, "release reason")
            case 0xBE: apdu.userInformation = try ACSEUserInformation.decode(c)
            default: apdu.otherElements.append(ACSEElement(tag: t, content: DLMSBytes(c.readableBytesView)))
            }
        }
        return apdu
    }

    func encode(into buffer: inout ByteBuffer, tag: UInt8) {
        buffer.writeBERElement(tag: tag) { b in
            if let reason { b.writeBERElement(tag: 0x80, bytes: encodeBERInteger(reason)) }
            if let userInformation { userInformation.encode(into: &b) }
            for e in otherElements { b.writeBERElement(tag: e.tag, bytes: e.content.bytes) }
        }
    }
}

/// `RLRQ-apdu` (tag 0x62).
public struct RLRQ: Hashable, Sendable, Codable {
    public var release: ReleaseAPDU
    public static let tag: UInt8 = 0x62
    public init(reason: Int? = 0, userInformation: ACSEUserInformation? = nil) { release = ReleaseAPDU(reason: reason, userInformation: userInformation) }
    public static func decode(from buffer: inout ByteBuffer) throws -> RLRQ {
        var r = RLRQ(); r.release = try ReleaseAPDU.decode(from: &buffer, tag: tag, "RLRQ"); return r
    }
    public func encode(into buffer: inout ByteBuffer) { release.encode(into: &buffer, tag: Self.tag) }
}

/// `RLRE-apdu` (tag 0x63).
public struct RLRE: Hashable, Sendable, Codable {
    public var release: ReleaseAPDU
    public static let tag: UInt8 = 0x63
    public init(reason: Int? = 0, userInformation: ACSEUserInformation? = nil) { release = ReleaseAPDU(reason: reason, userInformation: userInformation) }
    public static func decode(from buffer: inout ByteBuffer) throws -> RLRE {
        var r = RLRE(); r.release = try ReleaseAPDU.decode(from: &buffer, tag: tag, "RLRE"); return r
    }
    public func encode(into buffer: inout ByteBuffer) { release.encode(into: &buffer, tag: Self.tag) }
}

extension DLMSObjectIdentifier: Codable {
    public init(from decoder: any Decoder) throws { self.init(try DLMSBytes(from: decoder).bytes) }
    public func encode(to encoder: any Encoder) throws { try DLMSBytes(bytes).encode(to: encoder) }
}
