#!/usr/bin/env bash
# Usage: bash scripts/ipykernel_suite.sh [--backend asyncio|trio] [--keep] [pytest args or ipykernel test files...]
#
# Runs ipykernel 7.4's own public test suite (tests/ of its sdist) over ZMQ against this project's kernel: the
# suite starts its kernels through jupyter_client by the kernelspec name "python3", so a temporary JUPYTER_PATH
# whose kernels/python3/kernel.json is this project's kernelspec makes every kernel it starts ours.
# The sdist comes from PyPI into a cache dir (never committed); pytest-asyncio and flaky, which the suite's
# conftest needs, and pytest-cov (its subshell tests read --cov) are installed there too (pip --target), so .venv and the project's own test run are untouched.
# Without file arguments it runs the files that talk to a kernel over ZMQ (DEFAULT_FILES below). The other files
# test ipykernel's internals in-process (IPKernelApp, IPythonKernel, OutStream, ...) and do not apply.
# Writes a per-file table (passed/failed/errors/skipped) and the failing tests with their first error line.
# Env: VENV (default .venv), CK_IPYKERNEL_SUITE_CACHE (default ~/.cache/concurrent-kernel/ipykernel-7.4.0),
# CK_SUITE_TIMEOUT (per-test timeout in s, default 120: ipykernel's own 30 is tight on a loaded 2-core machine).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
VERSION=7.4.0
CACHE="${CK_IPYKERNEL_SUITE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/concurrent-kernel/ipykernel-$VERSION}"
DEFAULT_FILES=(test_message_spec.py test_kernel.py test_async.py test_subshells.py test_debugger.py
               test_matplotlib_eventloops.py)

BACKEND=asyncio
KEEP=0
ARGS=()
FILES=()
while [ $# -gt 0 ]; do
    case "$1" in
        --backend) BACKEND="$2"; shift 2 ;;
        --backend=*) BACKEND="${1#--backend=}"; shift ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n 2,13p "$0"; exit 0 ;;
        test_*.py*|tests/test_*.py*) FILES+=("tests/${1#tests/}"); shift ;;
        *) ARGS+=("$1"); shift ;;
    esac
done
if [ ${#FILES[@]} -eq 0 ]; then
    for f in "${DEFAULT_FILES[@]}"; do FILES+=("tests/$f"); done
fi

SRC="$CACHE/ipykernel-$VERSION"
SITE="$CACHE/site"
mkdir -p "$CACHE"
if [ ! -f "$SRC/tests/utils.py" ]; then
    # Only ipykernel itself as source: its build dependencies may come as wheels.
    "$PY" -m pip download -q --no-deps --no-binary ipykernel "ipykernel==$VERSION" -d "$CACHE" 2>&1 | grep -v "^WARNING: Location" >&2 || true
    tar -xzf "$CACHE/ipykernel-$VERSION.tar.gz" -C "$CACHE"
fi
if [ ! -d "$SITE/pytest_asyncio" ] || [ ! -d "$SITE/flaky" ] || [ ! -d "$SITE/pytest_cov" ]; then
    "$PY" -m pip install -q --no-deps --target "$SITE" "pytest-asyncio>=0.23.5,<2" "flaky>=3.8" \
        "pytest-cov" "coverage" 2>&1 \
        | grep -v "^WARNING: Location" >&2 || true
fi
"$PY" -c "import ipykernel, pytest_timeout, psutil, debugpy" 2>/dev/null || {
    echo "ipykernel_suite: .venv lacks ipykernel/pytest-timeout/psutil/debugpy: run bash scripts/test.sh once" >&2
    exit 2
}

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ck-ipykernel-suite.XXXXXX")"
cleanup() { [ "$KEEP" = 1 ] && echo "kept $WORK" || rm -rf "$WORK"; }
trap cleanup EXIT
mkdir -p "$WORK/jupyter/kernels/python3"
"$PY" - "$BACKEND" "$WORK/jupyter/kernels/python3/kernel.json" <<'EOF'
import json, sys
from concurrent_kernel._kernelspec import kernelspec_dict
backend, path = sys.argv[1:3]
spec = kernelspec_dict(display_name=f"concurrent-kernel ({backend}) as python3", backend=backend)
json.dump(spec, open(path, "w"), indent=1)
print("kernelspec python3 ->", " ".join(spec["argv"]))
EOF

# The matplotlib GUI test needs a display: use a virtual one when there is none.
RUN=()
if [ -z "${DISPLAY:-}" ] && command -v xvfb-run >/dev/null 2>&1; then
    RUN=(xvfb-run -a)
fi

cd "$SRC"
set +e
JUPYTER_PATH="$WORK/jupyter" PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" \
    ${RUN[@]+"${RUN[@]}"} "$PY" -m pytest \
    -o addopts="" -o asyncio_default_fixture_loop_scope=function -o timeout="${CK_SUITE_TIMEOUT:-120}" -p no:cacheprovider -q -rfE \
    --junitxml="$WORK/junit.xml" "${FILES[@]}" ${ARGS[@]+"${ARGS[@]}"}
status=$?
set -e

"$PY" - "$WORK/junit.xml" "$BACKEND" <<'EOF'
import re
import sys
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict

path, backend = sys.argv[1:3]
try:
    root = ET.parse(path).getroot()
except (OSError, ET.ParseError) as exc:
    sys.exit(f"no junit report: {exc}")
ANSI = re.compile(r"(?:\x1b|#x1B)\[[0-9;]*m")  # junit writes ESC as the text "#x1B"
EXC = re.compile(r"^(?:E\s+)?((?:[\w.]+)(?:Error|Exception|Empty|Interrupt|Exit)\b:?.*)$")


def reason(child: ET.Element) -> str:
    """The most telling line: the innermost exception a cell raised (the kernel's traceback is in the
    message), else the first line of pytest's message."""
    message = ANSI.sub("", child.get("message") or "")
    text = ANSI.sub("", child.text or "")
    lines = [line.strip() for line in (message + "\n" + text).splitlines() if line.strip()]
    first = lines[0] if lines else "?"
    if first.endswith(":") or first.startswith("RuntimeError: Execution failed"):
        found = [m.group(1) for line in lines if (m := EXC.match(line))]
        inner = [f for f in found if not f.startswith("RuntimeError: Execution failed")]
        if inner:
            return inner[-1][:200]
    return first[:200]


counts: dict[str, Counter] = defaultdict(Counter)
failing = []
# flaky reruns a marked test and reports each attempt: count a test once, by its last attempt.
last = {(case.get("classname"), case.get("name")): case for case in root.iter("testcase")}
for case in last.values():
    file = case.get("classname", "").split(".")[1] + ".py" if "." in case.get("classname", "") else "?"
    outcome = "passed"
    for child in case:
        if child.tag in ("failure", "error", "skipped"):
            outcome = {"failure": "failed", "error": "errors", "skipped": "skipped"}[child.tag]
            if outcome != "skipped":
                failing.append(f"{file}::{case.get('name')}: {outcome}: {reason(child)}")
    counts[file][outcome] += 1
print(f"\nipykernel {'7.4.0'} suite against concurrent-kernel ({backend})")
print("| file | passed | failed | errors | skipped |\n|---|---|---|---|---|")
total: Counter = Counter()
for file, c in sorted(counts.items()):
    total.update(c)
    print(f"| {file} | {c['passed']} | {c['failed']} | {c['errors']} | {c['skipped']} |")
print(f"| total | {total['passed']} | {total['failed']} | {total['errors']} | {total['skipped']} |")
if failing:
    print("\nfailing:")
    for line in failing:
        print("-", line)
EOF
exit "$status"
