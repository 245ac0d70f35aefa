// The target's `main` (SwiftPM names it `FuzzDatagramInbound_main`): libFuzzer's driver with this target.
import FuzzSupport

@_cdecl("FuzzDatagramInbound_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runLibFuzzer(argc, argv) { data, size in fuzzDatagramInbound(data, size) }
}
