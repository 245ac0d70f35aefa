#!/usr/bin/env bash
# Creates the Python virtual environment with schemathesis (PyPI), which ConfigAPISchemathesisTests
# runs against config-service's served OpenAPI document. Prints the path of its `st` command.
# Usage: Tests/Interop/setup-schemathesis.sh [venv-dir]
#   (default: $SWIFTHES_SCHEMATHESIS_VENV or $HOME/.cache/swifthes/schemathesis-venv)
set -euo pipefail
VENV="${1:-${SWIFTHES_SCHEMATHESIS_VENV:-$HOME/.cache/swifthes/schemathesis-venv}}"
VERSION="${SCHEMATHESIS_VERSION:-4.32.5}"
if [ ! -x "$VENV/bin/st" ] || ! "$VENV/bin/st" --version 2>/dev/null | grep -q "$VERSION"; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip >&2
    "$VENV/bin/pip" install --quiet "schemathesis==$VERSION" >&2
fi
echo "$VENV/bin/st"
