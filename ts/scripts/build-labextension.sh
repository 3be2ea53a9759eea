#!/usr/bin/env bash
# Build the labextension into ts/labextension: TypeScript, the worker bundle, the
# federated extension (jupyter-builder), and the Pyodide assets (core from npm
# `pyodide`, the kernel wheel and its pinned pure-Python dependencies, a lock written
# by pyodide-build, the load manifest, and a memory snapshot of the started kernel).
#
# Env: VENV (python venv with jupyter_builder, pip, hatchling; default .venv),
#      CK_KERNEL_WHEEL (use this concurrent_kernel wheel instead of building one),
#      CK_PYODIDE_BUILD_PYTHON (a Python >= 3.12 for pyodide-build; default: found on PATH or in pyenv).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
VENV="${VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
OUT="$ROOT/ts/labextension"
CACHE="$ROOT/ts/.cache"

echo "[build] typescript"
node_modules/.bin/tsc -p tsconfig.json
node_modules/.bin/tsc -p ts/tsconfig.worker.json
# Minified (names kept, for stack traces): 54 instead of 110 KB, on the way to a cold page's first result.
node_modules/.bin/esbuild ts/src/worker.ts --bundle --format=esm --target=es2022 --minify --keep-names \
  --log-level=warning --outfile=ts/lib/worker.js

echo "[build] labextension"
# The carried debugger panel's settings, under the id its main plugin gets here (ts/src/debugger.ts): JupyterLite
# names a federated extension's settings after the extension. The schema is the package's, as published.
mkdir -p ts/schema
cp node_modules/@jupyterlab/debugger-extension/schema/main.json ts/schema/debugger-panel.json
"$VENV/bin/jupyter-builder" build . >"$CACHE.builder.log" 2>&1 || { cat "$CACHE.builder.log"; exit 1; }
rm -f "$CACHE.builder.log"
cp ts/lib/worker.js "$OUT/static/ck-worker.js"
# The early start on its own too, for the app pack's loader to run sooner on a slow link (lite_app_pack.py).
node_modules/.bin/esbuild ts/src/early.ts --bundle --format=iife --target=es2020 --minify \
  --log-level=warning --outfile="$OUT/static/ck-early.js"
cat >"$OUT/install.json" <<'JSON'
{
  "packageManager": "python",
  "packageName": "concurrent-kernel",
  "uninstallInstructions": "Use your Python package manager (pip, conda, etc.) to uninstall the package concurrent-kernel"
}
JSON

echo "[build] pyodide assets"
mkdir -p "$CACHE/wheels" "$CACHE/kernel"
"$PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
  --python-version 3.14 --platform any --implementation py --abi none \
  -r ts/pyodide-requirements.txt -d "$CACHE/wheels"
# micropip ships beside the lock for `%pip` / `import micropip`, loaded on first use (not at start, not in the snapshot).
mkdir -p "$CACHE/lazy-wheels"
"$PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
  --python-version 3.14 --platform any --implementation py --abi none micropip==0.11.1 -d "$CACHE/lazy-wheels"
KWHEEL="${CK_KERNEL_WHEEL:-}"
if [ -z "$KWHEEL" ]; then
  # Build the pure-Python wheel from a copy without the labextension, so the
  # wheel shipped inside the labextension does not nest the previous one.
  TMP="$(mktemp -d)"
  trap 'rm -rf "$TMP"' EXIT
  cp pyproject.toml "$TMP/"
  for f in README.md LICENSE LICENSE.txt; do [ -e "$f" ] && cp "$f" "$TMP/"; done
  cp -r py "$TMP/py"
  find "$TMP/py" -name __pycache__ -prune -exec rm -rf {} +
  mkdir -p "$TMP/ts/labextension"
  rm -f "$CACHE/kernel/"*.whl
  "$PY" -m pip wheel -q --disable-pip-version-check --no-deps --no-build-isolation "$TMP" -w "$CACHE/kernel"
  KWHEEL="$(ls "$CACHE"/kernel/concurrent_kernel-*.whl | head -1)"
