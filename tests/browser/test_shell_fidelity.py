"""ipykernel's shell behaviour in the browser kernel (the same core as on CPython), in a JupyterLite notebook:
shell events, inline figures (matplotlib-inline's flush), `%gui` names, the shell API libraries read, `%store`.

matplotlib itself is a compiled Pyodide package that cannot be shipped offline here: the figures come from the
stand-in package in tests/standins (figures and pyplot enough for matplotlib-inline and IPython's formatters),
written into the kernel's file system by the first cell. What stays untested offline: matplotlib's own drawing in
Pyodide (its Agg canvas), which is not this kernel's code.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from lite import dump, new_notebook, open_lab, output_text

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

STANDINS = Path(__file__).resolve().parent.parent / "standins"


def _install_standin_cell() -> str:
    files = {str(p.relative_to(STANDINS)): p.read_text() for p in STANDINS.rglob("*.py")}
    return (
        "import os, sys\n"
        f"files = {files!r}\n"
        "for name, text in files.items():\n"
        "    path = os.path.join('/tmp/standins', name)\n"
        "    os.makedirs(os.path.dirname(path), exist_ok=True)\n"
        "    open(path, 'w').write(text)\n"
        "sys.path.insert(0, '/tmp/standins')\n"
        # not an import statement: the kernel would load the Pyodide distribution's matplotlib for one (online)
        "__import__('matplotlib').__version__"
    )


def _images(outputs: list[dict[str, Any]]) -> list[list[str]]:
    return [sorted(k for k in o.get("data", {}) if k.startswith("image/")) for o in outputs
            if o["output_type"] == "display_data" and any(k.startswith("image/") for k in o.get("data", {}))]


def test_shell_events_inline_figures_and_the_ipykernel_api(page: Any, base_url: str) -> None:
    open_lab(page, base_url)
    nb = new_notebook(page, "shell-fidelity-test.ipynb", [
        "def after(result):\n    print('post_run_cell', result.success)\n"
        "get_ipython().events.register('post_run_cell', after)",
        "6 * 7",
        _install_standin_cell(),
        "import matplotlib.pyplot as plt\nplt.plot([1, 2]);",
        "%config InlineBackend.figure_format = 'svg'\nplt.hist([1, 2, 2]);",
        "fig = plt.figure()\nplt.plot([3])\nplt.show()",
        "get_ipython().events.unregister('post_run_cell', after)\n%gui asyncio",
        "ip = get_ipython()\ntype(ip).__name__, ip.parent_header['header']['msg_type'], 'IPKernelApp' in ip.config",
        "answer = 42\n%store answer",
    ])
    out = nb.run_and_wait(0)
    assert output_text(out) == "post_run_cell True\n", dump(out)
    out = nb.run_and_wait(1)
    assert [o["output_type"] for o in out] == ["execute_result", "stream"], dump(out)
    assert output_text(out) == "42\npost_run_cell True\n", dump(out)
    out = nb.run_and_wait(2, 120)
    assert "standin" in output_text(out), dump(out)
    out = nb.run_and_wait(3)
    assert _images(out) == [["image/png"]], dump(out)
    out = nb.run_and_wait(4)
    assert _images(out) == [["image/svg+xml"]], dump(out)
    out = nb.run_and_wait(5)
    assert _images(out) == [["image/svg+xml"]], dump(out)  # only this cell's figure: the earlier ones were closed
    out = nb.run_and_wait(6)
    assert not [o for o in out if o["output_type"] == "error"] and "post_run_cell" not in output_text(out), dump(out)
    out = nb.run_and_wait(7)
    assert out[-1]["data"]["text/plain"] == "('ZMQInteractiveShell', 'execute_request', True)", dump(out)
    out = nb.run_and_wait(8)
    assert output_text(out) == "Stored 'answer' (int)\n", dump(out)


# In the page before its scripts: what the kernel workers ask the page for synchronously (the notebook's files), and
# where the first kernel_info_reply comes among them.
_DRIVE_REQUESTS = """
window.__ckAsked = [];
const PageWorker = window.Worker;
window.Worker = class extends PageWorker {
  constructor(...args) {
    super(...args);
    this.addEventListener('message', ev => {
      const d = ev.data;
      if (d && d.type === 'drive-request') window.__ckAsked.push(`${d.request.method} ${d.request.path}`);
      if (d && d.type === 'msg' && d.msgJson.includes('"msg_type": "kernel_info_reply"')) {
        window.__ckAsked.push('kernel_info_reply');
      }
    });
  }
};
"""


def test_a_kernel_starts_without_asking_the_page_for_its_profile(page: Any, base_url: str) -> None:
    """The page looks for a profile in the notebook's files (.ipython) while Python loads and tells the worker, so
    the kernel's start does not ask it synchronously while the page's thread is busy starting the app (20-25 ms of a
    reload); and kernel_info is answered as it arrives, before any file request."""
    page.add_init_script(_DRIVE_REQUESTS)
    query = urllib.parse.urlencode({"kernel": "concurrent", "code": "get_ipython().profile_dir.location",
                                    "execute": "1"})
    page.goto(f"{base_url}repl/index.html?{query}")
    page.locator(".jp-OutputArea-output", has_text="profile_default").first.wait_for(timeout=120_000)
    assert "'/home/pyodide/.ipython/profile_default'" in page.locator(".jp-OutputArea-output").last.inner_text()
    asked = page.evaluate("window.__ckAsked")
    assert asked and asked[0] == "kernel_info_reply", asked
    assert not [r for r in asked if ".ipython" in r], asked


def test_a_profile_in_the_sites_files_is_used(page: Any, base_url: str) -> None:
    """`.ipython` in the notebook files (the site's contents, kept in the browser's storage): its startup files and
    config apply to the kernels started after it, and `%store` keeps values there across kernels."""
    open_lab(page, base_url)
    writer = new_notebook(page, "profile-writer-test.ipynb", [
        "import os\n"
        "os.makedirs('/drive/.ipython/profile_default/startup', exist_ok=True)\n"
        "open('/drive/.ipython/profile_default/startup/00-site.py', 'w').write('from_site_startup = 42\\n')\n"
        "open('/drive/.ipython/profile_default/ipython_kernel_config.py', 'w')"
        ".write('c.IPKernelApp.exec_lines = [\"from_site_config = 7\"]\\n')\n"
        "'written'",
    ])
    out = writer.run_and_wait(0)
    assert out[-1]["data"]["text/plain"] == "'written'", dump(out)
    reader = new_notebook(page, "profile-reader-test.ipynb", [
        "from_site_startup, from_site_config, get_ipython().profile_dir.location",
        "kept = 'across kernels'\n%store kept",
    ])
    out = reader.run_and_wait(0)
    assert out[-1]["data"]["text/plain"] == "(42, 7, '/drive/.ipython/profile_default')", dump(out)
    out = reader.run_and_wait(1)
    assert output_text(out) == "Stored 'kept' (str)\n", dump(out)
    third = new_notebook(page, "profile-third-test.ipynb", ["%store -r kept\nkept"])
    out = third.run_and_wait(0)
    assert out[-1]["data"]["text/plain"] == "'across kernels'", dump(out)
