import COSEM
import DLMSCodec
import Foundation
import NIOCore
import TestSupport
import Testing

/// The JSON form `hesctl dlms` prints must encode back to the same bytes.
@Suite struct JSONRoundTripTests {
    static var samples: [String] { GuruxInteropTests.wellFormed.map(\.hex) + StandardVectorTests.vectors.map { hexBuffer($0.0).dlmsHex } }

    @Test func everyVectorSurvivesJSON() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        for hex in Self.samples {
            let apdu = try DLMSAPDU(exactly: hexBuffer(hex))
            let json = try encoder.encode(apdu)
            let back = try JSONDecoder().decode(DLMSAPDU.self, from: json)
            #expect(back.encoded.dlmsHex == hex, "\(hex) → \(String(decoding: json, as: UTF8.self))")
        }
    }

    @Test func readableShape() throws {
        let apdu = try DLMSAPDU(exactly: hexBuffer("C401C10009060000010000FF"))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = String(decoding: try encoder.encode(apdu), as: UTF8.self)
        #expect(json == #"{"getResponse":{"normal":{"invokeID":193,"result":{"data":{"octet-string":"0000010000FF"}}}}}"#)
    }
}
