#!/usr/bin/env bash
# Creates the Python virtual environment used to produce golden DLMS captures with Gurux.
# Usage: Tests/Interop/setup-venv.sh [venv-dir]   (default: $HOME/.cache/swifthes/interop-venv)
# The venv lives outside the repository; the produced vectors are committed as fixtures.
set -euo pipefail
VENV="${1:-${SWIFTHES_INTEROP_VENV:-$HOME/.cache/swifthes/interop-venv}}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet "gurux-dlms==${GURUX_DLMS_VERSION:-1.0.203}"
# dlms-cosem: the second independent implementation for the security vectors (capture_security.py).
"$VENV/bin/pip" install --quiet "dlms-cosem==${DLMS_COSEM_VERSION:-25.1.0}"
echo "$VENV"
