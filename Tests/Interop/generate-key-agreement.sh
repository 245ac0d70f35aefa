#!/bin/sh
# Rewrites Tests/DLMSSecurityTests/KeyAgreementVectors.swift from capture_key_agreement.py (Python
# cryptography in the interop venv). See README.md.
set -eu
cd "$(dirname "$0")/../.."
PY="$(Tests/Interop/run_interop.sh)"
"$PY" Tests/Interop/capture_key_agreement.py > Tests/DLMSSecurityTests/KeyAgreementVectors.swift
