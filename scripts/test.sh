#!/usr/bin/env bash
# Install everything this repo needs into .venv (Python deps, kernelspec, browser toolchain and site) and run
# every test. Extra arguments go to pytest. Works on a fresh machine; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_venv.sh
install_venv "test,bench"
# The GUI event-loop tests run Tk on a virtual X display.
if ! command -v Xvfb >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xvfb >/dev/null
fi
if [ -f scripts/setup-browser.sh ]; then
    VENV="$VENV" bash scripts/setup-browser.sh
fi
"$VENV/bin/ruff" check .
set +e
"$VENV/bin/python" -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests (exit code 5): nothing to run for: $*" >&2
    status=0
fi
exit "$status"
