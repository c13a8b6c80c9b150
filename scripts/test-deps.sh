#!/usr/bin/env bash
# Installs what the integration tests need besides cargo: a Python venv with aiosmtpd (a real
# SMTP server for tests/channels.rs). Idempotent: re-running does nothing when already set up.
# Alertmanager comes from Debian: apt-get install -y --no-install-recommends prometheus-alertmanager
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-test
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import aiosmtpd' 2>/dev/null; then
    "$VENV/bin/pip" install --quiet aiosmtpd
fi
"$VENV/bin/python" -c 'import aiosmtpd; print("aiosmtpd", aiosmtpd.__version__, "ready in '"$VENV"'")'
if ! command -v prometheus-alertmanager >/dev/null; then
    echo "note: prometheus-alertmanager is missing (apt-get install -y --no-install-recommends prometheus-alertmanager)" >&2
fi
