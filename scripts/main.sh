#!/usr/bin/env bash
# The main job: install, build and serve the JupyterLite demo site, and run the CPython kernel beside it.
# Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_venv.sh
install_venv "test"
CONNECTION_FILE=${CONNECTION_FILE:-$PWD/.kernel-connection.json}
rm -f "$CONNECTION_FILE"
"$VENV/bin/concurrent-kernel" -f "$CONNECTION_FILE" &
KERNEL_PID=$!
trap 'kill $KERNEL_PID 2>/dev/null || true' EXIT
echo "CPython kernel running (pid $KERNEL_PID), connection file $CONNECTION_FILE"
echo "  connect: $VENV/bin/python -c \"from jupyter_client import BlockingKernelClient as C; c=C(connection_file='$CONNECTION_FILE'); c.load_connection_file(); c.start_channels(); c.execute_interactive('print(42)')\""
if [ -f scripts/build-site.sh ]; then
    VENV="$VENV" bash scripts/build-site.sh
    "$VENV/bin/python" scripts/serve-site.py
else
    wait "$KERNEL_PID"
fi