fi
# Only the pinned wheels (the cache may hold older versions).
mapfile -t DEPS < <("$PY" - "$CACHE/wheels" ts/pyodide-requirements.txt <<'PYEOF'
import sys, pathlib
from packaging.utils import canonicalize_name, parse_wheel_filename
pins = {}
for line in pathlib.Path(sys.argv[2]).read_text().splitlines():
    line = line.split("#")[0].strip()
    if "==" in line:
        n, v = line.split("==")
        pins[canonicalize_name(n)] = v.strip()
for w in sorted(pathlib.Path(sys.argv[1]).glob("*.whl")):
    name, ver, _, _ = parse_wheel_filename(w.name)
    if pins.get(name) == str(ver):
        print(w)
PYEOF
)
PYO="$OUT/static/pyodide"
rm -rf "$PYO"
mkdir -p "$PYO"
for f in pyodide.mjs pyodide.asm.mjs pyodide.asm.wasm python_stdlib.zip; do
  cp "node_modules/pyodide/$f" "$PYO/"
done
# The browser kernel's own small distributions (py/browser/README.md): piplite and the ipykernel stand-in.
rm -rf "$CACHE/browser-wheels"
for pkg in py/browser/piplite py/browser/ipykernel; do
  "$PY" -m pip wheel -q --disable-pip-version-check --no-deps --no-build-isolation "$pkg" -w "$CACHE/browser-wheels"
done
cp "$KWHEEL" "${DEPS[@]}" "$CACHE"/lazy-wheels/micropip-0.11.1-py3-none-any.whl "$CACHE"/browser-wheels/*.whl "$PYO/"
# Gzipped copies the worker fetches and inflates itself: most static hosts (and any plain server) send the wasm
# and the module script as they are, 11 MB instead of 4 (the originals stay for loadPyodide's own fallback).
gzip -9 -n -k "$PYO/pyodide.asm.wasm" "$PYO/pyodide.asm.mjs"
WHEELS=("$PYO"/*.whl)

echo "[build] pyodide lock (pyodide lockfile add-wheels)"
# pyodide-build needs Python >= 3.12; the kernel's own venv may be older: give it a venv of its own.
PB_VENV="$CACHE/pyodide-build-venv"
PB_PKGS=("pyodide-build==0.39.2" "pyodide-lock[wheel]==0.2.1")
if [ "$(cat "$PB_VENV/.ck-stamp" 2>/dev/null)" != "${PB_PKGS[*]}" ]; then
  PB_PYTHON="${CK_PYODIDE_BUILD_PYTHON:-}"
  if [ -z "$PB_PYTHON" ]; then
    for c in python3.14 python3.13 python3.12 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9]*/bin/python3; do
      if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
        PB_PYTHON="$(command -v "$c")"
        break
      fi
    done
  fi
  if [ -z "$PB_PYTHON" ]; then
    echo "[build] pyodide-build needs Python >= 3.12: none found on PATH or in pyenv; set CK_PYODIDE_BUILD_PYTHON" >&2
    exit 1
  fi
  rm -rf "$PB_VENV"
  "$PB_PYTHON" -m venv "$PB_VENV"
  "$PB_VENV/bin/python" -m pip install -q --disable-pip-version-check "${PB_PKGS[@]}" 2>&1 \
    | grep -v "^WARNING: Location" || true
  echo "${PB_PKGS[*]}" >"$PB_VENV/.ck-stamp"
fi
"$PB_VENV/bin/pyodide" lockfile add-wheels --input node_modules/pyodide/pyodide-lock.json \
  --output "$PYO/pyodide-lock.json" --base-path "$PYO" "${WHEELS[@]}"
"$PY" ts/scripts/make_manifest.py "$PYO" "${WHEELS[@]}"
echo "[build] python snapshot"
node --experimental-wasm-stack-switching ts/scripts/make_snapshot.mjs "$PYO"
echo "[build] done: $OUT ($(du -sh "$OUT" | cut -f1))"
