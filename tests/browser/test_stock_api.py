"""Notebooks written for the stock JupyterLite kernel (jupyterlite-pyodide-kernel) run on this one, offline.

They install with `await piplite.install([...])` and use packages that require ipykernel and open comms with
`ipykernel.comm.Comm` (as older widget libraries do). The site is the authored one of tests/browser/test_packages.py
(its wheels shipped through `piplite_urls`, a package index and a Pyodide distribution stood in locally); every
request is recorded and none may leave the machine.
"""

from __future__ import annotations

from typing import Any

import pytest
from lite import dump, new_notebook, open_lab, output_text

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


def _errors(out: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in out if o["output_type"] == "error"]


_COMM_TARGET = """
window.__ckStock = {opened: [], got: []};
kernel.registerCommTarget('ck-stock-demo', (comm, msg) => {
  window.__ckStock.opened.push(msg.content.data);
  comm.onMsg = m => window.__ckStock.got.push(m.content.data);
  comm.send({reply: 'from the page'});
});
return true;
"""


def test_a_notebook_written_for_the_stock_kernel(page: Any, authored_url: str, requests_seen: list[str]) -> None:
    open_lab(page, authored_url)
    nb = new_notebook(
        page,
        "stock-way-test.ipynb",
        [
            # 0: the stock kernel's way to install, with its arguments
            "import piplite\nawait piplite.install(['ck-ipykernel-widget'], keep_going=True, deps=True, pre=False)",
            # 1: the package that requires ipykernel is in, with its dependency satisfied by the stand-in
            "import ck_ipykernel_widget, ipykernel, importlib.metadata\n"
            "print(ck_ipykernel_widget.VALUE, ipykernel.__version__, importlib.metadata.version('ipykernel'),"
            " ipykernel.version_info)",
            # 2: a comm opened by the package with ipykernel.comm.Comm
            "comm, received = ck_ipykernel_widget.open_comm({'hello': 1})\nawait __import__('asyncio').sleep(1)\n"
            "comm.send({'again': 2})\nreceived",
            # 3: CommManager is the kernel's comm manager
            "from ipykernel.comm import CommManager\nCommManager() is get_ipython().kernel.comm_manager",
            # 4: verbose output, as pip prints it
            "await piplite.install('ck-shipped-demo', verbose=True)",
            # 5: a package in none of the site's sources: the stock kernel's error class catches it
            "try:\n    await piplite.install('ck-not-anywhere')\nexcept piplite.PiplitePyPIDisabled as e:\n"
            "    print('not available:', e)",
            # 6: not awaited: it installs anyway, as the stock kernel's does
            "task = piplite.install('ck-index-demo')\nawait task\nimport ck_index_demo\nck_index_demo.VALUE",
            # 7: %pip and micropip agree the stand-in is installed
            "%pip install ipykernel\nimport micropip\nawait micropip.install('ck-ipykernel-widget')\n"
            "sorted(p for p in micropip.list() if p.startswith(('ipykernel', 'ck-ipykernel')))",
        ],
    )
    nb.js(_COMM_TARGET)
    out = nb.run_and_wait(0, 120)
    assert not _errors(out), dump(out)
    out = nb.run_and_wait(1, 60)
    assert output_text(out).strip() == "widget 6.29.5 6.29.5 (6, 29, 5)", dump(out)

    out = nb.run_and_wait(2, 60)
    assert not _errors(out) and out[-1]["data"]["text/plain"] == "[{'reply': 'from the page'}]", dump(out)
    page.wait_for_function("() => window.__ckStock.got.length === 1", timeout=30_000)
    assert page.evaluate("window.__ckStock") == {"opened": [{"hello": 1}], "got": [{"again": 2}]}

    assert nb.run_and_wait(3, 30)[0]["data"]["text/plain"] == "True"

    text = output_text(nb.run_and_wait(4, 60))
    assert "ck-shipped-demo" in text and "Successfully installed" in text, text

    text = output_text(nb.run_and_wait(5, 60))
    assert text.startswith("not available:") and "ck-not-anywhere" in text, text

    out = nb.run_and_wait(6, 60)
    assert not _errors(out) and out[-1]["data"]["text/plain"] == "'from the index'", dump(out)

    out = nb.run_and_wait(7, 60)
    assert not _errors(out) and out[-1]["data"]["text/plain"] == "['ck-ipykernel-widget', 'ipykernel']", dump(out)
    assert not any("/ipykernel-" in u and "/pypi/" in u for u in requests_seen), "the real ipykernel was looked up"
