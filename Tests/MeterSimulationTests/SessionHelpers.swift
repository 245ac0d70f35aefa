import COSEM
import DLMSCodec
import Foundation
import MeterSimulation
import NIOCore
import Testing

/// 2026-11-26T16:07:30Z: a fixed real time, mid-interval.
let testNow = Date(timeIntervalSince1970: 1_795_709_250)

let clockTime = CosemAttributeDescriptor(classID: .clock, instance: .clock, attribute: 2)
let loadProfileBuffer = CosemAttributeDescriptor(classID: .profileGeneric, instance: .loadProfile1, attribute: 2)

func makeMeter(_ serial: String = "SIM00000001", seed: UInt64 = 0, configure: (inout SimulatedMeter.Configuration) -> Void = { _ in }) -> SimulatedMeter {
    var configuration = SimulatedMeter.Configuration(serialNumber: serial, seed: seed)
    configure(&configuration)
    return SimulatedMeter(configuration: configuration)
}

func aarq(password: String? = nil, maxPDU: UInt16 = 0xFFFF, conformance: Conformance = .defaultLN, mechanism: AuthenticationMechanism? = nil) -> AARQ {
    let initiate = InitiateRequest(proposedConformance: conformance, clientMaxReceivePDUSize: maxPDU)
    if let password {
        return .authenticated(mechanism: mechanism ?? .low, secret: Array(password.utf8), initiate: initiate)
    }
    return AARQ(mechanismName: mechanism, userInformation: .initiateRequest(initiate))
}

/// Sends one APDU and decodes the answer (which must be present and fully consumed).
func exchange(_ session: inout COSEMServerSession, _ request: DLMSAPDU, now: Date = testNow,
              sourceLocation: SourceLocation = #_sourceLocation) throws -> DLMSAPDU {
    let answer = session.handle(request.encoded, now: now)
    let raw = try #require(answer, sourceLocation: sourceLocation)
    return try DLMSAPDU(exactly: raw)
}

func associatedSession(_ meter: SimulatedMeter, sap: UInt16 = 17, maxPDU: UInt16 = 0xFFFF,
                       sourceLocation: SourceLocation = #_sourceLocation) throws -> COSEMServerSession {
    var session = COSEMServerSession(meter: meter, clientSAP: sap)
    let response = try exchange(&session, .aarq(aarq(password: sap == 16 ? nil : "12345678", maxPDU: maxPDU)))
    guard case .aare(let aare) = response, aare.isAccepted else {
        Issue.record("association refused: \(response)", sourceLocation: sourceLocation)
        throw CancellationError()
    }
    return session
}

let invoke = InvokeIDAndPriority(invokeID: 1, confirmed: true, highPriority: true)

/// GET normal, following data blocks with GET-Request-next; returns the reassembled data or the data-access-result.
func read(_ session: inout COSEMServerSession, _ attribute: CosemAttributeDescriptor, selection: AccessSelection? = nil,
          blocks: UnsafeMutablePointer<Int>? = nil) throws -> GetDataResult {
    var response = try exchange(&session, .getRequest(.normal(invokeID: invoke, attribute: attribute, accessSelection: selection)))
    var raw = ByteBufferAllocator().buffer(capacity: 0)
    var count = 0
    while true {
        switch response {
        case .getResponse(.normal(_, let result)):
            #expect(count == 0)
            return result
        case .getResponse(.withDataBlock(_, let block)):
            count += 1
            blocks?.pointee = count
            #expect(block.blockNumber == UInt32(count))
            switch block.result {
            case .dataAccessResult(let r): return .dataAccessResult(r)
            case .rawData(let bytes): raw.writeBytes(bytes.bytes)
            }
            if block.lastBlock {
                let data = try DLMSData.decode(from: &raw)
                #expect(raw.readableBytes == 0)
                return .data(data)
            }
            response = try exchange(&session, .getRequest(.next(invokeID: invoke, blockNumber: block.blockNumber)))
        default:
            throw DLMSTestError("unexpected response \(response)")
        }
    }
}

func readData(_ session: inout COSEMServerSession, _ attribute: CosemAttributeDescriptor, selection: AccessSelection? = nil,
              sourceLocation: SourceLocation = #_sourceLocation) throws -> DLMSData {
    let result = try read(&session, attribute, selection: selection)
    guard case .data(let data) = result else {
        Issue.record("\(attribute) answered \(result)", sourceLocation: sourceLocation)
        throw CancellationError()
    }
    return data
}

struct DLMSTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

func descriptor(_ classID: COSEMClassID, _ obis: String, _ attribute: Int8) -> CosemAttributeDescriptor {
    CosemAttributeDescriptor(classID: classID, instance: OBISCode(obis)!, attribute: attribute)
}
