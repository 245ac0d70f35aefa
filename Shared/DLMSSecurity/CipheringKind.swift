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
            guard let plain = Self.plainTag(forCipheredTag: tag), let tags = Self.serviceSpecificTags(forPlainTag: plain) else { return nil }
            self = tags.global == tag ? .global : .dedicated
        }
    }

    /// The ciphered APDU tag that carries a plain APDU with `plainTag`; `nil` when this kind has no
    /// service-specific form for it (data-notification, exception-response, access: use the
    /// general kinds, which carry any APDU).
    public func cipheredTag(forPlainTag plainTag: UInt8) -> UInt8? {
        switch self {
        case .generalGlobal: Self.generalGlobalTag
        case .generalDedicated: Self.generalDedicatedTag
        case .global: Self.serviceSpecificTags(forPlainTag: plainTag)?.global
        case .dedicated: Self.serviceSpecificTags(forPlainTag: plainTag)?.dedicated
        }
    }

    /// The plain APDU tag a service-specific ciphered tag must contain; `nil` for general
    /// ciphering (any APDU) and unknown tags.
    public static func plainTag(forCipheredTag tag: UInt8) -> UInt8? {
        switch tag {
        case 0x21, 0x25, 0x26, 0x28, 0x2C, 0x2D, 0x2E, 0x36, 0x38: tag - 0x20
        case 0x41, 0x45, 0x46, 0x48, 0x4C, 0x4D, 0x4E, 0x56, 0x58: tag - 0x40
        case 0xC8...0xCD, 0xCF: tag - 0x08
        case 0xD0...0xD5, 0xD7: tag - 0x10
        default: nil
        }
    }

    public var description: String {
        switch self {
        case .global: "glo"
        case .dedicated: "ded"
        case .generalGlobal: "general-glo"
        case .generalDedicated: "general-ded"
        }
    }

    /// Green Book 9.5 (xDLMS APDUs, ASN.1): the glo- and ded- tags of a plain APDU tag. A switch
    /// (each ciphered APDU asks twice): initiate-request 01, read-request 05, write-request 06,
    /// initiate-response 08, read-response 0C, write-response 0D, confirmed-service-error 0E,
    /// unconfirmed-write-request 16 and information-report-request 18 add 20/40; get-request C0,
    /// set-request C1, event-notification-request C2, action-request C3, get-response C4,
    /// set-response C5 and action-response C7 add 08/10.
    static func serviceSpecificTags(forPlainTag tag: UInt8) -> (global: UInt8, dedicated: UInt8)? {
        switch tag {
        case 0x01, 0x05, 0x06, 0x08, 0x0C, 0x0D, 0x0E, 0x16, 0x18: (tag + 0x20, tag + 0x40)
        case 0xC0...0xC5, 0xC7: (tag + 0x08, tag + 0x10)
        default: nil
        }
    }
}
