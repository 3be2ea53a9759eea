"""The kernel in a real JupyterLab 4.6 page: what the notebook shows for the kernel's status."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from e2e_helpers import spec_name

from .lab import LabNotebook, output_text

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_typed_cell_runs_and_indicator_returns_to_idle(
    lab_notebook: Callable[..., LabNotebook], backend: str
) -> None:
    nb = lab_notebook(spec_name(backend))
    assert nb.status() == "idle"
    nb.type_cell(0, "import sys; print('ran on', sys.version_info[0])")
    nb.run_cell_keyboard(0)
    assert "ran on 3" in output_text(nb.wait_done(0))
    nb.wait_status("idle")
