"""The parts of the browser's package service that need no Pyodide: `%pip` rewriting and finding a cell's imports.

The rest (micropip, the Pyodide lock, loading) runs in the browser: tests/browser/test_packages.py.
"""

from __future__ import annotations

import ast
import asyncio
import os

import pytest
from IPython.core.inputtransformer2 import TransformerManager

from concurrent_kernel.services import packages


def test_pip_lines_become_an_awaited_install() -> None:
    lines = packages.pip_lines(["%pip install a 'b>=1'\n", "if x:\n", "    %pip list\n", "y = '%pip'\n"])
    call = "await __import__('concurrent_kernel.services.packages', fromlist=['pip']).pip("
    assert lines[0] == call + "\"install a 'b>=1'\")\n"
    assert lines[2] == "    " + call + "'list')\n"
    assert lines[1] == "if x:\n" and lines[3] == "y = '%pip'\n"
    # The rewritten cell is valid Python with top-level await.
    ast.parse("".join(lines).replace("if x:", "if True:"))


@pytest.mark.parametrize(
    ("cell", "modules"),
    [
        ("import numpy as np, os.path\nfrom pandas.api import types\nfrom . import local", ["numpy", "os", "pandas"]),
        ("def f():\n    import scipy.stats\n", ["scipy"]),
        ("%matplotlib inline", ["matplotlib"]),
        ("%pylab", ["matplotlib"]),
        ("x = 1", []),
    ],
)
def test_imported_modules_of_a_cell(cell: str, modules: list[str]) -> None:
    code = TransformerManager().transform_cell(cell)
    assert packages.imported_modules(ast.parse(code)) == modules


def test_setup_selects_the_inline_backend_as_the_cpython_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MPLBACKEND", raising=False)
    monkeypatch.setattr(packages, "_settings", dict(packages._settings))

    class Kernel:
        """A kernel whose shell never comes up: setup's transformer task just waits (and is cancelled)."""

        def __init__(self) -> None:
            self.shell_ready = asyncio.Event().wait()

    async def run() -> None:
        packages.setup(Kernel(), '{"pipliteUrls": ["https://example.org/pypi/all.json"]}')

    asyncio.run(run())

    assert os.environ["MPLBACKEND"] == packages.INLINE_BACKEND == "module://matplotlib_inline.backend_inline"
    assert packages._settings["pipliteUrls"] == ["https://example.org/pypi/all.json"]
