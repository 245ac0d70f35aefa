import NIOCore

// JSON form used by `hesctl dlms`: one key naming the Blue Book type, e.g.
// `{"structure":[{"octet-string":"0000010000FF"},{"double-long-unsigned":42}]}`.
// Octet strings are hexadecimal; visible and UTF-8 strings are text (hexadecimal under
// `visible-string-hex`/`utf8-string-hex` when the bytes are not valid UTF-8), so decoding
// then encoding returns the same bytes.

struct DynamicKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ s: String) { stringValue = s }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension DLMSData: Codable {
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: DynamicKey.self)
        let key = DynamicKey(type.name)
        switch self {
        case .null, .dontCare: try c.encodeNil(forKey: key)
        case .array(let e), .structure(let e): try c.encode(e, forKey: key)
        case .boolean(let v): try c.encode(v, forKey: key)
        case .bitString(let v): try c.encode(v.description, forKey: key)
        case .int32(let v): try c.encode(v, forKey: key)
        case .uint32(let v): try c.encode(v, forKey: key)
        case .octetString(let b): try c.encode(b.dlmsHex, forKey: key)
        case .visibleString(let b), .utf8String(let b):
            if let text = String(validating: b.readableBytesView, as: UTF8.self) {
                try c.encode(text, forKey: key)
            } else {
                try c.encode(b.dlmsHex, forKey: DynamicKey(type.name + "-hex"))
            }
        case .bcd(let v), .int8(let v): try c.encode(v, forKey: key)
        case .int16(let v): try c.encode(v, forKey: key)
        case .uint8(let v), .enumerated(let v): try c.encode(v, forKey: key)
        case .uint16(let v): try c.encode(v, forKey: key)
        case .compactArray(let v): try c.encode(v, forKey: key)
        case .int64(let v): try c.encode(v, forKey: key)
        case .uint64(let v): try c.encode(v, forKey: key)
        case .float32(let v): try c.encode(v, forKey: key)
        case .float64(let v): try c.encode(v, forKey: key)
        case .dateTime(let v): try c.encode(v.octetString.dlmsHex, forKey: key)
        case .date(let v):
            var b = ByteBufferAllocator().buffer(capacity: 5); v.encode(into: &b); try c.encode(b.dlmsHex, forKey: key)
        case .time(let v):
            var b = ByteBufferAllocator().buffer(capacity: 4); v.encode(into: &b); try c.encode(b.dlmsHex, forKey: key)
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: DynamicKey.self)
        guard c.allKeys.count == 1, let key = c.allKeys.first else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "a DLMS value is an object with exactly one key naming its type"))
        }
        func hexBuffer() throws -> ByteBuffer { try ByteBuffer(dlmsHex: c.decode(String.self, forKey: key)) }
        switch key.stringValue {
        case "visible-string-hex": self = .visibleString(try hexBuffer()); return
        case "utf8-string-hex": self = .utf8String(try hexBuffer()); return
        default: break
        }
        guard let type = DLMSDataType(name: key.stringValue) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown DLMS type '\(key.stringValue)'"))
        }
        switch type {
        case .nullData: self = .null
        case .dontCare: self = .dontCare
        case .array: self = .array(try c.decode(DLMSDataList.self, forKey: key))
        case .structure: self = .structure(try c.decode(DLMSDataList.self, forKey: key))
        case .boolean: self = .boolean(try c.decode(Bool.self, forKey: key))
        case .bitString:
            let text = try c.decode(String.self, forKey: key)
            var bits: [Bool] = []
            for ch in text {
                switch ch {
                case "0": bits.append(false)
                case "1": bits.append(true)
                default: throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "bit-string holds only 0 and 1")
                }
            }
            self = .bitString(DLMSBitString(bits: bits))
        case .doubleLong: self = .int32(try c.decode(Int32.self, forKey: key))
        case .doubleLongUnsigned: self = .uint32(try c.decode(UInt32.self, forKey: key))
        case .octetString: self = .octetString(try hexBuffer())
        case .visibleString: self = .visibleString(ByteBuffer(dlmsBytes: try c.decode(String.self, forKey: key).utf8))
        case .utf8String: self = .utf8String(ByteBuffer(dlmsBytes: try c.decode(String.self, forKey: key).utf8))
        case .bcd: self = .bcd(try c.decode(Int8.self, forKey: key))
        case .integer: self = .int8(try c.decode(Int8.self, forKey: key))
        case .long: self = .int16(try c.decode(Int16.self, forKey: key))
        case .unsigned: self = .uint8(try c.decode(UInt8.self, forKey: key))
        case .longUnsigned: self = .uint16(try c.decode(UInt16.self, forKey: key))
        case .compactArray: self = .compactArray(try c.decode(DLMSCompactArray.self, forKey: key))
        case .long64: self = .int64(try c.decode(Int64.self, forKey: key))
        case .long64Unsigned: self = .uint64(try c.decode(UInt64.self, forKey: key))
        case .enumerated: self = .enumerated(try c.decode(UInt8.self, forKey: key))
        case .float32: self = .float32(try c.decode(Float.self, forKey: key))
        case .float64: self = .float64(try c.decode(Double.self, forKey: key))
        case .dateTime:
            var b = try hexBuffer()
            self = .dateTime(try CosemDateTime.decode(from: &b))
        case .date:
            var b = try hexBuffer()
            self = .date(try CosemDate.decode(from: &b))
        case .time:
            var b = try hexBuffer()
            self = .time(try CosemTime.decode(from: &b))
        }
    }
}

extension DLMSCompactArray: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: DynamicKey.self)
        self.init(typeDescription: try c.decode(DLMSTypeDescription.self, forKey: DynamicKey("type")),
                  elements: try c.decode([DLMSData].self, forKey: DynamicKey("elements")))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: DynamicKey.self)
        try c.encode(typeDescription, forKey: DynamicKey("type"))
        try c.encode(elements, forKey: DynamicKey("elements"))
    }
}

extension DLMSTypeDescription: Codable {
    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .simple(let t):
            var c = encoder.singleValueContainer()
            try c.encode(t.name)
        case .array(let count, let element):
            var c = encoder.container(keyedBy: DynamicKey.self)
            var nested = c.nestedContainer(keyedBy: DynamicKey.self, forKey: DynamicKey("array"))
            try nested.encode(count, forKey: DynamicKey("count"))
            try nested.encode(element, forKey: DynamicKey("type"))
        case .structure(let members):
            var c = encoder.container(keyedBy: DynamicKey.self)
            try c.encode(members, forKey: DynamicKey("structure"))
        }
    }

    public init(from decoder: any Decoder) throws {
        if let single = try? decoder.singleValueContainer(), let name = try? single.decode(String.self) {
            guard let t = DLMSDataType(name: name) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown DLMS type '\(name)'"))
            }
            self = .simple(t)
            return
        }
        let c = try decoder.container(keyedBy: DynamicKey.self)
        if c.contains(DynamicKey("structure")) {
            self = .structure(try c.decode([DLMSTypeDescription].self, forKey: DynamicKey("structure")))
        } else {
            let nested = try c.nestedContainer(keyedBy: DynamicKey.self, forKey: DynamicKey("array"))
            self = .array(count: try nested.decode(UInt16.self, forKey: DynamicKey("count")),
                          element: try nested.decode(DLMSTypeDescription.self, forKey: DynamicKey("type")))
        }
    }
}
