#!/usr/bin/env bash
# Builds the libFuzzer targets with AddressSanitizer and runs them.
# Usage: Fuzz/run.sh [target…]   targets: FuzzAPDU FuzzData FuzzACSE (default: all)
# Environment: FUZZ_SECONDS (per target, default 600), FUZZ_SCRATCH (build directory).
# Crashes land in Fuzz/Artifacts/<target>/; the seed corpus is Fuzz/Corpus/<target>/
# (new inputs found while running go to a scratch copy, not into the repository).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
SECONDS_PER_TARGET="${FUZZ_SECONDS:-600}"
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(FuzzAPDU FuzzData FuzzACSE)
SCRATCH="${FUZZ_SCRATCH:-$HERE/../.build-fuzz}"

swift build --package-path "$HERE" --scratch-path "$SCRATCH" -c debug \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
BIN="$(swift build --package-path "$HERE" --scratch-path "$SCRATCH" -c debug --show-bin-path)"

for target in "${TARGETS[@]}"; do
    corpus="$SCRATCH/corpus/$target"
    mkdir -p "$corpus" "$HERE/Artifacts/$target"
    cp -n "$HERE/Corpus/$target/"* "$corpus/" 2>/dev/null || true
    echo "== $target for ${SECONDS_PER_TARGET}s"
    "$BIN/$target" "$corpus" "$HERE/Corpus/$target" \
        -max_total_time="$SECONDS_PER_TARGET" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$HERE/Artifacts/$target/" -print_final_stats=1
done
