#!/usr/bin/env bash
# Install the operations tools the deploy tests need: promtool + prometheus and docker-compose 1.29
# (Debian packages), and jsonschema (PyPI, into the Python that runs the tests).
# Idempotent: installs only what is missing, and runs `apt-get update` only when an install needs it.
# Never starts a service: in CI and containers there is no init system, and a running Prometheus
# would squat on port 9090 of a shared machine.
set -euo pipefail
PYTHON=${PYTHON:-python3}
export DEBIAN_FRONTEND=noninteractive

missing=()
command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)

if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "install_ops_tools: need root (or sudo) to install ${missing[*]}" >&2; exit 1; }
    SUDO="sudo -n"
  fi
  # A policy-rc.d that answers 101 tells invoke-rc.d not to start the packages' services.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    trap '$SUDO rm -f "$policy"' EXIT
  fi
  install() { $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"; }
  # Try from the current package lists first; refresh them only if that fails (none, or stale).
  if ! install; then
    $SUDO apt-get update -q
    install
  fi
fi

for tool in promtool prometheus docker-compose; do
  command -v "$tool" >/dev/null 2>&1 || { echo "install_ops_tools: $tool is still missing" >&2; exit 1; }
done

"$PYTHON" -c "import jsonschema" 2>/dev/null \
  || "$PYTHON" -m pip install -q --disable-pip-version-check "jsonschema>=4"
"$PYTHON" -c "import jsonschema"
