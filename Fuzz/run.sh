#!/usr/bin/env bash
# Builds the libFuzzer targets with AddressSanitizer and runs them.
# Usage: Fuzz/run.sh [target…]   targets: FuzzAPDU FuzzData FuzzACSE FuzzIEC21 FuzzDatagramInbound FuzzContracts (default: all)
# Environment: FUZZ_SECONDS (per target, default 600), FUZZ_PARALLEL=1 (run the targets at the
# same time), FUZZ_SCRATCH (build directory, default .build-fuzz).
# Crashes land in Fuzz/Artifacts/<target>/; the committed seed corpus is Fuzz/Corpus/<target>/
# (inputs found while running go to $FUZZ_SCRATCH/corpus/<target>, not into the repository).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
SECONDS_PER_TARGET="${FUZZ_SECONDS:-600}"
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(FuzzAPDU FuzzData FuzzACSE FuzzIEC21 FuzzDatagramInbound FuzzContracts)
SCRATCH="${FUZZ_SCRATCH:-$HERE/../.build-fuzz}"
# Leaks inside the toolchain's own libraries are suppressed (Fuzz/lsan.supp says which and why).
export LSAN_OPTIONS="suppressions=$HERE/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
FLAGS=(--package-path "$HERE" --scratch-path "$SCRATCH" -c debug -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library)

swift build "${FLAGS[@]}"
BIN="$(swift build "${FLAGS[@]}" --show-bin-path)"

run() {
    local target="$1" corpus="$SCRATCH/corpus/$1"
    mkdir -p "$corpus" "$HERE/Artifacts/$target"
    echo "== $target for ${SECONDS_PER_TARGET}s (log: $SCRATCH/$target.log)"
    local status=0
    "$BIN/$target" "$corpus" "$HERE/Corpus/$target" \
        -max_total_time="$SECONDS_PER_TARGET" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$HERE/Artifacts/$target/" -print_final_stats=1 > "$SCRATCH/$target.log" 2>&1 || status=$?
    tail -n 12 "$SCRATCH/$target.log"
    return $status
}

status=0
if [ "${FUZZ_PARALLEL:-0}" = 1 ]; then
    pids=()
    for target in "${TARGETS[@]}"; do run "$target" & pids+=($!); done
    for pid in "${pids[@]}"; do wait "$pid" || status=1; done
else
    for target in "${TARGETS[@]}"; do run "$target" || status=1; done
fi
exit $status
