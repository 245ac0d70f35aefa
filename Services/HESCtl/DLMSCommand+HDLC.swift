import ArgumentParser
import COSEM
import DLMSCodec
import DLMSLink
import NIOCore

/// HDLC frames (IEC 62056-46) in `hesctl dlms decode|encode`, as engineers paste them from
/// serial traces: the frame's addresses, control field and segmentation; an I- or UI-frame's
/// LLC header and the APDU inside it (decoded like any APDU); otherwise the information field
/// as hex (a segment of a longer APDU, SNRM/UA parameters — shown decoded beside it, FRMR data).
/// `encode` rebuilds the frame, its HCS and FCS from these fields: decode then encode gives back
/// the same bytes.
extension DLMSCommand {
    struct HDLCView: Codable {
        struct Address: Codable {
            var upper: UInt16
            var lower: UInt16?
            /// Bytes of the address field: 1, 2 or 4.
            var size: Int
        }

        var destination: Address
        var source: Address
        /// `I`, `RR`, `RNR`, `SNRM`, `DISC`, `UA`, `DM`, `FRMR` or `UI`.
        var control: String
        var sendSequence: UInt8?
        var receiveSequence: UInt8?
        var pollFinal: Bool
        /// More segments of the same APDU follow.
        var segmented: Bool
        /// The LLC header in hex (`E6E600` client → meter, `E6E700` meter → client) when the
        /// information field is an LLC header and a whole APDU (then in the document's `apdu`).
        var llc: String?
        /// The information field in hex when it is not an LLC header and a whole APDU.
        var information: String?
        /// SNRM/UA: the negotiated parameters in `information`, decoded (not used by `encode`).
        var parameters: Parameters?

        struct Parameters: Codable {
            var maximumInformationLengthTransmit: Int
            var maximumInformationLengthReceive: Int
            var windowSizeTransmit: Int
            var windowSizeReceive: Int
        }
    }

    /// Whether `buffer` looks like one HDLC frame: a flag at both ends and the format type 0xA.
    static func isHDLCFrame(_ buffer: ByteBuffer) -> Bool {
        guard buffer.readableBytes >= 9, buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) == HDLCFrame.flag,
              buffer.getInteger(at: buffer.writerIndex - 1, as: UInt8.self) == HDLCFrame.flag,
              let format = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self) else { return false }
        return format >> 4 == 0xA
    }

    static func decodeHDLC(_ input: ByteBuffer) throws -> Document {
        var buffer = input
        let frame = try HDLCFrame.decode(from: &buffer)
        guard buffer.readableBytes == 0 else {
            throw ValidationError("\(buffer.readableBytes) byte(s) after the HDLC frame: give one frame at a time")
        }
        func address(_ address: HDLCAddress) -> HDLCView.Address {
            HDLCView.Address(upper: address.upper, lower: address.lower, size: address.size.rawValue)
        }
        var view = HDLCView(destination: address(frame.destination), source: address(frame.source), control: "", pollFinal: frame.control.pollFinal,
                            segmented: frame.segmented)
        switch frame.control {
        case .information(let send, let receive, _): view.control = "I"; view.sendSequence = send; view.receiveSequence = receive
        case .receiveReady(let receive, _): view.control = "RR"; view.receiveSequence = receive
        case .receiveNotReady(let receive, _): view.control = "RNR"; view.receiveSequence = receive
        case .setNormalResponseMode: view.control = "SNRM"
        case .disconnect: view.control = "DISC"
        case .unnumberedAcknowledge: view.control = "UA"
        case .disconnectedMode: view.control = "DM"
        case .frameReject: view.control = "FRMR"
        case .unnumberedInformation: view.control = "UI"
        }
        var document = Document()
        var information = frame.information
        if view.control == "I" || view.control == "UI", !frame.segmented, information.readableBytes > HDLCLLCHeader.length,
           let header = try? HDLCLLCHeader.decode(from: &information), let apdu = try? DLMSAPDU(exactly: information) {
            view.llc = Hex.encode([header.destinationLSAP, header.sourceLSAP, header.quality])
            document.apdu = apdu
        } else if frame.information.readableBytes > 0 {
            view.information = Hex.encode(Array(frame.information.readableBytesView))
            if view.control == "SNRM" || view.control == "UA" {
                var parameters = frame.information
                if let decoded = try? HDLCParameters.decode(from: &parameters) {
                    view.parameters = .init(maximumInformationLengthTransmit: decoded.maximumInformationLengthTransmit,
                                            maximumInformationLengthReceive: decoded.maximumInformationLengthReceive,
                                            windowSizeTransmit: decoded.windowSizeTransmit, windowSizeReceive: decoded.windowSizeReceive)
                }
            }
        }
        document.hdlc = view
        return document
    }

    static func encodeHDLC(_ view: HDLCView, apdu: DLMSAPDU?) throws -> ByteBuffer {
        func address(_ address: HDLCView.Address, _ name: String) throws -> HDLCAddress {
            guard let size = HDLCAddress.Size(rawValue: address.size) else { throw ValidationError("hdlc.\(name).size must be 1, 2 or 4") }
            do { return try HDLCAddress(upper: address.upper, lower: address.lower, size: size) } catch {
                throw ValidationError("hdlc.\(name): \(error)")
            }
        }
        let receive = view.receiveSequence ?? 0, send = view.sendSequence ?? 0
        guard receive < 8, send < 8 else { throw ValidationError("hdlc sequence numbers are 0…7") }
        let control: HDLCControl
        switch view.control {
        case "I": control = .information(sendSequence: send, receiveSequence: receive, pollFinal: view.pollFinal)
        case "RR": control = .receiveReady(receiveSequence: receive, pollFinal: view.pollFinal)
        case "RNR": control = .receiveNotReady(receiveSequence: receive, pollFinal: view.pollFinal)
        case "SNRM": control = .setNormalResponseMode(pollFinal: view.pollFinal)
        case "DISC": control = .disconnect(pollFinal: view.pollFinal)
        case "UA": control = .unnumberedAcknowledge(pollFinal: view.pollFinal)
        case "DM": control = .disconnectedMode(pollFinal: view.pollFinal)
        case "FRMR": control = .frameReject(pollFinal: view.pollFinal)
        case "UI": control = .unnumberedInformation(pollFinal: view.pollFinal)
        default: throw ValidationError("hdlc.control '\(view.control)' is not I, RR, RNR, SNRM, DISC, UA, DM, FRMR or UI")
        }
        var information = ByteBuffer()
        if let llc = view.llc {
            guard let bytes = Hex.decode(llc), bytes.count == HDLCLLCHeader.length else { throw ValidationError("hdlc.llc is 3 bytes of hex") }
            guard let apdu else { throw ValidationError("hdlc.llc needs the document's apdu") }
            information.writeBytes(bytes)
            var body = apdu.encoded
            information.writeBuffer(&body)
        } else if let hex = view.information {
            guard let bytes = Hex.decode(hex) else { throw ValidationError("hdlc.information is not hex") }
            information.writeBytes(bytes)
        }
        let frame = HDLCFrame(destination: try address(view.destination, "destination"), source: try address(view.source, "source"),
                              control: control, segmented: view.segmented, information: information)
        guard frame.frameLength <= HDLCFrame.maximumFrameLength else {
            throw ValidationError("the frame would be \(frame.frameLength) bytes; HDLC frames hold at most \(HDLCFrame.maximumFrameLength)")
        }
        return frame.encoded
    }
}
