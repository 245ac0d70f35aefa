import NIOCore

/// One capture object of a profile generic (Blue Book §4.3.6, `capture_object_definition`);
/// also the restricting object and the selected values of a range descriptor.
public struct CaptureObjectDefinition: Hashable, Sendable, Codable, CustomStringConvertible {
    public var classID: COSEMClassID
    public var logicalName: OBISCode
    public var attributeIndex: Int8
    /// 0 selects the whole attribute; n > 0 selects element n of an array or structure attribute.
    public var dataIndex: UInt16

    public init(classID: COSEMClassID, logicalName: OBISCode, attributeIndex: Int8, dataIndex: UInt16 = 0) {
        self.classID = classID
        self.logicalName = logicalName
        self.attributeIndex = attributeIndex
        self.dataIndex = dataIndex
    }

    /// `structure { long-unsigned, octet-string, integer, long-unsigned }`
    public var data: DLMSData {
        .structure([.uint16(classID.rawValue), .octetString(obis: logicalName), .int8(attributeIndex), .uint16(dataIndex)])
    }

    public init(data: DLMSData) throws {
        guard case .structure(let e) = data, e.count == 4,
              case .uint16(let classID) = e[0], let ln = e[1].obisValue,
              case .int8(let attribute) = e[2], case .uint16(let index) = e[3] else {
            throw DLMSError.invalidValue("capture object definition is structure { long-unsigned, octet-string(6), integer, long-unsigned }")
        }
        self.init(classID: COSEMClassID(classID), logicalName: ln, attributeIndex: attribute, dataIndex: index)
    }

    public var description: String { "\(classID.rawValue)/\(logicalName)/\(attributeIndex)" + (dataIndex == 0 ? "" : "[\(dataIndex)]") }
}
