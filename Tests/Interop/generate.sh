#!/usr/bin/env bash
# Regenerates Tests/DLMSCodecTests/GuruxVectors.swift from Gurux talking to itself.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
VENV="$("$HERE/setup-venv.sh" | tail -1)"
"$VENV/bin/python" "$HERE/capture_gurux.py" > "$HERE/../DLMSCodecTests/GuruxVectors.swift.tmp"
mv "$HERE/../DLMSCodecTests/GuruxVectors.swift.tmp" "$HERE/../DLMSCodecTests/GuruxVectors.swift"
echo "wrote Tests/DLMSCodecTests/GuruxVectors.swift"
