#!/usr/bin/env bash
# Ensures the Gurux interop venv exists and prints its python interpreter path (one line, stdout).
#   PY="$(Tests/Interop/run_interop.sh)"
#   "$PY" Tests/Interop/gurux_meter.py --port 0 ...      # prints "READY <port>"
#   "$PY" Tests/Interop/gurux_read.py --port <port> ...  # prints one JSON document
# The venv: $SWIFTHES_INTEROP_VENV or $HOME/.cache/swifthes/interop-venv, gurux-dlms 1.0.203 from
# PyPI (GURUX_DLMS_VERSION overrides). Only the first call needs the network.
set -euo pipefail
VENV="${1:-${SWIFTHES_INTEROP_VENV:-$HOME/.cache/swifthes/interop-venv}}"
WANT="${GURUX_DLMS_VERSION:-1.0.203}"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('gurux-dlms') != '$WANT')" 2>/dev/null; then
    "$(dirname "$0")/setup-venv.sh" "$VENV" >&2
fi
echo "$VENV/bin/python"
