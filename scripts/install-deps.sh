#!/usr/bin/env bash
# Installs the Debian packages SwiftHES needs to build, test and run locally. Idempotent: it
# only calls apt-get when something is missing. Swift itself is expected on PATH.
set -euo pipefail

packages=(
  librdkafka-dev    # Kafka client library (Shared/CRdKafka) and its mock cluster (kafka-dev)
  pkg-config        # how SwiftPM finds librdkafka
  postgresql        # server binaries for the private test/run clusters (initdb, pg_ctl)
  postgresql-contrib
  python3-venv      # interop tests create a venv with gurux-dlms and dlms-cosem
  socat             # pseudo-terminal pairs for serial-line tests
  util-linux        # runuser, to run PostgreSQL as the postgres user
  curl              # health probes in `make run`
  chromium          # headless screenshots of the status page (`make run`, MakeRunTests)
  docker-compose    # validates compose/ (`make compose-check`, ComposeTests); no engine needed
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v swift >/dev/null 2>&1; then
  if [ -x /opt/swift/usr/bin/swift ]; then
    echo "swift is at /opt/swift/usr/bin: add it to PATH" >&2
  else
    echo "swift 6.1 or newer is required: https://www.swift.org/install/linux/" >&2
  fi
  exit 1
fi
