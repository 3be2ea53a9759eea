"""The debugger in the cell as a JupyterLab 4.6 user meets it: the ipdb prompt in the stdin box, the toolbar's
interrupt button at the prompt (CPython kernel, both backends)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from e2e_helpers import spec_name

from .lab import LabNotebook, output_text

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_breakpoint_prompt_and_interrupt_button(
    lab_notebook: Callable[..., LabNotebook], lab_page: Any, backend: str
) -> None:
    nb = lab_notebook(spec_name(backend), cells=["", "print('next cell ran')"])
    nb.type_cell(0, "answer = 40; breakpoint(); print('went on')")
    nb.run_cell_keyboard(0)
    box = lab_page.locator(f"{nb.panel_selector()} .jp-Stdin-input").nth(0)
    box.wait_for(timeout=30_000)
    prompt = lab_page.locator(f"{nb.panel_selector()} .jp-Stdin-prompt").nth(0)
    assert "ipdb>" in prompt.inner_text(), "IPython's debugger, not stdlib pdb"
    box.fill("p answer + 2")
    box.press("Enter")
    nb.wait_output(0, "42", timeout=30)
    lab_page.locator(f"{nb.panel_selector()} .jp-Stdin-input").nth(1).wait_for(timeout=30_000)
    assert nb.is_running(0) and nb.status() == "busy"
    nb.interrupt_button().click()
    text = output_text(nb.wait_done(0, timeout=30))
    assert "KeyboardInterrupt: Interrupted by user" in text and "went on" in text, text
    nb.wait_status("idle")
    nb.run_cell_keyboard(1)
    assert "next cell ran" in output_text(nb.wait_done(1, timeout=30))
