import COSEM
import NIOCore

/// `Data-Notification` (Green Book 9.3.6, tag 0x0F): unsolicited push data.
public struct DataNotification: Hashable, Sendable, Codable {
    /// `Long-Invoke-Id-And-Priority`.
    public var longInvokeIDAndPriority: UInt32
    /// The optional time stamp: empty, or the octet-string form of a date-time (12), date (5) or time (4).
    public var dateTime: DLMSBytes
    public var body: DLMSData

    public static let tag: UInt8 = 0x0F

    public init(longInvokeIDAndPriority: UInt32, dateTime: DLMSBytes = [], body: DLMSData) {
        self.longInvokeIDAndPriority = longInvokeIDAndPriority
        self.dateTime = dateTime
        self.body = body
    }

    public init(longInvokeIDAndPriority: UInt32, dateTime: CosemDateTime, body: DLMSData) {
        self.init(longInvokeIDAndPriority: longInvokeIDAndPriority, dateTime: DLMSBytes(dateTime.octetString.readableBytesView), body: body)
    }

    /// The time stamp as a date-time, when it has 12 bytes.
    public var cosemDateTime: CosemDateTime? {
        dateTime.count == 12 ? try? CosemDateTime(octetString: ByteBuffer(dlmsBytes: dateTime.bytes)) : nil
    }

    @inlinable
    public static func decode(from buffer: inout ByteBuffer) throws -> DataNotification {
        try decode(from: &buffer, limits: .default)
    }

    public static func decode(from buffer: inout ByteBuffer, limits: DLMSDecodingLimits) throws -> DataNotification {
        let tag: UInt8 = try buffer.readDLMSInteger("data-notification tag")
        guard tag == Self.tag else { throw DLMSError.unexpectedTag(tag, in: "data-notification") }
        let id: UInt32 = try buffer.readDLMSInteger("long-invoke-id-and-priority")
        let length = try buffer.readAXDRLength(limit: 12, "date-time length")
        let time = DLMSBytes(buffer.readBytes(length: length)!)
        return DataNotification(longInvokeIDAndPriority: id, dateTime: time, body: try DLMSData.decode(from: &buffer, limits: limits))
    }

    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(Self.tag)
        buffer.writeInteger(longInvokeIDAndPriority)
        buffer.writeAXDROctetString(dateTime.bytes)
        body.encode(into: &buffer)
    }
}

/// `Event-Notification-Request` (Green Book 9.3.6, tag 0xC2): an attribute value the server reports
/// on its own.
public struct EventNotificationRequest: Hashable, Sendable, Codable {
    public var time: DLMSBytes?
    public var attribute: CosemAttributeDescriptor
    public var value: DLMSData

    public static let tag: UInt8 = 0xC2

    public init(time: DLMSBytes? = nil, attribute: CosemAttributeDescriptor, value: DLMSData) {
        self.time = time
        self.attribute = attribute
        self.value = value
    }

    @inlinable
    public static func decode(from buffer: inout ByteBuffer) throws -> EventNotificationRequest {
        try decode(from: &buffer, limits: .default)
    }

    public static func decode(from buffer: inout ByteBuffer, limits: DLMSDecodingLimits) throws -> EventNotificationRequest {
        let tag: UInt8 = try buffer.readDLMSInteger("event-notification tag")
        guard tag == Self.tag else { throw DLMSError.unexpectedTag(tag, in: "event-notification-request") }
        let present: UInt8 = try buffer.readDLMSInteger("time presence")
        var time: DLMSBytes? = nil
        switch present {
        case 0: break
        case 1:
            let length = try buffer.readAXDRLength(limit: 12, "time length")
            time = DLMSBytes(buffer.readBytes(length: length)!)
        default: throw DLMSError.invalidValue("time presence flag is \(present)")
        }
        let attribute = try CosemAttributeDescriptor.decode(from: &buffer)
        return EventNotificationRequest(time: time, attribute: attribute, value: try DLMSData.decode(from: &buffer, limits: limits))
    }

    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(Self.tag)
        if let time {
            buffer.writeInteger(UInt8(1))
            buffer.writeAXDROctetString(time.bytes)
        } else {
            buffer.writeInteger(UInt8(0))
        }
        attribute.encode(into: &buffer)
        value.encode(into: &buffer)
    }
}

/// `General-Block-Transfer` (Green Book 9.3.5, tag 0xE0).
public struct GeneralBlockTransfer: Hashable, Sendable, Codable {
    public var lastBlock: Bool
    public var streaming: Bool
    /// Window size, 0...63.
    public var window: UInt8
    public var blockNumber: UInt16
    public var blockNumberAck: UInt16
    public var blockData: DLMSBytes

    public static let tag: UInt8 = 0xE0

    public init(lastBlock: Bool, streaming: Bool = false, window: UInt8 = 1, blockNumber: UInt16, blockNumberAck: UInt16, blockData: DLMSBytes) {
        self.lastBlock = lastBlock
        self.streaming = streaming
        self.window = window & 0x3F
        self.blockNumber = blockNumber
        self.blockNumberAck = blockNumberAck
        self.blockData = blockData
    }

    @inlinable
    public static func decode(from buffer: inout ByteBuffer) throws -> GeneralBlockTransfer {
        try decode(from: &buffer, limits: .default)
    }

    public static func decode(from buffer: inout ByteBuffer, limits: DLMSDecodingLimits) throws -> GeneralBlockTransfer {
        let tag: UInt8 = try buffer.readDLMSInteger("general-block-transfer tag")
        guard tag == Self.tag else { throw DLMSError.unexpectedTag(tag, in: "general-block-transfer") }
        let control: UInt8 = try buffer.readDLMSInteger("block-control")
        let number: UInt16 = try buffer.readDLMSInteger("block-number")
        let ack: UInt16 = try buffer.readDLMSInteger("block-number-ack")
        let length = try buffer.readAXDRLength(limit: limits.maxByteLength, "block-data length")
        return GeneralBlockTransfer(lastBlock: control & 0x80 != 0, streaming: control & 0x40 != 0, window: control & 0x3F,
                                    blockNumber: number, blockNumberAck: ack, blockData: DLMSBytes(buffer.readBytes(length: length)!))
    }

    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(Self.tag)
        buffer.writeInteger((lastBlock ? 0x80 : 0) | (streaming ? 0x40 : 0) | (window & 0x3F) as UInt8)
        buffer.writeInteger(blockNumber)
        buffer.writeInteger(blockNumberAck)
        buffer.writeAXDROctetString(blockData.bytes)
    }
}
