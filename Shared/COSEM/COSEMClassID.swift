import NIOCore

/// A COSEM interface class identifier (Blue Book §4.1.3, `long-unsigned`).
public struct COSEMClassID: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public init(_ rawValue: UInt16) { self.rawValue = rawValue }
    public init(integerLiteral value: UInt16) { self.rawValue = value }

    public static let data: COSEMClassID = 1
    public static let register: COSEMClassID = 3
    public static let extendedRegister: COSEMClassID = 4
    public static let demandRegister: COSEMClassID = 5
    public static let registerActivation: COSEMClassID = 6
    public static let profileGeneric: COSEMClassID = 7
    public static let clock: COSEMClassID = 8
    public static let scriptTable: COSEMClassID = 9
    public static let schedule: COSEMClassID = 10
    public static let specialDaysTable: COSEMClassID = 11
    public static let associationSN: COSEMClassID = 12
    public static let associationLN: COSEMClassID = 15
    public static let sapAssignment: COSEMClassID = 17
    public static let imageTransfer: COSEMClassID = 18
    public static let iecLocalPortSetup: COSEMClassID = 19
    public static let activityCalendar: COSEMClassID = 20
    public static let registerMonitor: COSEMClassID = 21
    public static let singleActionSchedule: COSEMClassID = 22
    public static let iecHDLCSetup: COSEMClassID = 23
    public static let tcpUDPSetup: COSEMClassID = 41
    public static let ipv4Setup: COSEMClassID = 42
    public static let pushSetup: COSEMClassID = 40
    public static let securitySetup: COSEMClassID = 64
    public static let disconnectControl: COSEMClassID = 70
    public static let limiter: COSEMClassID = 71

    public var name: String? {
        switch rawValue {
        case 1: "Data"
        case 3: "Register"
        case 4: "Extended register"
        case 5: "Demand register"
        case 6: "Register activation"
        case 7: "Profile generic"
        case 8: "Clock"
        case 9: "Script table"
        case 10: "Schedule"
        case 11: "Special days table"
        case 12: "Association SN"
        case 15: "Association LN"
        case 17: "SAP assignment"
        case 18: "Image transfer"
        case 19: "IEC local port setup"
        case 20: "Activity calendar"
        case 21: "Register monitor"
        case 22: "Single action schedule"
        case 23: "IEC HDLC setup"
        case 40: "Push setup"
        case 41: "TCP-UDP setup"
        case 42: "IPv4 setup"
        case 64: "Security setup"
        case 70: "Disconnect control"
        case 71: "Limiter"
        default: nil
        }
    }

    public var description: String { name.map { "\(rawValue) (\($0))" } ?? "\(rawValue)" }

    public init(from decoder: any Decoder) throws { self.rawValue = try decoder.singleValueContainer().decode(UInt16.self) }
    public func encode(to encoder: any Encoder) throws { var c = encoder.singleValueContainer(); try c.encode(rawValue) }
}

/// Identifies one attribute of one object (Green Book 9.3.6, `Cosem-Attribute-Descriptor`).
public struct CosemAttributeDescriptor: Hashable, Sendable, Codable, CustomStringConvertible {
    public var classID: COSEMClassID
    public var instance: OBISCode
    public var attribute: Int8

    public init(classID: COSEMClassID, instance: OBISCode, attribute: Int8) {
        self.classID = classID
        self.instance = instance
        self.attribute = attribute
    }

    @inlinable
    public static func decode(from buffer: inout ByteBuffer) throws -> CosemAttributeDescriptor {
        guard buffer.readableBytes >= 9 else { throw DLMSError.truncated("attribute descriptor needs 9 bytes, have \(buffer.readableBytes)") }
        let classID = buffer.readInteger(as: UInt16.self)!
        let instance = try OBISCode.decode(from: &buffer)
        let attribute = buffer.readInteger(as: Int8.self)!
        return CosemAttributeDescriptor(classID: COSEMClassID(rawValue: classID), instance: instance, attribute: attribute)
    }

    @inlinable
    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(classID.rawValue)
        instance.encode(into: &buffer)
        buffer.writeInteger(attribute)
    }

    public var description: String { "\(classID.rawValue)/\(instance)/\(attribute)" }
}

/// Identifies one method of one object (Green Book 9.3.6, `Cosem-Method-Descriptor`).
public struct CosemMethodDescriptor: Hashable, Sendable, Codable, CustomStringConvertible {
    public var classID: COSEMClassID
    public var instance: OBISCode
    public var method: Int8

    public init(classID: COSEMClassID, instance: OBISCode, method: Int8) {
        self.classID = classID
        self.instance = instance
        self.method = method
    }

    @inlinable
    public static func decode(from buffer: inout ByteBuffer) throws -> CosemMethodDescriptor {
        let a = try CosemAttributeDescriptor.decode(from: &buffer)
        return CosemMethodDescriptor(classID: a.classID, instance: a.instance, method: a.attribute)
    }

    @inlinable
    public func encode(into buffer: inout ByteBuffer) {
        CosemAttributeDescriptor(classID: classID, instance: instance, attribute: method).encode(into: &buffer)
    }

    public var description: String { "\(classID.rawValue)/\(instance)/m\(method)" }
}
