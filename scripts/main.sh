#!/usr/bin/env bash
# The main job: install, build and serve the JupyterLite demo site, and run the CPython kernel beside it.
# Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q -U pip
"$VENV/bin/python" -m pip install -q -e ".[test]"
"$VENV/bin/concurrent-kernel" install --sys-prefix
CONNECTION_FILE=${CONNECTION_FILE:-$PWD/.kernel-connection.json}
rm -f "$CONNECTION_FILE"
"$VENV/bin/python" - "$CONNECTION_FILE" <<'PY'
import sys
from concurrent_kernel._app import new_connection_file
import shutil
shutil.move(str(new_connection_file()), sys.argv[1])
PY
"$VENV/bin/concurrent-kernel" -f "$CONNECTION_FILE" &
KERNEL_PID=$!
trap 'kill $KERNEL_PID 2>/dev/null || true' EXIT
echo "CPython kernel running (pid $KERNEL_PID). Connect: $VENV/bin/jupyter console --existing $CONNECTION_FILE"
echo "  or from Python: jupyter_client.BlockingKernelClient(connection_file='$CONNECTION_FILE')"
if [ -f scripts/build-site.sh ]; then
    VENV="$VENV" bash scripts/build-site.sh
    "$VENV/bin/python" scripts/serve-site.py
else
    wait "$KERNEL_PID"
fi
