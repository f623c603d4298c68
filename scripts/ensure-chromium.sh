#!/usr/bin/env bash
# The staff console's browser test (test/e2e) drives Debian's Chromium. This runs before
# `npm test`: it installs Chromium when it is missing and this is a Debian machine where we are
# root (CI, the development machines), says so first, and otherwise says how to get it or how
# to leave the browser test out (SPLICE_SKIP_BROWSER_TEST=1).
set -euo pipefail
chromium_path="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ "${SPLICE_SKIP_BROWSER_TEST:-}" = "1" ]; then
  echo "ensure-chromium: SPLICE_SKIP_BROWSER_TEST=1: the browser test of the staff console (test/e2e) is left out of this run"
  exit 0
fi
if [ -x "$chromium_path" ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-chromium: the browser test needs Chromium, which is missing: installing Debian's 'chromium' package"
  echo "ensure-chromium: (apt-get, about 115 packages, once; SPLICE_SKIP_BROWSER_TEST=1 npm test leaves the browser test out instead)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  echo "ensure-chromium: installed $(command -v chromium)"
  exit 0
fi
cat >&2 <<MESSAGE
ensure-chromium: the browser test of the staff console needs Chromium at $chromium_path, and
this user cannot install it. Either install Debian's package as root (apt-get install chromium),
or point CHROMIUM_PATH at a Chromium, or leave the browser test out:
  SPLICE_SKIP_BROWSER_TEST=1 npm test
MESSAGE
exit 1
