import ArgumentParser
import COSEM
import DLMSCodec
import DLMSSecurity
import Foundation
import NIOCore

/// `hesctl dlms decode|encode`: turn an APDU (or a wrapper frame, an HDLC frame, or a bare A-XDR
/// value) into readable JSON and back; `decode` then `encode` returns the same bytes.
struct DLMSCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlms",
        abstract: "Inspect DLMS/COSEM APDUs: decode hex to JSON, encode JSON to hex.",
        subcommands: [Decode.self, Encode.self])

    /// The JSON document both subcommands share.
    struct Document: Codable {
        /// Present when the input was an IEC 62056-47 wrapper frame (`00 01 src dst len`).
        var wrapper: WrapperHeader?
        /// Present when the input was an IEC 62056-46 HDLC frame (`7E … 7E`).
        var hdlc: HDLCView?
        var apdu: DLMSAPDU?
        /// A bare A-XDR value, with `--data`.
        var data: DLMSData?
        /// The plain APDU inside a ciphered one (or inside an AARQ/AARE's ciphered
        /// user-information), when `decode` was given the keys. `encode` ignores it.
        var deciphered: DLMSAPDU?
    }

    struct WrapperHeader: Codable {
        var source: UInt16
        var destination: UInt16
    }

    struct Decode: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Decode hexadecimal bytes (or '-' for standard input) to JSON.")

        @Argument(help: "The bytes in hexadecimal (spaces allowed), or '-' to read them from standard input.")
        var hex: String

        @Flag(help: "Decode a bare A-XDR value instead of an APDU.")
        var data = false

        /// With keys, a ciphered APDU is deciphered too.
        @OptionGroup var cipherKeys: CipherKeyOptions
        @Option(name: .customLong("system-title"), help: "The sender's system title in hex (glo-/ded- APDUs carry none; AARQ/AARE and general ciphering do).")
        var systemTitle: String?

        func run() throws {
            let text = hex == "-" ? String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self) : hex
            var document = try DLMSCommand.decode(try ByteBuffer(dlmsHex: text), asData: data)
            if let keys = try cipherKeys.keys() {
                document.deciphered = try DLMSCommand.decipher(document.apdu, keys: keys, senderTitle: try systemTitle.map { try SystemTitle(hex: $0) })
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(document), as: UTF8.self))
        }
    }

    /// The plain APDU inside `apdu`: a ciphered service APDU (the sender's title from the flag or
    /// the APDU itself), or the ciphered InitiateRequest/Response of an AARQ/AARE (the title from
    /// its calling/responding AP title). The protection is verified; any policy is accepted.
    static func decipher(_ apdu: DLMSAPDU?, keys: CipherKeyOptions.Keys, senderTitle: SystemTitle?) throws -> DLMSAPDU? {
        let ciphered: CipheredAPDU
        var title = senderTitle
        switch apdu {
        case .ciphered(let c)?:
            ciphered = c
        case .aarq(let aarq)?:
            guard case .ciphered(let c)? = aarq.userInformation else { return nil }
            ciphered = c
            title = title ?? aarq.callingAPTitle.flatMap { try? SystemTitle($0) }
        case .aare(let aare)?:
            guard case .ciphered(let c)? = aare.userInformation else { return nil }
            ciphered = c
            title = title ?? aare.respondingAPTitle.flatMap { try? SystemTitle($0) }
        default:
            return nil
        }
        if let own = ciphered.systemTitle { title = try SystemTitle(own) }
        guard let title else { throw ValidationError("a glo-/ded- ciphered APDU names no sender: give --system-title") }
        // The receiver's side of the cipher: its own title does not matter for deciphering.
        let cipher = DLMSCipher(systemTitle: title, peerSystemTitle: title, blockCipherKey: keys.blockCipherKey,
                                authenticationKey: keys.authenticationKey, dedicatedKey: keys.dedicatedKey,
                                policy: SecurityPolicy(requiresAuthentication: false, requiresEncryption: false))
        return try DLMSAPDU(exactly: ByteBuffer(bytes: try cipher.unprotect(ciphered, expectedSystemTitle: title)))
    }

    struct Encode: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Encode JSON (as printed by 'decode'; '-' reads standard input) to hexadecimal.")

        @Argument(help: "The JSON document, or '-' to read it from standard input.")
        var json: String

        func run() throws {
            let data = json == "-" ? FileHandle.standardInput.readDataToEndOfFile() : Data(json.utf8)
            let document = try JSONDecoder().decode(Document.self, from: data)
            print(try DLMSCommand.encode(document).dlmsHex)
        }
    }

    static func decode(_ input: ByteBuffer, asData: Bool) throws -> Document {
        var buffer = input
        if asData {
            let value = try DLMSData.decode(from: &buffer)
            try buffer.expectFullyConsumed("A-XDR value")
            return Document(data: value)
        }
        if isHDLCFrame(buffer) { return try decodeHDLC(buffer) }
        var wrapper: WrapperHeader? = nil
        if buffer.readableBytes >= 8, buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) == 0x0001,
           let length = buffer.getInteger(at: buffer.readerIndex + 6, as: UInt16.self), Int(length) == buffer.readableBytes - 8 {
            buffer.moveReaderIndex(forwardBy: 2)
            wrapper = WrapperHeader(source: buffer.readInteger()!, destination: buffer.readInteger()!)
            buffer.moveReaderIndex(forwardBy: 2)
        }
        return Document(wrapper: wrapper, apdu: try DLMSAPDU(exactly: buffer))
    }

    static func encode(_ document: Document) throws -> ByteBuffer {
        var out = ByteBufferAllocator().buffer(capacity: 256)
        if let value = document.data {
            value.encode(into: &out)
            return out
        }
        if let hdlc = document.hdlc { return try encodeHDLC(hdlc, apdu: document.apdu) }
        guard let apdu = document.apdu else { throw ValidationError("the document has neither 'apdu' nor 'data'") }
        let body = apdu.encoded
        if let wrapper = document.wrapper {
            out.writeInteger(UInt16(1))
            out.writeInteger(wrapper.source)
            out.writeInteger(wrapper.destination)
            out.writeInteger(UInt16(body.readableBytes))
        }
        var copy = body
        out.writeBuffer(&copy)
        return out
    }
}
