#!/usr/bin/env bash
# Installs what the test suite needs beyond Rust, idempotently:
#   Debian: prometheus (promtool), prometheus-alertmanager (amtool, a real Alertmanager),
#           chromium (status page browser test), python3-venv;
#   PyPI:   aiosmtpd in .venv-test/ (a real SMTP server for the email tests).
# Needs root (or sudo) for apt-get on a fresh machine; a second run changes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v promtool >/dev/null || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
command -v chromium >/dev/null || need+=(chromium)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
command -v systemd-analyze >/dev/null || need+=(systemd)
if ((${#need[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Debian packages: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

if [ ! -x .venv-test/bin/python ] || ! .venv-test/bin/python -c 'import aiosmtpd' 2>/dev/null; then
  echo "creating .venv-test with aiosmtpd"
  python3 -m venv .venv-test
  .venv-test/bin/pip install -q aiosmtpd
fi
echo "test dependencies ready"
