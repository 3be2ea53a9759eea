"""Run the core's in-memory-transport tests (tests/test_core_*.py), the callback transport's tests
(tests/test_callback_transport.py) and the browser debugger's (tests/pyodide/debugger_in_pyodide.py) inside Pyodide
under Node.

"The same core in CPython and in the browser" is tested, not claimed: the very test files the CPython
suite runs are collected by pytest inside Pyodide 314 (CPython 3.14 on wasm32) with the Pyodide wheels of
the kernel's dependencies that the site ships. Node needs --experimental-wasm-stack-switching (JSPI) so
that sync pytest can block on the WebLoop.

Not run there, by design: the trio backend (trio's I/O needs epoll; the browser kernel is asyncio-only) and
the tests marked `threads` (Pyodide has none) and the trio variants.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent
PYODIDE_DIR = ROOT / "ts" / "labextension" / "static" / "pyodide"
EXTRA_WHEELS = HERE / ".cache" / "wheels"
EXTRA_REQUIREMENTS = ["pytest==9.2.0", "pluggy==1.7.0", "iniconfig==2.3.1", "packaging==26.3"]

#: The browser kernel runs on asyncio only; tests marked `threads` need OS threads, which Pyodide lacks.
DESELECT_NAMES = ["trio"]
DESELECT_MARKERS = "not threads"

pytestmark = [pytest.mark.timeout(900)]


def _extra_wheels() -> Path:
    EXTRA_WHEELS.mkdir(parents=True, exist_ok=True)
    if len(list(EXTRA_WHEELS.glob("*.whl"))) < len(EXTRA_REQUIREMENTS):
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps",
             "--only-binary=:all:", "--python-version", "3.14", "--platform", "any", "--implementation", "py",
             "--abi", "none", "-d", str(EXTRA_WHEELS), *EXTRA_REQUIREMENTS],
            check=True,
        )
    return EXTRA_WHEELS


def test_core_tests_pass_inside_pyodide() -> None:
    node = shutil.which("node")
    assert node, "node is required (Node >= 20)"
    if not (PYODIDE_DIR / "ck-manifest.json").exists():
        pytest.fail(f"{PYODIDE_DIR} is not built: run `bash scripts/setup-browser.sh` (or npm run build)")
    # debugger_in_pyodide.py: the browser's debugger backend, which needs Pyodide's stack switching (its name keeps
    # CPython's pytest from collecting it).
    tests = [*(ROOT / "tests").glob("test_core_*.py"), ROOT / "tests" / "test_callback_transport.py",
             HERE / "debugger_in_pyodide.py"]
    test_files = sorted(str(p.relative_to(ROOT)) for p in tests)
    assert test_files, "no tests/test_core_*.py to run"
    cmd = [
        node, "--experimental-wasm-stack-switching", str(HERE / "run_core_tests.mjs"),
        str(ROOT), str(PYODIDE_DIR), str(_extra_wheels()),
        *test_files, "-q", "-s", "-o", "addopts=", "-p", "no:cacheprovider", "-p", "no:anyio",
        "-p", "pyodide_runner", "-W", "ignore::pytest.PytestConfigWarning",
        "-W", "ignore::pytest.PytestUnknownMarkWarning",
        "-k", " and ".join(f"not {name}" for name in DESELECT_NAMES), "-m", DESELECT_MARKERS,
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=850)
    lines = (proc.stdout + proc.stderr).splitlines()
    out = "\n".join(line[:400] for line in lines if "_createPyodideModule" not in line)
    summary = [line for line in out.splitlines() if re.search(r"\d+ (passed|failed|error)", line)]
    print("\n[pyodide] " + (summary[-1] if summary else "no pytest summary"))
    assert proc.returncode == 0, out[-8000:]
    passed = int(re.search(r"(\d+) passed", summary[-1]).group(1)) if summary else 0
    assert passed >= 20, f"only {passed} core tests ran inside Pyodide:\n{out[-3000:]}"
