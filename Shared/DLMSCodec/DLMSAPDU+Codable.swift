import COSEM

// JSON shape for `hesctl dlms`: a single-payload case encodes as `{"<case>": <payload>}`
// rather than the synthesized `{"<case>": {"_0": <payload>}}`.

struct CaseKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ s: String) { stringValue = s }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension KeyedDecodingContainer where K == CaseKey {
    func singleCase(_ codingPath: [any CodingKey], _ type: String) throws -> CaseKey {
        guard allKeys.count == 1, let key = allKeys.first else {
            throw DecodingError.dataCorrupted(.init(codingPath: codingPath, debugDescription: "\(type) is an object with exactly one key naming its case"))
        }
        return key
    }
}

func unknownCase(_ key: CaseKey, _ codingPath: [any CodingKey], _ type: String) -> DecodingError {
    DecodingError.dataCorrupted(.init(codingPath: codingPath, debugDescription: "unknown \(type) case '\(key.stringValue)'"))
}

extension DLMSAPDU {
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CaseKey.self)
        switch self {
        case .aarq(let v): try c.encode(v, forKey: CaseKey("aarq"))
        case .aare(let v): try c.encode(v, forKey: CaseKey("aare"))
        case .rlrq(let v): try c.encode(v, forKey: CaseKey("rlrq"))
        case .rlre(let v): try c.encode(v, forKey: CaseKey("rlre"))
        case .initiateRequest(let v): try c.encode(v, forKey: CaseKey("initiateRequest"))
        case .initiateResponse(let v): try c.encode(v, forKey: CaseKey("initiateResponse"))
        case .getRequest(let v): try c.encode(v, forKey: CaseKey("getRequest"))
        case .getResponse(let v): try c.encode(v, forKey: CaseKey("getResponse"))
        case .setRequest(let v): try c.encode(v, forKey: CaseKey("setRequest"))
        case .setResponse(let v): try c.encode(v, forKey: CaseKey("setResponse"))
        case .actionRequest(let v): try c.encode(v, forKey: CaseKey("actionRequest"))
        case .actionResponse(let v): try c.encode(v, forKey: CaseKey("actionResponse"))
        case .eventNotification(let v): try c.encode(v, forKey: CaseKey("eventNotification"))
        case .dataNotification(let v): try c.encode(v, forKey: CaseKey("dataNotification"))
        case .exceptionResponse(let v): try c.encode(v, forKey: CaseKey("exceptionResponse"))
        case .confirmedServiceError(let v): try c.encode(v, forKey: CaseKey("confirmedServiceError"))
        case .generalBlockTransfer(let v): try c.encode(v, forKey: CaseKey("generalBlockTransfer"))
        case .ciphered(let v): try c.encode(v, forKey: CaseKey("ciphered"))
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CaseKey.self)
        let key = try c.singleCase(decoder.codingPath, "APDU")
        switch key.stringValue {
        case "aarq": self = .aarq(try c.decode(AARQ.self, forKey: key))
        case "aare": self = .aare(try c.decode(AARE.self, forKey: key))
        case "rlrq": self = .rlrq(try c.decode(RLRQ.self, forKey: key))
        case "rlre": self = .rlre(try c.decode(RLRE.self, forKey: key))
        case "initiateRequest": self = .initiateRequest(try c.decode(InitiateRequest.self, forKey: key))
        case "initiateResponse": self = .initiateResponse(try c.decode(InitiateResponse.self, forKey: key))
        case "getRequest": self = .getRequest(try c.decode(GetRequest.self, forKey: key))
        case "getResponse": self = .getResponse(try c.decode(GetResponse.self, forKey: key))
        case "setRequest": self = .setRequest(try c.decode(SetRequest.self, forKey: key))
        case "setResponse": self = .setResponse(try c.decode(SetResponse.self, forKey: key))
        case "actionRequest": self = .actionRequest(try c.decode(ActionRequest.self, forKey: key))
        case "actionResponse": self = .actionResponse(try c.decode(ActionResponse.self, forKey: key))
        case "eventNotification": self = .eventNotification(try c.decode(EventNotificationRequest.self, forKey: key))
        case "dataNotification": self = .dataNotification(try c.decode(DataNotification.self, forKey: key))
        case "exceptionResponse": self = .exceptionResponse(try c.decode(ExceptionResponse.self, forKey: key))
        case "confirmedServiceError": self = .confirmedServiceError(try c.decode(ConfirmedServiceError.self, forKey: key))
        case "generalBlockTransfer": self = .generalBlockTransfer(try c.decode(GeneralBlockTransfer.self, forKey: key))
        case "ciphered": self = .ciphered(try c.decode(CipheredAPDU.self, forKey: key))
        default: throw unknownCase(key, decoder.codingPath, "APDU")
        }
    }
}

