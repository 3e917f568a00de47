#!/usr/bin/env bash
# Installs the test dependencies and runs the whole suite (arguments go to pytest).
# Python packages come from PyPI; the admin page's browser test needs Chromium, which is
# installed from Debian's packages when missing and this runs as root with apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Chromium from Debian's packages (for the admin page's browser test)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "note: Chromium is not installed; the admin-page browser test will be skipped" >&2
  fi
fi
python3 -m pip install -q -e ".[test]"
# The JavaScript clients some tests run (the Vercel AI SDK), from the npm registry.
if command -v npm >/dev/null 2>&1; then
  npm ci --prefix tests/js --no-audit --no-fund --loglevel=error >/dev/null
else
  echo "note: npm is not installed; the JavaScript client tests will be skipped" >&2
fi
python3 -m pytest "$@"
