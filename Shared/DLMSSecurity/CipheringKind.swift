/// Which ciphered APDU carries a protected xDLMS APDU and which key protects it
/// (Green Book 9.2.7.2.1 and 9.3.3, Table 36).
public enum CipheringKind: Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// glo-xxx service-specific APDU (tag derived from the plain APDU), global unicast key.
    case global
    /// ded-xxx service-specific APDU, dedicated key.
    case dedicated
    /// general-glo-ciphering (0xDB) with the sender's system title, global unicast key.
    case generalGlobal
    /// general-ded-ciphering (0xDC) with the sender's system title, dedicated key.
    case generalDedicated

    public static let generalGlobalTag: UInt8 = 0xDB
    public static let generalDedicatedTag: UInt8 = 0xDC

    /// Whether the dedicated key (rather than the global one) protects this kind.
    public var usesDedicatedKey: Bool { self == .dedicated || self == .generalDedicated }
    /// Whether the APDU carries the sender's system title.
    public var carriesSystemTitle: Bool { self == .generalGlobal || self == .generalDedicated }

    /// The kind of a ciphered APDU tag; `nil` for a tag that is not one.
    public init?(cipheredTag tag: UInt8) {
        switch tag {
        case Self.generalGlobalTag: self = .generalGlobal
        case Self.generalDedicatedTag: self = .generalDedicated
        default:
            guard let entry = Self.table.first(where: { $0.global == tag || $0.dedicated == tag }) else { return nil }
            self = entry.global == tag ? .global : .dedicated
        }
    }

    /// The ciphered APDU tag that carries a plain APDU with `plainTag`; `nil` when this kind has no
    /// service-specific form for it (data-notification, exception-response, access: use the
    /// general kinds, which carry any APDU).
    public func cipheredTag(forPlainTag plainTag: UInt8) -> UInt8? {
        switch self {
        case .generalGlobal: Self.generalGlobalTag
        case .generalDedicated: Self.generalDedicatedTag
        case .global: Self.table.first { $0.plain == plainTag }?.global
        case .dedicated: Self.table.first { $0.plain == plainTag }?.dedicated
        }
    }

    /// The plain APDU tag a service-specific ciphered tag must contain; `nil` for general
    /// ciphering (any APDU) and unknown tags.
    public static func plainTag(forCipheredTag tag: UInt8) -> UInt8? {
        table.first { $0.global == tag || $0.dedicated == tag }?.plain
    }

    public var description: String {
        switch self {
        case .global: "glo"
        case .dedicated: "ded"
        case .generalGlobal: "general-glo"
        case .generalDedicated: "general-ded"
        }
    }

    /// Green Book 9.5 (xDLMS APDUs, ASN.1): plain tag, glo- tag, ded- tag.
    static let table: [(plain: UInt8, global: UInt8, dedicated: UInt8)] = [
        (0x01, 0x21, 0x41),  // initiate-request
        (0x05, 0x25, 0x45),  // read-request (SN)
        (0x06, 0x26, 0x46),  // write-request (SN)
        (0x08, 0x28, 0x48),  // initiate-response
        (0x0C, 0x2C, 0x4C),  // read-response (SN)
        (0x0D, 0x2D, 0x4D),  // write-response (SN)
        (0x0E, 0x2E, 0x4E),  // confirmed-service-error
        (0x16, 0x36, 0x56),  // unconfirmed-write-request (SN)
        (0x18, 0x38, 0x58),  // information-report-request (SN)
        (0xC0, 0xC8, 0xD0),  // get-request
        (0xC1, 0xC9, 0xD1),  // set-request
        (0xC2, 0xCA, 0xD2),  // event-notification-request
        (0xC3, 0xCB, 0xD3),  // action-request
        (0xC4, 0xCC, 0xD4),  // get-response
        (0xC5, 0xCD, 0xD5),  // set-response
        (0xC7, 0xCF, 0xD7),  // action-response
    ]
}
