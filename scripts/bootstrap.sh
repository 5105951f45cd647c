#!/usr/bin/env bash
# Set up a fresh machine for advrec: a virtualenv in .venv with the project and its test tools, and
# the embedded broker's jars (Apache Kafka, resolved by Maven into ~/.cache/advrec, outside the repo).
# torch is pinned first (2.13.0): any unpinned spec would pull a newer multi-GB build.
# Idempotent: every step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

# Java runs the embedded Apache Kafka and Maven fetches it; Debian's packages if either is missing.
if ! command -v java >/dev/null 2>&1 || ! command -v mvn >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -q --no-install-recommends openjdk-17-jre-headless maven \
    || { $SUDO apt-get update -q && $SUDO apt-get install -y -q --no-install-recommends openjdk-17-jre-headless maven; } \
    || echo "bootstrap: could not install Java/Maven; the embedded broker falls back to Tansu" >&2
fi

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip 2>/dev/null || true
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/python -m pip install -q torch==2.13.0
# constraints.txt pins what the resolver would otherwise move (torch, click for faust-streaming).
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'
.venv/bin/python -m pip check

if command -v java >/dev/null 2>&1 && command -v mvn >/dev/null 2>&1; then
  .venv/bin/python -c "from streams.local.broker import fetch_kafka_jars; print('bootstrap: Kafka jars in', fetch_kafka_jars())"
fi
