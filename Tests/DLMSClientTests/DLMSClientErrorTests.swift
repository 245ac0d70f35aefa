import COSEM
import DLMSClient
import DLMSCodec
import DLMSLink
import DLMSSecurity
import Testing

/// The four DLMS error types share one shape (`DLMSStackError`): descriptions and equality as
/// before, the cause kept, retriability from types.
@Suite("DLMS errors")
struct DLMSClientErrorTests {
    @Test("descriptions and equality are unchanged by the shared shape")
    func descriptions() {
        let codec = DLMSError.truncated("need 2 bytes", file: "F.swift", line: 7)
        #expect(codec.description == "DLMSError.truncated: need 2 bytes (F.swift:7)")
        #expect(codec == DLMSError.truncated("other words"))
        #expect(codec != DLMSError.unsupported("need 2 bytes"))
        let link = DLMSLinkError.sequenceError("N(R) 3", file: "L.swift", line: 1)
        #expect(link.description == "DLMSLinkError.sequenceError: N(R) 3 (L.swift:1)")
        #expect(Set([link, DLMSLinkError.sequenceError("N(S) 1")]).count == 1)
        let security = DLMSSecurityError.replayedCounter("5 after 9", file: "S.swift", line: 2)
        #expect(security.description == "DLMSSecurityError.replayedCounter: 5 after 9 (S.swift:2)")
        let client = DLMSClientError(code: .timeout, step: .get, reason: "no answer", file: "C.swift", line: 3)
        #expect(client.description == "DLMSClientError.timeout in get: no answer (C.swift:3)")
        #expect(client != DLMSClientError(code: .timeout, step: .set, reason: "no answer"), "the step counts")
        #expect(DLMSClientError.Code.responseTooLarge.description == "responseTooLarge")
    }

    @Test("wrapping keeps the cause and decides retriability from its type")
    func wrapping() throws {
        let noisy = DLMSClientError(code: .linkFailed, step: .get, reason: "x", underlying: DLMSLinkError.checksumMismatch("FCS"))
        #expect(noisy.isRetriable)
        let rejected = DLMSClientError(code: .linkFailed, step: .get, reason: "x", underlying: DLMSLinkError.frameRejected("FRMR"))
        #expect(!rejected.isRetriable)
        // The reason's text no longer decides: only the AARE's result does.
        let worded = DLMSClientError(code: .associationRejected, step: .associate, reason: "rejected-transient (said the text)")
        #expect(!worded.isRetriable)
        let transient = DLMSClientError(code: .associationRejected, step: .associate, reason: "busy",
                                        associationDiagnostic: .init(result: .rejectedTransient, sourceDiagnostic: .init(source: .serviceProvider, value: 1)))
        #expect(transient.isRetriable)
        #expect(transient.associationDiagnostic?.description == "rejected-transient (acse-service-provider: no-reason-given)")
        let cause: any DLMSStackError = DLMSSecurityError.authenticationFailed("tag")
        #expect(!cause.isRetriable)
        #expect(cause.underlying == nil)
    }
}
