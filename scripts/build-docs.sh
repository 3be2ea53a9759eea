#!/usr/bin/env bash
# Build a Sphinx docs project that embeds the concurrent kernel with jupyterlite-sphinx, the way a docs author
# does: the concurrent-kernel wheel, jupyterlite-sphinx and sphinx installed by pip into a venv, then sphinx-build.
#
# Usage: bash scripts/build-docs.sh [SRC [OUT]]   (default: lite-site/docs -> lite-site/docs/_build/html;
#        the JupyterLite site is OUT/lite/). Serve it with `npm run docs:serve`.
# Env:   VENV           tools venv (default .venv; set up by scripts/setup-browser.sh when missing)
#        CK_DOCS_VENV   the docs venv, made afresh (default ts/.cache/docs-venv)
#        CK_KERNEL_WHEEL  install this wheel (default: build one after rebuilding ts/labextension;
#                         CK_SKIP_LABEXTENSION=1 reuses ts/labextension when present)
#        CK_DOCS_EXTRA  more packages for the docs venv, e.g. "jupyterlite-pyodide-kernel==0.8.6"
#
# The docs venv holds the packages an author installs (their files, console scripts and shared data, so the
# labextension lands in <venv>/share/jupyter/labextensions as with any pip install); their dependencies are
# reused from $VENV through a .pth file rather than downloaded again (a full install takes a minute here).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SRC="$(cd "${1:-$ROOT/lite-site/docs}" && pwd)"
OUT="${2:-$SRC/_build/html}"
cd "$ROOT"
export VENV="${VENV:-$ROOT/.venv}"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import jupyterlite_sphinx, sphinx, jupyterlite_core" 2>/dev/null \
   || [ ! -d node_modules/pyodide ]; then
  bash scripts/setup-browser.sh --no-site --no-chromium
fi
VENV="$(cd "$VENV" && pwd)"
PY="$VENV/bin/python"

WHEEL="${CK_KERNEL_WHEEL:-}"
if [ -z "$WHEEL" ]; then
  # As scripts/build-site.sh: rebuilt unless CK_SKIP_LABEXTENSION=1 (then reused when present).
  if [ -z "${CK_SKIP_LABEXTENSION:-}" ] || [ ! -f ts/labextension/package.json ]; then
    bash ts/scripts/build-labextension.sh
  fi
  DIST="$ROOT/ts/.cache/docs-dist"
  rm -rf "$DIST"
  "$PY" -m pip wheel -q --disable-pip-version-check --no-deps --no-build-isolation "$ROOT" -w "$DIST"
  WHEEL="$(ls "$DIST"/concurrent_kernel-*.whl)"
fi

DOCS_VENV="${CK_DOCS_VENV:-$ROOT/ts/.cache/docs-venv}"
rm -rf "$DOCS_VENV"
"$PY" -m venv --without-pip "$DOCS_VENV"
PURELIB() { "$1" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])"; }
PURELIB "$PY" >"$(PURELIB "$DOCS_VENV/bin/python")/ck-base-venv.pth"
# The versions of the tools venv (so pip finds them in its cache), installed into the docs venv.
mapfile -t PKGS < <("$PY" -c "
from importlib.metadata import version
for name in ('jupyterlite-core', 'jupyterlite-sphinx', 'sphinx'):
    print(f'{name}=={version(name)}')")
# shellcheck disable=SC2206
EXTRA=(${CK_DOCS_EXTRA:-})
"$PY" -m pip --python "$DOCS_VENV/bin/python" install -q --disable-pip-version-check --no-deps --ignore-installed \
  "$WHEEL" "${PKGS[@]}" "${EXTRA[@]}" 2>&1 | grep -v "^WARNING: Location" || true
"$DOCS_VENV/bin/python" -c "import concurrent_kernel, jupyterlite_sphinx" \
  && [ -f "$DOCS_VENV/share/jupyter/labextensions/concurrent-kernel/package.json" ] \
  || { echo "[docs] installing $WHEEL into $DOCS_VENV failed" >&2; exit 1; }

rm -rf "$OUT" "$SRC/_contents"
# jupyterlite-sphinx's own silencing hides why `jupyter lite build` failed: keep its output, show it on failure.
LOG="$(mktemp)"
if ! (cd "$SRC" && "$DOCS_VENV/bin/sphinx-build" -b html -D jupyterlite_silence=0 . "$OUT") >"$LOG" 2>&1; then
  cat "$LOG"; rm -f "$LOG"; exit 1
fi
grep -E "WARNING|ERROR" "$LOG" || true
rm -f "$LOG" "$SRC/.jupyterlite.doit.db"
echo "[docs] built $OUT (JupyterLite site: $OUT/lite, $(du -sh "$OUT" | cut -f1))"
