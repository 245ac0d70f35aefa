#!/usr/bin/env bash
# Regenerates Tests/DLMSSecurityTests/SecurityVectors.swift from Gurux and dlms-cosem.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
VENV="$("$HERE/setup-venv.sh" | tail -1)"
OUT="$HERE/../DLMSSecurityTests/SecurityVectors.swift"
"$VENV/bin/python" "$HERE/capture_security.py" > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "wrote Tests/DLMSSecurityTests/SecurityVectors.swift"
