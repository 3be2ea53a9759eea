# Sourced by the set-up scripts: create .venv (or $VENV) and install this package with the given extras.
# Usage: install_venv EXTRAS   (e.g. "test,bench")
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
install_venv() {
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q -U pip
    "$VENV/bin/python" -m pip install -q -e ".[$1]"
    "$VENV/bin/concurrent-kernel" install --sys-prefix
}
