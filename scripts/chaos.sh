#!/usr/bin/env bash
# The chaos run of the whole pipeline (see scripts/chaos.py for what it does and checks):
#   scripts/chaos.sh --rounds 22          # every kind of fault twice, ~10 min
#   scripts/chaos.sh --rounds 8 --seed 7  # a short, repeatable run
# Builds the debug executables first unless --bin names a directory that has them.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/opt/swift/usr/bin
if [[ " $* " != *" --bin "* ]]; then swift build >&2; fi
exec python3 scripts/chaos.py "$@"
