// What every fuzz target shares: handing control to libFuzzer, and the rule that an input may be
// refused only with the decoders' own error types.

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt

/// Runs libFuzzer's driver with the process's arguments and `callback` as the target. SwiftPM
/// links each executable's `main` aliased to `<Target>_main`; each target's Driver.swift defines
/// that and calls this (with -sanitize=fuzzer libFuzzer's own `main` is then not linked).
public func runLibFuzzer(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                         _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, callback)
}

/// Runs `body`; returns `false` when it refused the input with an error `isTyped` accepts, and
/// stops the run (a finding) for any other error.
@discardableResult
public func refusesCleanly(_ isTyped: (any Error) -> Bool, _ body: () throws -> Void) -> Bool {
    do {
        try body()
        return true
    } catch where isTyped(error) {
        return false
    } catch {
        fatalError("untyped error \(error)")
    }
}

/// Calls `next` until it returns `nil`, refuses (typed), or `limit` values came, handing each
/// value to `each`: a stream decoder over one input.
public func decodeEach<Value>(upTo limit: Int, isTyped: (any Error) -> Bool, _ next: () throws -> Value?, _ each: (Value) -> Void) {
    var count = 0
    while count < limit {
        var value: Value?
        guard refusesCleanly(isTyped, { value = try next() }), let value else { return }
        count += 1
        each(value)
    }
}