extension GetDataResult {
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CaseKey.self)
        switch self {
        case .data(let d): try c.encode(d, forKey: CaseKey("data"))
        case .dataAccessResult(let r): try c.encode(r, forKey: CaseKey("dataAccessResult"))
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CaseKey.self)
        let key = try c.singleCase(decoder.codingPath, "get-data-result")
        switch key.stringValue {
        case "data": self = .data(try c.decode(DLMSData.self, forKey: key))
        case "dataAccessResult": self = .dataAccessResult(try c.decode(DataAccessResult.self, forKey: key))
        default: throw unknownCase(key, decoder.codingPath, "get-data-result")
        }
    }
}

extension DataBlockG.Result {
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CaseKey.self)
        switch self {
        case .rawData(let b): try c.encode(b, forKey: CaseKey("rawData"))
        case .dataAccessResult(let r): try c.encode(r, forKey: CaseKey("dataAccessResult"))
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CaseKey.self)
        let key = try c.singleCase(decoder.codingPath, "DataBlock-G result")
        switch key.stringValue {
        case "rawData": self = .rawData(try c.decode(DLMSBytes.self, forKey: key))
        case "dataAccessResult": self = .dataAccessResult(try c.decode(DataAccessResult.self, forKey: key))
        default: throw unknownCase(key, decoder.codingPath, "DataBlock-G result")
        }
    }
}

extension ACSEUserInformation {
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CaseKey.self)
        switch self {
        case .initiateRequest(let v): try c.encode(v, forKey: CaseKey("initiateRequest"))
        case .initiateResponse(let v): try c.encode(v, forKey: CaseKey("initiateResponse"))
        case .confirmedServiceError(let v): try c.encode(v, forKey: CaseKey("confirmedServiceError"))
        case .ciphered(let v): try c.encode(v, forKey: CaseKey("ciphered"))
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CaseKey.self)
        let key = try c.singleCase(decoder.codingPath, "user-information")
        switch key.stringValue {
        case "initiateRequest": self = .initiateRequest(try c.decode(InitiateRequest.self, forKey: key))
        case "initiateResponse": self = .initiateResponse(try c.decode(InitiateResponse.self, forKey: key))
        case "confirmedServiceError": self = .confirmedServiceError(try c.decode(ConfirmedServiceError.self, forKey: key))
        case "ciphered": self = .ciphered(try c.decode(CipheredAPDU.self, forKey: key))
        default: throw unknownCase(key, decoder.codingPath, "user-information")
        }
    }
}

extension AuthenticationValue {
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CaseKey.self)
        switch self {
        case .charString(let b): try c.encode(b, forKey: CaseKey("charString"))
        case .bitString(let b): try c.encode(b, forKey: CaseKey("bitString"))
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CaseKey.self)
        let key = try c.singleCase(decoder.codingPath, "authentication-value")
        switch key.stringValue {
        case "charString": self = .charString(try c.decode(DLMSBytes.self, forKey: key))
        case "bitString": self = .bitString(try c.decode(DLMSBytes.self, forKey: key))
        default: throw unknownCase(key, decoder.codingPath, "authentication-value")
        }
    }
}
