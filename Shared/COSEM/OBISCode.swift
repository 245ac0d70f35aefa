import NIOCore

/// A COSEM logical name: the six value groups A–F of an OBIS code (IEC 62056-6-1 §4).
///
/// Parses and prints both the reduced dotted form `1.0.1.8.0.255` and the standard form
/// `1-0:1.8.0*255` (F may be given with `*` or `&`, and may be omitted, meaning 255).
public struct OBISCode: Hashable, Sendable, Comparable, CustomStringConvertible, LosslessStringConvertible {
    public var a: UInt8
    public var b: UInt8
    public var c: UInt8
    public var d: UInt8
    public var e: UInt8
    public var f: UInt8

    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8, _ e: UInt8, _ f: UInt8 = 255) {
        (self.a, self.b, self.c, self.d, self.e, self.f) = (a, b, c, d, e, f)
    }

    /// Creates a code from its six-byte wire form.
    public init(bytes: some Collection<UInt8>) throws {
        guard bytes.count == 6 else {
            throw DLMSError.invalidOBISCode("a logical name has 6 bytes, got \(bytes.count)")
        }
        var i = bytes.makeIterator()
        self.init(i.next()!, i.next()!, i.next()!, i.next()!, i.next()!, i.next()!)
    }

    /// The six-byte wire form.
    public var bytes: [UInt8] { [a, b, c, d, e, f] }

    /// Parses `A.B.C.D.E.F` or `A-B:C.D.E*F` (also `A-B:C.D.E&F`, `A-B:C.D.E`).
    public init(parsing text: some StringProtocol) throws {
        var groups: [UInt8] = []
        groups.reserveCapacity(6)
        var separators: [UInt8] = []
        var current: Int? = nil
        for c in text.utf8 {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                let next = (current ?? 0) * 10 + Int(c - UInt8(ascii: "0"))
                guard next <= 255 else { throw DLMSError.invalidOBISCode("value group above 255 in '\(text)'") }
                current = next
            case UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: ":"), UInt8(ascii: "*"), UInt8(ascii: "&"):
                guard let value = current else { throw DLMSError.invalidOBISCode("empty value group in '\(text)'") }
                groups.append(UInt8(value))
                separators.append(c)
                current = nil
            default:
                throw DLMSError.invalidOBISCode("unexpected character in '\(text)'")
            }
            guard groups.count <= 6 else { throw DLMSError.invalidOBISCode("more than six value groups in '\(text)'") }
        }
        guard let last = current else { throw DLMSError.invalidOBISCode("empty value group in '\(text)'") }
        groups.append(UInt8(last))
        let dotted = separators.allSatisfy { $0 == UInt8(ascii: ".") }
        if dotted {
            guard groups.count == 6 else { throw DLMSError.invalidOBISCode("dotted form needs six value groups: '\(text)'") }
        } else {
            // A-B:C.D.E[*F]
            let s = separators
            let ok = (s.count == 4 || s.count == 5)
                && s[0] == UInt8(ascii: "-") && s[1] == UInt8(ascii: ":")
                && s[2] == UInt8(ascii: ".") && s[3] == UInt8(ascii: ".")
                && (s.count == 4 || s[4] == UInt8(ascii: "*") || s[4] == UInt8(ascii: "&"))
            guard ok else { throw DLMSError.invalidOBISCode("expected A-B:C.D.E*F, got '\(text)'") }
            if groups.count == 5 { groups.append(255) }
        }
        self.init(groups[0], groups[1], groups[2], groups[3], groups[4], groups[5])
    }

    public init?(_ description: String) {
        guard let code = try? OBISCode(parsing: description) else { return nil }
        self = code
    }

    /// The dotted form, `1.0.1.8.0.255`.
    public var description: String { "\(a).\(b).\(c).\(d).\(e).\(f)" }

    /// The standard form, `1-0:1.8.0*255`.
    public var standardDescription: String { "\(a)-\(b):\(c).\(d).\(e)*\(f)" }

    public static func < (l: OBISCode, r: OBISCode) -> Bool { l.bytes.lexicographicallyPrecedes(r.bytes) }

    // MARK: - Wire form

    /// Reads six bytes.
    @inlinable
    public static func decode(from buffer: inout ByteBuffer) throws -> OBISCode {
        guard buffer.readableBytes >= 6 else { throw DLMSError.truncated("logical name needs 6 bytes, have \(buffer.readableBytes)") }
        let high = buffer.readInteger(as: UInt32.self)!
        let low = buffer.readInteger(as: UInt16.self)!
        return OBISCode(UInt8(high >> 24), UInt8((high >> 16) & 0xFF), UInt8((high >> 8) & 0xFF), UInt8(high & 0xFF),
                        UInt8(low >> 8), UInt8(low & 0xFF))
    }

    @inlinable
    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d))
        buffer.writeInteger(UInt16(e) << 8 | UInt16(f))
    }

    // MARK: - Well-known logical names (Blue Book / IEC 62056-6-1)

    /// 0.0.1.0.0.255 — Clock.
    public static let clock = OBISCode(0, 0, 1, 0, 0, 255)
    /// 0.0.40.0.0.255 — Current association (LN).
    public static let currentAssociation = OBISCode(0, 0, 40, 0, 0, 255)
    /// 0.0.41.0.0.255 — SAP assignment.
    public static let sapAssignment = OBISCode(0, 0, 41, 0, 0, 255)
    /// 0.0.42.0.0.255 — COSEM logical device name.
    public static let logicalDeviceName = OBISCode(0, 0, 42, 0, 0, 255)
    /// 0.0.43.0.0.255 — Security setup of the current association.
    public static let securitySetup = OBISCode(0, 0, 43, 0, 0, 255)
    /// 0.0.96.1.0.255 — Meter serial number.
    public static let serialNumber = OBISCode(0, 0, 96, 1, 0, 255)
    /// 0.0.96.3.10.255 — Disconnect control.
    public static let disconnectControl = OBISCode(0, 0, 96, 3, 10, 255)
    /// 0.0.99.98.0.255 — Standard event log.
    public static let standardEventLog = OBISCode(0, 0, 99, 98, 0, 255)
    /// 1.0.99.1.0.255 — Load profile 1.
    public static let loadProfile1 = OBISCode(1, 0, 99, 1, 0, 255)
    /// 1.0.99.2.0.255 — Load profile 2.
    public static let loadProfile2 = OBISCode(1, 0, 99, 2, 0, 255)
    /// 1.0.1.8.0.255 — Active energy import (+A), total.
    public static let activeEnergyImport = OBISCode(1, 0, 1, 8, 0, 255)
    /// 1.0.2.8.0.255 — Active energy export (−A), total.
    public static let activeEnergyExport = OBISCode(1, 0, 2, 8, 0, 255)
}

extension OBISCode: Codable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        try self.init(parsing: text)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
