#!/usr/bin/env bash
# A real SMTP server for tests and the demo (PyPI aiosmtpd): installs it when missing, then
# runs scripts/smtp_sink.py, which stores every message it accepts as DIR/NNNNNN.eml and
# prints its port on the first line. Usage: scripts/smtp-sink.sh DIR [PORT]
set -euo pipefail
cd "$(dirname "$0")"
if ! python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
  echo "smtp-sink: installing aiosmtpd" >&2
  pip install --quiet aiosmtpd >&2 || pip install --quiet --break-system-packages aiosmtpd >&2
fi
exec python3 smtp_sink.py "$@"
