"""Real notebooks run with nbclient on ipykernel 7.4 and on this kernel (asyncio and trio), compared cell by cell.

Every difference is either fixed or listed below with its reason; a listed difference that no longer shows fails
the test too, so the list stays true. Where this kernel is better on purpose, the difference is listed and kept.
To point the check at another kernel, see harness.py (`nbclient_runner`, or any runner returning a notebook).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from corpus.harness import NOTEBOOKS, Notebook, compare, corpus, nbclient_runner, options_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

REFERENCE = "ck-corpus-ipykernel"

# ---------------------------------------------------------------------------------------------- known differences

STREAM_ORDER = (
    "stdout and stderr arrive in the order the cell wrote them; ipykernel sends each stream's buffered text "
    "separately, so it shows all of stdout before stderr (this kernel is better here and keeps it)"
)
MORE_MAGICS = "%lsmagic lists this kernel's own magics too (%asyncio, %callers, %stop, %tasks, %thread, %trio)"
CONNECT_INFO = (
    "%connect_info: the connection file's own values (ports, key, kernel_name) and this kernel's wording of how to "
    "connect"
)
QTCONSOLE = "%qtconsole says it is not available here; ipykernel tries to start a Qt console and shows nothing"
QT_ERROR = (
    "%gui qt without a Qt binding: this kernel's one-line error instead of IPython's table of Qt bindings"
)
ASYNCIO_ON_TRIO = (
    "asyncio code on a trio kernel: `%gui asyncio` says to use %%asyncio or --backend asyncio, and asyncio futures "
    "have no running asyncio loop (trio is this kernel's choice; ipykernel runs asyncio)"
)

#: (notebook path below notebooks/, code cell index, backend or None for both) -> why the outputs differ
KNOWN: dict[tuple[str, int, str | None], str] = {
    ("everyday/everyday.ipynb", 0, None): STREAM_ORDER,
    ("ipython/Beyond Plain Python.ipynb", 30, None): MORE_MAGICS,
    ("ipython/Beyond Plain Python.ipynb", 46, None): CONNECT_INFO,
    ("ipython/Beyond Plain Python.ipynb", 47, None): QTCONSOLE,
    ("ipython/Cell Magics.ipynb", 0, None): MORE_MAGICS,
    ("ipython/Terminal Usage.ipynb", 3, None): QT_ERROR,
    ("everyday/everyday.ipynb", 40, "trio"): ASYNCIO_ON_TRIO,
    ("everyday/everyday.ipynb", 55, "trio"): ASYNCIO_ON_TRIO,
    ("everyday/everyday.ipynb", 56, "trio"): ASYNCIO_ON_TRIO,
    ("ipywidgets/Widget Asynchronous.ipynb", 1, "trio"): ASYNCIO_ON_TRIO,
    ("ipywidgets/Widget Asynchronous.ipynb", 4, "trio"): ASYNCIO_ON_TRIO,
}

#: Cells whose output depends on timing on every kernel (not compared): (notebook, code cell index) -> why
VOLATILE: dict[tuple[str, int], str] = {
    ("ipython/Beyond Plain Python.ipynb", 27): (
        "`df -h` in a %%bash cell: the disk's free space changes while the tests (and the machine) write to it"
    ),
    ("ipython/Script Magics.ipynb", 13): (
        "loops over a background script's output until nbclient's timeout interrupts it: how much it prints "
        "depends on the machine's speed"
    ),
}


# ---------------------------------------------------------------------------------------------- kernels


@pytest.fixture(scope="session")
def corpus_kernels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Kernelspecs for the reference (ipykernel from this environment) and this kernel on both backends."""
    root = tmp_path_factory.mktemp("corpus-kernels")
    specs = {
        REFERENCE: [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        **{
            f"ck-corpus-{backend}": [sys.executable, "-m", "concurrent_kernel", "-f", "{connection_file}",
                                     "--backend", backend]
            for backend in ("asyncio", "trio")
        },
    }
    for name, argv in specs.items():
        (root / name).mkdir()
        spec = {"argv": argv, "display_name": name, "language": "python", "interrupt_mode": "signal"}
        (root / name / "kernel.json").write_text(json.dumps(spec))
    return root


_reference_runs: dict[Path, Future[Notebook]] = {}
_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="corpus")


def reference_run(path: Path, kernels: Path) -> Future[Notebook]:
    """ipykernel's run of `path`, started once per session (both backends compare with the same run) and run
    beside this kernel's: most of a notebook's time is waiting (kernel start, sleeps, timeouts)."""
    if path not in _reference_runs:
        _reference_runs[path] = _pool.submit(nbclient_runner(REFERENCE, kernels), path, options_for(path))
    return _reference_runs[path]


def notebook_id(path: Path) -> str:
    return path.relative_to(NOTEBOOKS).as_posix()


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    yield request.param


@pytest.mark.parametrize("path", corpus(), ids=notebook_id)
def test_notebook_gives_ipykernels_outputs(path: Path, backend: str, corpus_kernels: Path) -> None:
    name = notebook_id(path)
    pending = reference_run(path, corpus_kernels)
    actual = nbclient_runner(f"ck-corpus-{backend}", corpus_kernels)(path, options_for(path))
    reference = pending.result()
    differences = {d.index: d for d in compare(reference, actual) if (name, d.index) not in VOLATILE}
    listed = {index for (nb, index, only) in KNOWN if nb == name and only in (None, backend)}
    unexpected = [d.describe() for index, d in sorted(differences.items()) if index not in listed]
    gone = sorted(listed - set(differences))
    assert not unexpected, f"{name} ({backend}) differs from ipykernel:\n" + "\n".join(unexpected)
    assert not gone, f"{name} ({backend}): listed differences no longer seen in cells {gone}: update KNOWN"
