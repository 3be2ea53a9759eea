"""The browser kernel under faults: Python dying in its worker, malformed page messages, long mixed load.

When Python dies (a Pyodide fatal error: `os._exit`, a C stack overflow) the kernel does what a Jupyter server does
for a kernel process that died: the running cell ends with the reason, the clients get the status "restarting"
(JupyterLab shows "Kernel Restarting" and reconnects) and Python starts again in a new worker under the same kernel
id. The notebook itself is untouched.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from lite import Notebook, dump, new_notebook, open_lab, output_text

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

_KERNEL_STATUS_TEXT = """
() => {
  const bar = document.getElementById('jp-main-statusbar');
  const item = bar && [...bar.querySelectorAll('.jp-StatusBar-TextItem')].find(n => n.textContent.includes('|'));
  return item ? item.textContent.trim() : null;
}
"""

_RECORD_STATUS = """
const rec = [];
panel.sessionContext.statusChanged.connect((_, s) => rec.push(s));
window.__ckStatus = rec;
return true;
"""


def _died(nb: Notebook, i: int, reason: str) -> None:
    """Cell i killed Python: it ends with KernelDied and the reason, JupyterLab says the kernel restarts (one click
    on Ok), and the kernel answers again, with none of the old state."""
    page = nb.page
    out = nb.wait_done(i, 60)
    errors = [o for o in out if o["output_type"] == "error"]
    assert errors and errors[-1]["ename"] == "KernelDied", dump(out)
    assert reason in errors[-1]["evalue"] and "It restarts" in errors[-1]["evalue"], dump(out)
    dialog = page.locator(".jp-Dialog", has_text="Kernel Restarting")
    dialog.wait_for(timeout=30_000)
    dialog.locator(".jp-mod-accept").click()
    page.wait_for_function("() => window.__ckStatus.includes('autorestarting')", timeout=30_000)
    page.wait_for_function(f"() => ({_KERNEL_STATUS_TEXT})()?.endsWith('Idle')", timeout=120_000)


@pytest.mark.parametrize("isolated", [True, False], ids=["isolated", "not-isolated"])
def test_python_dying_restarts_the_kernel_in_the_page(
    page: Any, base_url: str, plain_url: str, isolated: bool
) -> None:
    open_lab(page, base_url if isolated else plain_url)
    nb = new_notebook(
        page,
        "death-test.ipynb",
        [
            "a = 1\na",
            "import os\nos._exit(3)",
            "'a' in globals()",
            "import json\nx = []\nfor _ in range(300_000):\n    x = [x]\njson.dumps(x)",
            "a = 2\nprint('after', a)",
        ],
    )
    kernel_id = nb.kernel["id"]
    nb.js(_RECORD_STATUS)
    assert nb.run_and_wait(0)[0]["data"]["text/plain"] == "1"
    # An edit not yet saved: the restart must leave it alone.
    nb.js("panel.content.widgets[2].model.sharedModel.setSource(\"'a' in globals()  # edited\"); return true;")

    nb.run(1)
    _died(nb, 1, "Python exited with status 3")
    out = nb.run_and_wait(2, 60)
    assert out[0]["data"]["text/plain"] == "False", dump(out)
    assert nb.js("return panel.content.widgets[2].model.sharedModel.getSource();") == "'a' in globals()  # edited"
    assert nb.js("return panel.context.model.dirty;") is True
    assert nb.js("return kernel.id;") == kernel_id
    assert nb.js("return window.concurrentKernels.get(kernel.id).restarts;") == 1

    nb.js("window.__ckStatus.length = 0; return true;")
    nb.run(3)
    _died(nb, 3, "Maximum call stack size exceeded")
    assert "after 2" in output_text(nb.run_and_wait(4, 60))
    assert nb.js("return window.concurrentKernels.get(kernel.id).restarts;") == 2
    # One worker for the kernel, plus at most the pool's spare: the dead ones are gone.
    time.sleep(3)
    workers = [w.url for w in page.workers if "ck-worker" in w.url]
    assert 1 <= len(workers) <= 2, workers
