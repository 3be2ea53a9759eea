#!/usr/bin/env bash
# Build the demo JupyterLite site into lite-site/_output.
#
# Needs the tools from scripts/setup-browser.sh (run automatically when missing):
# node_modules, and a venv ($VENV, default .venv) with jupyterlite-core,
# jupyter_builder, jupyterlab_widgets and jupyterlite-pyodide-kernel.
# Set CK_SKIP_LABEXTENSION=1 to reuse an existing ts/labextension.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
export VENV="${VENV:-$ROOT/.venv}"
[ -d "$VENV" ] && VENV="$(cd "$VENV" && pwd)"
if [ -z "${CK_SETUP_RUNNING:-}" ] && { [ ! -x "$VENV/bin/jupyter-lite" ] || [ ! -d node_modules/pyodide ]; }; then
  bash scripts/setup-browser.sh --no-site --no-chromium
fi
if [ -z "${CK_SKIP_LABEXTENSION:-}" ] || [ ! -f ts/labextension/package.json ]; then
  bash ts/scripts/build-labextension.sh
fi
LABEXT="$VENV/share/jupyter/labextensions"
OUT="$ROOT/lite-site/_output"
rm -rf "$OUT"
# --ignore-sys-prefix: only the extensions listed here (an installed, possibly
# stale concurrent-kernel labextension in the venv must not shadow ts/labextension).
EXTS=("$ROOT/ts/labextension" "$LABEXT/@jupyter-widgets/jupyterlab-manager")
if [ -d "$LABEXT/@jupyterlite/pyodide-kernel-extension" ]; then
  EXTS+=("$LABEXT/@jupyterlite/pyodide-kernel-extension")  # the stock kernel, for bench/browser_bench.py
fi
"$VENV/bin/python" - "$ROOT/lite-site/jupyter_lite_config.json" "${EXTS[@]}" <<'PYEOF'
import json, sys
path, *exts = sys.argv[1:]
json.dump({"LiteBuildConfig": {"federated_extensions": exts, "ignore_sys_prefix": True,
                                "contents": ["contents"], "no_sourcemaps": True}}, open(path, "w"), indent=1)
PYEOF
(cd lite-site && "$VENV/bin/jupyter" lite build --output-dir "$OUT") >"$ROOT/lite-site/.build.log" 2>&1 \
  || { cat "$ROOT/lite-site/.build.log"; exit 1; }
cd "$ROOT"
cp lite-site/pages/*.html "$OUT/"
# The app's default favicon (lab/favicon.ico, every page but the notebook ones) is 319 KB of icons up to 256 px,
# fetched by every page as it opens: the site's favicon.ico (jupyter-lite.json faviconUrl) keeps its 16 and 32 px ones.
"$VENV/bin/python" - "$OUT/lab/favicon.ico" "$OUT/favicon.ico" <<'PYEOF'
import struct, sys
src, dst = sys.argv[1:]
data = open(src, "rb").read()
count = struct.unpack_from("<HHH", data)[2]
entries = [struct.unpack_from("<BBBBHHII", data, 6 + 16 * i) for i in range(count)]
small = [e for e in entries if 0 < e[0] <= 32]
out, offset = [struct.pack("<HHH", 0, 1, len(small))], 6 + 16 * len(small)
for w, h, colors, res, planes, bpp, size, at in small:
    out.append(struct.pack("<BBBBHHII", w, h, colors, res, planes, bpp, size, offset))
    offset += size
out += [data[at:at + size] for *_, size, at in small]
open(dst, "wb").write(b"".join(out))
PYEOF
# Merge our runtime settings last (jupyterlite's addons rewrite jupyter-lite.json).
"$VENV/bin/python" - "$OUT/jupyter-lite.json" lite-site/jupyter-lite.json <<'PYEOF'
import json, sys
out, ours = sys.argv[1:]
def merge(a, b):
    for k, v in b.items():
        a[k] = merge(a.get(k, {}), v) if isinstance(v, dict) and isinstance(a.get(k), dict) else v
    return a
data = merge(json.load(open(out)), json.load(open(ours)))
json.dump(data, open(out, "w"), indent=1)
PYEOF
if [ -d "$LABEXT/@jupyterlite/pyodide-kernel-extension" ]; then
  # The stock jupyterlite-pyodide-kernel (for bench/browser_bench.py) loads Pyodide from a CDN by default:
  # give it the same local Pyodide core, with micropip and the Pyodide wheels it installs (its lock).
  STOCK="$OUT/pyodide-stock"
  mkdir -p "$STOCK" ts/.cache/stock-wheels
  "$VENV/bin/python" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version 3.14 --platform any --implementation py --abi none \
    micropip==0.11.1 packaging==26.1 -d ts/.cache/stock-wheels 2>&1 | grep -v "^WARNING: Location" || true
  for f in pyodide.mjs pyodide.asm.mjs pyodide.asm.wasm python_stdlib.zip; do
    cp "node_modules/pyodide/$f" "$STOCK/"
  done
  # (micropip is in both: the labextension ships it for %pip too)
  cp ts/labextension/static/pyodide/*.whl "$STOCK/"
  cp -f ts/.cache/stock-wheels/*.whl "$STOCK/"
  rm -f "$STOCK"/concurrent_kernel-*.whl
  # pyodide-build's venv was made by ts/scripts/build-labextension.sh.
  ts/.cache/pyodide-build-venv/bin/pyodide lockfile add-wheels --input node_modules/pyodide/pyodide-lock.json \
    --output "$STOCK/pyodide-lock.json" --base-path "$STOCK" "$STOCK"/*.whl
fi
echo "[site] built $OUT ($(du -sh "$OUT" | cut -f1))"
