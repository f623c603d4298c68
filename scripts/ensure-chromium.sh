#!/usr/bin/env bash
# The playground's browser test drives Debian's Chromium. Installs it when it is missing and
# this is a Debian machine where we are root (CI, the development machines); otherwise says how.
set -euo pipefail
chromium_path="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ -x "$chromium_path" ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-chromium: installing Debian's chromium package for the browser test"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  exit 0
fi
echo "ensure-chromium: no Chromium at $chromium_path; install Debian's 'chromium' package (or set CHROMIUM_PATH)" >&2
exit 1
