#!/usr/bin/env bash
# Headless Chromium for the browser tests (Debian's package; Playwright's own download cannot work here).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  echo "chromium present: $(command -v chromium)"; exit 0
fi
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
$SUDO apt-get update
$SUDO apt-get install -y chromium
command -v chromium
