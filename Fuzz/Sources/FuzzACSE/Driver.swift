// The target's `main` (SwiftPM names it `FuzzACSE_main`): libFuzzer's driver with this target.
import FuzzSupport

@_cdecl("FuzzACSE_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runLibFuzzer(argc, argv) { data, size in fuzzACSE(data, size) }
}
