#!/usr/bin/env bash
# Install everything the browser kernel needs to build, serve and test, then build the site.
# Idempotent and non-interactive. Env: VENV (default .venv).
# Flags: --no-site (skip the site build), --no-chromium (skip Chromium: building needs no browser, only tests do).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
export VENV="${VENV:-$ROOT/.venv}"
BUILD_SITE=1
CHROMIUM=1
for arg in "$@"; do
  case "$arg" in
    --no-site) BUILD_SITE=0 ;;
    --no-chromium) CHROMIUM=0 ;;
    *) echo "usage: $0 [--no-site] [--no-chromium]" >&2; exit 2 ;;
  esac
done

if [ "$CHROMIUM" = 1 ] && [ ! -x /usr/bin/chromium ]; then
  echo "[setup] installing chromium (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating venv $VENV"
  python3 -m venv "$VENV"
fi
VENV="$(cd "$VENV" && pwd)"
PIP_PKGS=(
  "jupyterlite-core==0.8.6" "jupyter_server" "jupyter_builder==1.3.0"
  "jupyterlab_widgets==3.0.17" "jupyterlite-pyodide-kernel==0.8.6"
  "playwright" "pytest-playwright" "pytest" "hatchling" "uv" "packaging"
  "jupyterlab==4.6.*" "jupyterlite-sphinx==0.23.0" "sphinx>=9,<10"
)
STAMP="$VENV/.ck-browser-setup"
WANT="$(printf '%s\n' "${PIP_PKGS[@]}" | sha256sum | cut -c1-16)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  echo "[setup] pip install browser tooling into $VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PIP_PKGS[@]}" 2>&1 \
    | grep -v "^WARNING: Location" || true
  "$VENV/bin/python" -c "import jupyterlite_core, jupyterlite_sphinx, sphinx, playwright, pytest_playwright, hatchling"
  echo "$WANT" >"$STAMP"
fi

NODE_MAJOR="$(node -p 'process.versions.node.split(".")[0]')"
NODE_MINOR="$(node -p 'process.versions.node.split(".")[1]')"
if [ "$NODE_MAJOR" -lt 20 ] || { [ "$NODE_MAJOR" -eq 20 ] && [ "$NODE_MINOR" -lt 19 ]; }; then
  echo "[setup] Node >= 20.19 is required (rspack); found $(node --version)" >&2
  exit 1
fi
if [ ! -d node_modules/pyodide ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "[setup] npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

if [ "$BUILD_SITE" = 1 ]; then
  CK_SETUP_RUNNING=1 bash scripts/build-site.sh
fi
echo "[setup] browser tooling ready (venv: $VENV)"
