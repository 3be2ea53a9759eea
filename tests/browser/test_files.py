"""The notebook's files in the browser kernel: JupyterLite's contents mounted with its DriveFS at /drive.

Cross-origin isolated pages answer the file system through shared buffers, other pages through JupyterLite's
service worker; with neither, the kernel works and says the files are not available.
"""

from __future__ import annotations

import base64
import time
from typing import Any
from urllib.parse import urlsplit

import authored_site
import pytest
from lite import dump, new_notebook, open_lab, output_text

from conftest import LOCAL_HOSTS

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

_GET = """async ({path}) => { const m = await window.jupyterapp.serviceManager.contents.get(path, {content: true});
  return {format: m.format, content: m.content}; }"""
_SAVE = """async ({path, text}) => { await window.jupyterapp.serviceManager.contents.save(path,
  {type: 'file', format: 'text', content: text}); return true; }"""


def _read(page: Any, path: str) -> str:
    """A file's text as the file browser has it (DriveFS stores what Python writes as base64)."""
    got = page.evaluate(_GET, {"path": path})
    return base64.b64decode(got["content"]).decode() if got["format"] == "base64" else got["content"]


def _open(page: Any, url: str) -> None:
    open_lab(page, url)


@pytest.mark.parametrize("isolated", [True, False], ids=["shared-buffer", "service-worker"])
def test_notebook_folder_is_cwd_and_files_go_both_ways(
    page: Any, authored_url: str, authored_plain_url: str, isolated: bool
) -> None:
    url = authored_url if isolated else authored_plain_url
    _open(page, url)
    assert page.evaluate("crossOriginIsolated") is isolated
    if not isolated:
        page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=60_000)
    page.evaluate(_SAVE, {"path": "data/uploaded.txt", "text": "from the file browser"})
    nb = new_notebook(
        page,
        "data/files-test.ipynb",
        [
            "import os\nprint(os.getcwd())\nprint(open('table.csv').read())\nprint(open('../top.txt').read())",
            "print(open('uploaded.txt').read())\nsorted(os.listdir('.'))",
            "with open('written.txt', 'w') as f:\n    f.write('written by python')\n"
            "open('blob.bin', 'wb').write(bytes(range(256)) * 64)\nos.makedirs('made/inner', exist_ok=True)\n"
            "open('made/inner/x.txt', 'w').write('deep')",
            "open('blob.bin', 'rb').read() == bytes(range(256)) * 64",
        ],
    )
    out = nb.run_and_wait(0)
    text = output_text(out)
    assert "/drive/data" in text and authored_site.CSV in text and "at the root" in text, dump(out)
    out = nb.run_and_wait(1)
    text = output_text(out)
    assert "from the file browser" in text and "'table.csv'" in text and "'files-test.ipynb'" in text, dump(out)
    out = nb.run_and_wait(2)
    assert not [o for o in out if o["output_type"] == "error"], dump(out)
    assert _read(page, "data/written.txt") == "written by python"
    assert _read(page, "data/made/inner/x.txt") == "deep"
    # ... and the file browser lists it.
    page.evaluate("async () => { await window.jupyterapp.commands.execute('filebrowser:go-to-path',"
                  " {path: '/data'}); }")
    page.locator(".jp-DirListing-itemText", has_text="written.txt").first.wait_for(timeout=30_000)
    out = nb.run_and_wait(3)
    assert out and out[0]["data"]["text/plain"] == "True", dump(out)

    # What Python wrote is in the browser's storage: it is still there after a reload.
    page.reload(wait_until="domcontentloaded")
    page.wait_for_function("() => window.jupyterapp !== undefined", timeout=60_000)
    page.evaluate("async () => { await window.jupyterapp.started; await window.jupyterapp.restored; }")
    assert _read(page, "data/written.txt") == "written by python"


def test_reading_files_while_another_cell_awaits(page: Any, authored_url: str) -> None:
    _open(page, authored_url)
    nb = new_notebook(
        page,
        "data/await-files-test.ipynb",
        [
            "import asyncio\ngate = asyncio.Event()",
            "# task\nawait gate.wait()\nprint('released')",
            "print(open('table.csv').read().splitlines()[1])\ngate.set()",
        ],
    )
    nb.run_and_wait(0)
    nb.run(1)
    time.sleep(0.5)
    assert nb.is_running(1)
    out = nb.run_and_wait(2, 30)
    assert "ada,3" in output_text(out), dump(out)
    assert "released" in output_text(nb.wait_done(1, 30))


def test_no_service_worker_and_not_isolated_kernel_works_and_says_so(browser: Any, authored_plain_url: str) -> None:
    context = browser.new_context(service_workers="block")
    seen: list[str] = []
    context.on("request", lambda r: seen.append(r.url))
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        open_lab(page, authored_plain_url)
        nb = new_notebook(
            page,
            "data/no-drive-test.ipynb",
            ["1 + 1", "open('table.csv')", "open('scratch.txt', 'w').write('x'); open('scratch.txt').read()"],
        )
        out = nb.run_and_wait(0)
        assert out[-1]["data"]["text/plain"] == "2", dump(out)
        notice = output_text(out)
        assert "not available to Python" in notice and "service worker" in notice, dump(out)
        out = nb.run_and_wait(1)
        assert out and out[-1]["output_type"] == "error" and out[-1]["ename"] == "FileNotFoundError", dump(out)
        out = nb.run_and_wait(2)
        assert out[-1]["data"]["text/plain"] == "'x'", dump(out)
        assert "not available to Python" not in output_text(out), "the notice is said once"
    finally:
        context.close()
    outside = [u for u in seen if urlsplit(u).scheme not in ("data", "blob")
               and urlsplit(u).hostname not in LOCAL_HOSTS]
    assert not outside, outside
