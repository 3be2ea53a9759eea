#!/usr/bin/env bash
# Pin the Pyodide wheels of the kernel's dependencies (pure Python, CPython 3.14, wasm32).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
UV_PYTHON_DOWNLOADS=never "$VENV/bin/uv" pip compile "$ROOT/ts/pyodide-requirements.in" --python-version 3.14 \
  --python-platform wasm32-pyodide2025 --only-binary :all: --no-header --no-annotate \
  -o "$ROOT/ts/pyodide-requirements.txt"
