import ArgumentParser
import COSEM
import DLMSCodec
import Foundation
import NIOCore

/// `hesctl dlms decode|encode`: turn an APDU (or a wrapper frame, or a bare A-XDR value) into
/// readable JSON and back; `decode` then `encode` returns the same bytes.
struct DLMSCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlms",
        abstract: "Inspect DLMS/COSEM APDUs: decode hex to JSON, encode JSON to hex.",
        subcommands: [Decode.self, Encode.self])

    /// The JSON document both subcommands share.
    struct Document: Codable {
        /// Present when the input was an IEC 62056-47 wrapper frame (`00 01 src dst len`).
        var wrapper: WrapperHeader?
        var apdu: DLMSAPDU?
        /// A bare A-XDR value, with `--data`.
        var data: DLMSData?
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

        func run() throws {
            let text = hex == "-" ? String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self) : hex
            let document = try DLMSCommand.decode(try ByteBuffer(dlmsHex: text), asData: data)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(document), as: UTF8.self))
        }
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
