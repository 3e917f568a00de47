#!/usr/bin/env bash
# Installs the real coding agents, Codex CLI and Claude Code, with npm into a cache folder
# (default ~/.cache/poe2openai-agents; set POE2OPENAI_AGENTS_DIR to choose another), then
# runs tests/test_agents.py: both agents against a real server process and the scripted
# fake Poe of scripts/fake_poe_server.py. Nothing leaves this machine except npm's
# download. Arguments go to pytest.
#
# The versions default to the ones the tests were written against; CODEX_VERSION=latest
# CLAUDE_CODE_VERSION=latest tries the newest releases.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${POE2OPENAI_AGENTS_DIR:-$HOME/.cache/poe2openai-agents}"
codex="@openai/codex@${CODEX_VERSION:-0.171.0}"
claude="@anthropic-ai/claude-code@${CLAUDE_CODE_VERSION:-2.1.197}"
if ! command -v npm >/dev/null 2>&1; then
  echo "npm is needed (Node.js 18 or newer) to install $codex and $claude" >&2
  exit 1
fi
mkdir -p "$dir"
echo "Installing $codex and $claude into $dir" >&2
npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "$codex" "$claude"
python3 -m pip install -q -e ".[test]"
POE2OPENAI_AGENTS_DIR="$dir" python3 -m pytest tests/test_agents.py -v "$@"
