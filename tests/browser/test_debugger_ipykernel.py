"""ipykernel 7.4's own tests/test_debugger.py against the browser kernel, its requests relayed through a
JupyterLite page (tests/browser/ipykernel_relay.py stands in for the suite's `utils`).

The test file comes from ipykernel's sdist (PyPI, cached under tests/browser/.cache) and runs unchanged, in a
pytest process of its own, with its `utils` import pointed at the relay. On the CPython kernel, 9 of its 12 tests
pass (README: the 3 others ask for the stack of thread 1, ipykernel's main thread); the browser kernel's main shell
queue is thread 1, so all 12 are expected to pass here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

HERE = Path(__file__).parent
CACHE = HERE / ".cache"
VERSION = "7.4.0"

pytestmark = pytest.mark.timeout(1200)


def _ipykernel_tests() -> Path:
    """ipykernel's tests/ from its sdist, downloaded once."""
    source = CACHE / f"ipykernel-{VERSION}"
    if not (source / "tests" / "test_debugger.py").is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps",
                        "--no-binary", "ipykernel", f"ipykernel=={VERSION}", "-d", str(CACHE)], check=True)
        with tarfile.open(CACHE / f"ipykernel-{VERSION}.tar.gz") as tar:
            tar.extractall(CACHE, filter="data")
    return source / "tests"


def test_ipykernels_debugger_tests_pass_against_the_browser_kernel(base_url: str, tmp_path: Path) -> None:
    package = tmp_path / "ipk"
    package.mkdir()
    (package / "__init__.py").write_text("")
    shutil.copy(_ipykernel_tests() / "test_debugger.py", package / "test_debugger.py")
    shutil.copy(HERE / "ipykernel_relay.py", package / "utils.py")
    env = {**os.environ, "CK_RELAY_BASE_URL": base_url}
    env.pop("PYTEST_CURRENT_TEST", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "--timeout=300",
         "--rootdir", str(tmp_path), str(package / "test_debugger.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1100,
    )
    out = proc.stdout + proc.stderr
    print(out[-3000:])
    summary = re.findall(r"(\d+) (passed|failed|error)", out.splitlines()[-1] if out.splitlines() else "")
    counts = {kind: int(n) for n, kind in summary}
    assert proc.returncode == 0 and counts.get("passed") == 12, out[-6000:]
