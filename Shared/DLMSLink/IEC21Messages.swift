import NIOCore

// MARK: - IEC 62056-21 (mode C and E): sign-on, identification, option select

/// The baud rate character of IEC 62056-21 §6.3.14: `0`…`6` for mode C/E (300…19,200 Bd),
/// `A`…`F` for mode B (600…19,200 Bd).
public enum IEC21BaudRate {
    /// The rate a baud rate character stands for, or `nil` for a reserved character.
    public static func rate(for character: UInt8) -> Int? {
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "6"):
            [300, 600, 1200, 2400, 4800, 9600, 19200][Int(character - UInt8(ascii: "0"))]
        case UInt8(ascii: "A")...UInt8(ascii: "F"):
            [600, 1200, 2400, 4800, 9600, 19200][Int(character - UInt8(ascii: "A"))]
        default:
            nil
        }
    }
}

/// The request message `/?address!CR LF` (IEC 62056-21 §6.3.1). Without an address every
/// device on the bus answers (point-to-point optical heads).
public struct IEC21SignOnRequest: Hashable, Sendable {
    /// The device address (up to 32 characters: digits, letters, spaces), or `nil`.
    public let address: String?

    /// - Throws: `DLMSLinkError.invalidParameter` for an address longer than 32 characters or
    ///   containing characters other than digits, ASCII letters and spaces.
    public init(address: String? = nil) throws {
        if let address {
            guard address.utf8.count <= 32,
                  address.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x20 })
            else {
                throw DLMSLinkError.invalidParameter("IEC 62056-21 device address \"\(address)\" is not up to 32 digits, letters or spaces")
            }
        }
        self.address = address
    }

    @discardableResult
    public func encode(into buffer: inout ByteBuffer) -> Int {
        buffer.writeString("/?") + buffer.writeString(address ?? "") + buffer.writeString("!\r\n")
    }
}

/// The identification message `/XXXZ\W…Ident CR LF` (IEC 62056-21 §6.3.2).
public struct IEC21Identification: Hashable, Sendable {
    /// The three-letter manufacturer's identification (FLAG id, e.g. `LGZ`, `ISK`, `EMH`).
    public let manufacturer: String
    /// The baud rate character `Z`.
    public let baudRateCharacter: UInt8
    /// The highest baud rate the device offers, if the character is defined.
    public var baudRate: Int? { IEC21BaudRate.rate(for: baudRateCharacter) }
    /// The characters after each `\` (enhanced capabilities; `2` announces mode E, HDLC).
    public let enhancedCapabilities: [UInt8]
    /// The device identification (up to 16 printable characters).
    public let identification: String

    /// Whether the third manufacturer letter is lower case: the device answers within 20 ms.
    public var respondsWithin20ms: Bool { manufacturer.utf8.last.map { $0 >= 0x61 && $0 <= 0x7A } ?? false }
    /// Whether the device offers mode E (switch to HDLC), i.e. `\2` is present.
    public var supportsModeE: Bool { enhancedCapabilities.contains(UInt8(ascii: "2")) }

    /// The longest identification line accepted before CR LF.
    public static let maximumLength = 64

    /// Decodes an identification message; `nil` while its CR LF has not arrived.
    ///
    /// - Throws: `DLMSLinkError.lengthLimitExceeded` when no CR LF arrives within 64 bytes,
    ///   `malformedFrame` when the line does not start with `/`, the manufacturer is not three
    ///   letters, or the line contains non-printable characters.
    public static func decode(from buffer: inout ByteBuffer) throws -> IEC21Identification? {
        let view = buffer.readableBytesView
        guard let lf = view.firstIndex(of: 0x0A) else {
            guard view.count <= maximumLength else {
                throw DLMSLinkError.lengthLimitExceeded("IEC 62056-21 identification: no CR LF within \(maximumLength) bytes")
            }
            return nil
        }
        let line = Array(view[view.startIndex..<lf])
        guard line.count <= maximumLength else {
            throw DLMSLinkError.lengthLimitExceeded("IEC 62056-21 identification of \(line.count) bytes")
        }
        buffer.moveReaderIndex(forwardBy: line.count + 1)
        guard line.last == 0x0D, line.count >= 6, line[0] == UInt8(ascii: "/") else {
            throw DLMSLinkError.malformedFrame("IEC 62056-21 identification must be /XXXZIdent CR LF")
        }
        let manufacturer = line[1...3]
        guard manufacturer.allSatisfy({ ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) }) else {
            throw DLMSLinkError.malformedFrame("IEC 62056-21 manufacturer \"\(String(decoding: manufacturer, as: UTF8.self))\" is not three letters")
        }
        var index = 5
        var capabilities: [UInt8] = []
        let body = line.dropLast()  // without CR
        while index + 1 < body.count, body[index] == UInt8(ascii: "\\") {
            capabilities.append(body[index + 1])
            index += 2
        }
        let ident = body[index...]
        guard ident.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else {
            throw DLMSLinkError.malformedFrame("IEC 62056-21 identification contains non-printable characters")
        }
        return IEC21Identification(
            manufacturer: String(decoding: manufacturer, as: UTF8.self),
            baudRateCharacter: line[4],
            enhancedCapabilities: capabilities,
            identification: String(decoding: ident, as: UTF8.self)
        )
    }
}

/// The acknowledgement/option select message `ACK V Z Y CR LF` (IEC 62056-21 §6.3.3).
public struct IEC21OptionSelect: Hashable, Sendable {
    /// What the client asks for after the baud rate switch.
    public enum Mode: UInt8, Hashable, Sendable {
        /// `0`: data readout.
        case dataReadout = 0x30
        /// `1`: programming mode.
        case programming = 0x31
        /// `2`: binary mode (mode E: HDLC, IEC 62056-46).
        case binary = 0x32
    }

    /// Protocol control character `V`: `0` normal, `1` secondary, `2` HDLC (mode E).
    public let protocolControl: UInt8
    /// The baud rate character `Z` the client switches to.
    public let baudRateCharacter: UInt8
    public let mode: Mode

    public init(protocolControl: UInt8 = UInt8(ascii: "0"), baudRateCharacter: UInt8, mode: Mode) {
        self.protocolControl = protocolControl
        self.baudRateCharacter = baudRateCharacter
        self.mode = mode
    }

    /// Mode E: switch to HDLC at the offered baud rate (`ACK 2 Z 2 CR LF`, IEC 62056-21 Annex E).
    public static func modeE(baudRateCharacter: UInt8) -> IEC21OptionSelect {
        IEC21OptionSelect(protocolControl: UInt8(ascii: "2"), baudRateCharacter: baudRateCharacter, mode: .binary)
    }

    @discardableResult
    public func encode(into buffer: inout ByteBuffer) -> Int {
        buffer.writeBytes([0x06, protocolControl, baudRateCharacter, mode.rawValue, 0x0D, 0x0A])
    }
}
