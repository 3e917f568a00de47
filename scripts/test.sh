#!/usr/bin/env bash
# Installs the test dependencies and runs the whole suite (arguments go to pytest), in a
# virtual environment of its own.
# Python packages come from PyPI; the admin page's browser test needs Chromium and the
# REDIS_URL tests need redis-server, which are installed from Debian's packages when missing
# and this runs as root with apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing ${missing[*]} from Debian's packages (the admin page's browser test," \
      "the tests of several instances sharing Redis)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      "${missing[@]}" >/dev/null
  else
    echo "note: ${missing[*]} not installed; the admin-page browser test (chromium) and the" \
      "Redis tests (redis-server) will be skipped" >&2
  fi
fi
# Its own virtual environment next to the checkout (.test-venv; POE2OPENAI_TEST_VENV to move
# it): the editable install and the test dependencies go there, never into the Python that
# poe2openai was installed with. It sees that Python's packages, so nothing already there is
# downloaded again.
venv="${POE2OPENAI_TEST_VENV:-.test-venv}"
if [ ! -x "$venv/bin/python" ]; then
  echo "Creating $venv for the tests" >&2
  python3 -m venv --system-site-packages "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check -e ".[test]"
# instructor pins jiter below what current openai releases need, which would downgrade the
# openai SDK the other tests use; it works with both, so it goes in without its pins.
"$venv/bin/python" -m pip install -q --no-deps "instructor>=1.17"
# The JavaScript clients some tests run (the Vercel AI SDK), from the npm registry.
if command -v npm >/dev/null 2>&1; then
  npm ci --prefix tests/js --no-audit --no-fund --loglevel=error >/dev/null
else
  echo "note: npm is not installed; the JavaScript client tests will be skipped" >&2
fi
exec "$venv/bin/python" -m pytest "$@"
