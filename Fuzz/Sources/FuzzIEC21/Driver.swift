// The target's `main` (SwiftPM names it `FuzzIEC21_main`): libFuzzer's driver with this target.
import FuzzSupport

@_cdecl("FuzzIEC21_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runLibFuzzer(argc, argv) { data, size in fuzzIEC21(data, size) }
}
