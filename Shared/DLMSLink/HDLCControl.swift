import COSEM

/// The HDLC control field: frame type, sequence numbers and the poll/final bit.
///
/// IEC 62056-46 §6.4.3 (ISO/IEC 13239, modulo 8). Bit 4 is the poll bit in commands and the
/// final bit in responses; `pollFinal` stands for either.
public enum HDLCControl: Hashable, Sendable, CustomStringConvertible {
    /// Information frame: `RRR P SSS 0`.
    case information(sendSequence: UInt8, receiveSequence: UInt8, pollFinal: Bool)
    /// Receive ready: `RRR P 0001`.
    case receiveReady(receiveSequence: UInt8, pollFinal: Bool)
    /// Receive not ready: `RRR P 0101`.
    case receiveNotReady(receiveSequence: UInt8, pollFinal: Bool)
    /// Set normal response mode: `100P 0011` (0x93 with P set).
    case setNormalResponseMode(pollFinal: Bool)
    /// Disconnect: `010P 0011` (0x53).
    case disconnect(pollFinal: Bool)
    /// Unnumbered acknowledge: `011F 0011` (0x73).
    case unnumberedAcknowledge(pollFinal: Bool)
    /// Disconnected mode: `000F 1111` (0x1F).
    case disconnectedMode(pollFinal: Bool)
    /// Frame reject: `100F 0111` (0x97).
    case frameReject(pollFinal: Bool)
    /// Unnumbered information: `000P 0011` (0x13).
    case unnumberedInformation(pollFinal: Bool)

    /// The control byte.
    public var byte: UInt8 {
        func pf(_ flag: Bool) -> UInt8 { flag ? 0x10 : 0 }
        switch self {
        case let .information(ns, nr, p): return (nr & 7) << 5 | pf(p) | (ns & 7) << 1
        case let .receiveReady(nr, p): return (nr & 7) << 5 | pf(p) | 0x01
        case let .receiveNotReady(nr, p): return (nr & 7) << 5 | pf(p) | 0x05
        case let .setNormalResponseMode(p): return 0x83 | pf(p)
        case let .disconnect(p): return 0x43 | pf(p)
        case let .unnumberedAcknowledge(p): return 0x63 | pf(p)
        case let .disconnectedMode(p): return 0x0F | pf(p)
        case let .frameReject(p): return 0x87 | pf(p)
        case let .unnumberedInformation(p): return 0x03 | pf(p)
        }
    }

    /// Decodes a control byte.
    ///
    /// - Throws: `DLMSLinkError.unsupported` for frame types DLMS does not use (REJ, SREJ, and
    ///   the other unnumbered commands of ISO/IEC 13239).
    public init(byte: UInt8) throws {
        let p = byte & 0x10 != 0
        if byte & 0x01 == 0 {
            self = .information(sendSequence: (byte >> 1) & 7, receiveSequence: byte >> 5, pollFinal: p)
            return
        }
        switch byte & 0x0F {
        case 0x01:
            self = .receiveReady(receiveSequence: byte >> 5, pollFinal: p)
            return
        case 0x05:
            self = .receiveNotReady(receiveSequence: byte >> 5, pollFinal: p)
            return
        default:
            break
        }
        switch byte & 0xEF {
        case 0x83: self = .setNormalResponseMode(pollFinal: p)
        case 0x43: self = .disconnect(pollFinal: p)
        case 0x63: self = .unnumberedAcknowledge(pollFinal: p)
        case 0x0F: self = .disconnectedMode(pollFinal: p)
        case 0x87: self = .frameReject(pollFinal: p)
        case 0x03: self = .unnumberedInformation(pollFinal: p)
        default:
            throw DLMSLinkError.unsupported("HDLC control field 0x\(Hex.encode(byte)) is not used by DLMS")
        }
    }

    /// The poll/final bit.
    public var pollFinal: Bool { byte & 0x10 != 0 }

    /// Whether the frame type may carry an information field (I, UI, SNRM, UA, FRMR; DM and DISC
    /// may carry parameters too in some profiles, so only RR/RNR are excluded).
    var allowsInformation: Bool {
        switch self {
        case .receiveReady, .receiveNotReady: false
        default: true
        }
    }

    public var description: String {
        switch self {
        case let .information(ns, nr, p): "I(N(S)=\(ns), N(R)=\(nr)\(p ? ", P/F" : ""))"
        case let .receiveReady(nr, p): "RR(N(R)=\(nr)\(p ? ", P/F" : ""))"
        case let .receiveNotReady(nr, p): "RNR(N(R)=\(nr)\(p ? ", P/F" : ""))"
        case .setNormalResponseMode: "SNRM"
        case .disconnect: "DISC"
        case .unnumberedAcknowledge: "UA"
        case .disconnectedMode: "DM"
        case .frameReject: "FRMR"
        case .unnumberedInformation: "UI"
        }
    }
}
