#!/bin/sh
# Rewrites Tests/DLMSSecurityTests/ECDSAVectors.swift from capture_ecdsa.py (Python cryptography and
# Gurux's GXEcdsa in the interop venv). See README.md.
set -eu
cd "$(dirname "$0")/../.."
PY="$(Tests/Interop/run_interop.sh)"
"$PY" Tests/Interop/capture_ecdsa.py > Tests/DLMSSecurityTests/ECDSAVectors.swift
