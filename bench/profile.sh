#!/bin/sh
# Profile poe2openai's hot path: scenario i (500 streams, one Poe event per read) against the product, with
# py-spy attached to the product process for the measured phase. Writes
#   bench/results/profile.svg          flame graph (open in a browser)
#   bench/results/profile.top.txt      busy time by area, top functions (self and inclusive)
#   bench/results/profile.md / .json   the benchmark numbers of that (slowed-down) run
#   bench/results/profile.stacks.txt   raw collapsed stacks (not committed)
# Extra arguments go to bench/run.py, e.g. --scenarios c or --duration 20.
set -e
cd "$(dirname "$0")/.."
if ! command -v py-spy >/dev/null 2>&1; then
    echo "py-spy is not installed: pip install py-spy" >&2
    exit 1
fi
exec python bench/run.py --profile "$@"
