#!/usr/bin/env bash
# Ensures the venv with Python's xmlschema (the independent validator of our CIM XML) exists and
# prints its python interpreter path (one line, stdout).
#   PY="$(Tests/Interop/run_cim_validator.sh)"; "$PY" Tests/Interop/cim/validate.py doc.xml
# The venv: $SWIFTHES_CIM_VENV or $HOME/.cache/swifthes/cim-venv, xmlschema 4.3.2 from PyPI
# (XMLSCHEMA_VERSION overrides). Only the first call needs the network.
set -euo pipefail
VENV="${SWIFTHES_CIM_VENV:-$HOME/.cache/swifthes/cim-venv}"
WANT="${XMLSCHEMA_VERSION:-4.3.2}"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('xmlschema') != '$WANT')" 2>/dev/null; then
    python3 -m venv "$VENV" >&2
    "$VENV/bin/pip" install --quiet "xmlschema==$WANT" >&2
fi
echo "$VENV/bin/python"
