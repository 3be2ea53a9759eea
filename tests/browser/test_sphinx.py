"""Docs pages the ecosystem's way: jupyterlite-sphinx's directives running code with the concurrent kernel.

The docs example `lite-site/docs` is copied to a temp dir and built by `scripts/build-docs.sh` as a docs author
builds it: this project's wheel, jupyterlite-sphinx and sphinx installed by pip into a venv, then sphinx-build.
Its page is then served like a static docs host (no COOP/COEP headers) and each directive's code is run in
headless Chromium: `replite`, `notebooklite`, `jupyterlite`, `try_examples`. Nothing may leave the machine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import FrameLocator, Page, expect

from conftest import ROOT, serve_module

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

DOCS = ROOT / "lite-site" / "docs"
KERNEL_S = 150.0
STOCK_EXTENSION = "@jupyterlite/pyodide-kernel-extension"


def build_docs(tmp: Path, wheel: Path, extra: str = "", lite_config: dict[str, Any] | None = None) -> Path:
    """Build a copy of the docs example into tmp/html with scripts/build-docs.sh; return the output dir."""
    src = tmp / "docs"
    shutil.copytree(DOCS, src, ignore=shutil.ignore_patterns("_build", "_contents", ".jupyterlite.doit.db"))
    if lite_config is not None:
        (src / "jupyter-lite.json").write_text(json.dumps(lite_config))
    out = tmp / "html"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "CK_"))},
        "VENV": sys.prefix,
        "CK_KERNEL_WHEEL": str(wheel),
        "CK_DOCS_VENV": str(tmp / "venv"),
        "CK_DOCS_EXTRA": extra,
    }
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-docs.sh"), str(src), str(out)],
        env=env, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    output = result.stdout + result.stderr
    # pip's notes about the machine's own pip configuration (find-links folders it does not have) are not warnings
    # of the docs build: Sphinx's, jupyterlite's and the kernel's are.
    build_warnings = [line for line in output.splitlines()
                      if "WARNING" in line and not _PIP_MISSING_LOCATION.search(line)]
    assert not build_warnings, output
    return out


_PIP_MISSING_LOCATION = re.compile(r"WARNING: Location '[^']*' is ignored: it is neither a file nor a directory")


def lite_config(site: Path) -> dict[str, Any]:
    return json.loads((site / "lite" / "jupyter-lite.json").read_text())["jupyter-config-data"]


@pytest.fixture(scope="module")
def docs_site(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip install concurrent-kernel jupyterlite-sphinx` and the example docs: nothing else configured."""
    return build_docs(tmp_path_factory.mktemp("docs"), wheel)


@pytest.fixture(scope="module")
def docs_url(docs_site: Path) -> Iterator[str]:
    server, url = serve_module().serve_in_thread(docs_site, 0, False)
    yield url
    server.shutdown()


def open_docs(page: Page, url: str) -> str:
    """Open the docs page and wait for its replite console to show its result; return that output.

    Waiting also keeps apart the start of the page's JupyterLite apps: two starting at the same moment on one
    page can race opening JupyterLite's shared IndexedDB storage ("File Load Error ... setting 'db'", seen once
    in about ten tries), whatever the kernel.
    """
    page.set_viewport_size({"width": 1280, "height": 1000})  # try_examples hides its button on small screens
    page.goto(url + "index.html", wait_until="domcontentloaded")
    return wait_output(page.frame_locator("iframe[src*='repl/index.html']"), r"replite emscripten")


def wait_output(frame: FrameLocator | Page, pattern: str, timeout_s: float = KERNEL_S) -> str:
    """Wait for an output area of the embedded app whose text matches PATTERN (a regex); return its text."""
    out = frame.locator(".jp-OutputArea-output").filter(has_text=re.compile(pattern)).first
    out.wait_for(timeout=timeout_s * 1000)
    return out.inner_text()


def run_all(frame: FrameLocator) -> None:
    """Run > Run All Cells, from the app's menu bar, as a reader does.

    While the notebook's session is still starting its kernel, JupyterLab's Run All runs nothing (no cell gets
    a [*] or a number): like a reader, click again then. A cell that started is never run twice this way.
    """
    prompts = frame.locator(".jp-CodeCell .jp-InputPrompt")
    for _ in range(6):
        # Click into the notebook first: the Run menu acts on the notebook that has the focus.
        frame.locator(".jp-NotebookPanel .jp-Cell .jp-InputPrompt").first.click(timeout=60_000)
        frame.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        frame.locator(".lm-Menu-item:not(.lm-mod-disabled)", has_text=re.compile(r"^Run All Cells")).click()
        for _ in range(50):
            if any(re.search(r"\[(\*|\d+)\]", text) for text in prompts.all_inner_texts()):
                return
            time.sleep(0.2)
    raise AssertionError(f"Run All Cells ran nothing: prompts {prompts.all_inner_texts()}")


def kernel_name_shown(frame: FrameLocator) -> str:
    """The kernel's display name in the notebook's toolbar."""
    name = frame.locator(".jp-KernelName").first
    expect(name).not_to_have_text(re.compile(r"^(No Kernel|Kernel)?$"), timeout=60_000)
    return name.inner_text().strip()


def test_build_ships_the_kernel_and_the_directives(docs_site: Path) -> None:
    config = lite_config(docs_site)
    assert [e["name"] for e in config["federated_extensions"]] == ["concurrent-kernel"]
    static = docs_site / "lite" / "extensions" / "concurrent-kernel" / "static"
    assert (static / "pyodide" / "pyodide.asm.wasm").exists() and (static / "pyodide" / "ck-snapshot.bin.gz").exists()
    html = (docs_site / "index.html").read_text()
    assert re.search(r'src="lite/repl/index.html\?kernel=concurrent&execute=1', html)
    assert "try_examples_button" in html
    assert (docs_site / "lite" / "files" / "notebooks" / "tour.ipynb").exists()
    # The wheel's build addon packed each app's start-up chunks (concurrent_kernel/lite_app_pack.py).
    for app in ("repl", "notebooks", "lab"):
        assert list((docs_site / "lite" / "build").glob(f"ck-app-{app}.*.js.gz")), app


def test_replite_runs_its_code(page: Page, docs_url: str, requests_seen: list[str]) -> None:
    text = open_docs(page, docs_url)
    assert "replite emscripten ['a:3', 'b:2']" in text
    assert any("/lite/extensions/concurrent-kernel/static/" in u for u in requests_seen)
    assert any(re.search(r"/lite/build/ck-app-repl\.[0-9a-f]+\.js\.gz$", u) for u in requests_seen), requests_seen


@pytest.mark.parametrize(("prompt", "app"), [("Open the notebook", "notebooks"), ("Open JupyterLab", "lab")])
def test_notebook_directives_run_the_notebook(page: Page, docs_url: str, prompt: str, app: str) -> None:
    """notebooklite (the Notebook app) and jupyterlite (JupyterLab), each opening notebooks/tour.ipynb."""
    open_docs(page, docs_url)
    page.get_by_text(prompt).click()
    frame = page.frame_locator(f"iframe[src*='{app}/index.html?path=notebooks']")
    run_all(frame)
    assert wait_output(frame, r"^notebook ").strip() == "notebook emscripten Kernel"
    # The `# task` cell awaits 2 s beside the queue: the cell after it has run before it is done.
    wait_output(frame, r"ran while the task cell awaited")
    assert frame.locator(".jp-OutputArea-output", has_text="task done").count() == 0
    wait_output(frame, r"task done")
    assert kernel_name_shown(frame) == "Python (concurrent)"


def test_try_examples_runs_in_the_concurrent_kernel(page: Page, docs_url: str) -> None:
    """try_examples writes notebooks asking for a kernel named "python": the site's one Python kernel runs them."""
    open_docs(page, docs_url)
    page.get_by_role("button", name="Try these examples").click()
    frame = page.frame_locator("iframe.jupyterlite_sphinx_iframe")
    run_all(frame)
    assert wait_output(frame, r"^try_examples ").strip() == "try_examples Kernel ['x', 'y']"
    assert kernel_name_shown(frame) == "Python (concurrent)"


def new_notebook(page: Page, lab_url: str | None = None) -> None:
    """File > New > Notebook in JupyterLab (opened at LAB_URL first when given)."""
    if lab_url:
        page.goto(lab_url, wait_until="domcontentloaded")
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^File$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^New$")).first.hover()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Notebook$")).first.click()


def test_new_notebook_uses_the_concurrent_kernel(page: Page, docs_site: Path, docs_url: str) -> None:
    """JupyterLite's own default kernel name, "python" (the stock kernel), names no kernel on this site: the
    concurrent kernel is the default instead. Shown by File > New > Notebook, and by the next New Notebook once
    "Always start the preferred kernel" is ticked (it then starts the site's default kernel with no dialog)."""
    assert lite_config(docs_site)["defaultKernelName"] == "python"
    new_notebook(page, docs_url + "lite/lab/index.html")
    dialog = page.locator(".jp-Dialog")
    expect(dialog.locator("select option:checked")).to_have_text("Python (concurrent)", timeout=60_000)
    dialog.get_by_text("Always start the preferred kernel").click()
    dialog.get_by_role("button", name="Select").click()
    expect(page.locator(".jp-NotebookPanel:visible .jp-KernelName")).to_have_text("Python (concurrent)")
    new_notebook(page)
    expect(page.locator(".lm-TabBar-tabLabel", has_text="Untitled1.ipynb")).to_be_visible(timeout=60_000)
    expect(page.locator(".jp-Dialog")).to_have_count(0)
    expect(page.locator(".jp-NotebookPanel:visible .jp-KernelName")).to_have_text("Python (concurrent)",
                                                                                 timeout=60_000)


def test_one_line_default_beside_the_stock_kernel(page: Page, wheel: Path,
                                                  tmp_path_factory: pytest.TempPathFactory) -> None:
    """With jupyterlite-pyodide-kernel installed too, the README's jupyter-lite.json line makes "concurrent"
    the default kernel: New Notebook offers both, the concurrent one first."""
    site = build_docs(tmp_path_factory.mktemp("docs-stock"), wheel, extra="jupyterlite-pyodide-kernel==0.8.6",
                      lite_config={"jupyter-config-data": {"defaultKernelName": "concurrent"}})
    config = lite_config(site)
    assert sorted(e["name"] for e in config["federated_extensions"]) == [STOCK_EXTENSION, "concurrent-kernel"]
    assert config["defaultKernelName"] == "concurrent"
    server, url = serve_module().serve_in_thread(site, 0, False)
    try:
        new_notebook(page, url + "lite/lab/index.html")
        select = page.locator(".jp-Dialog select")
        expect(select.locator("option:checked")).to_have_text("Python (concurrent)", timeout=60_000)
        assert "Python (Pyodide)" in select.locator("option").all_inner_texts()
    finally:
        server.shutdown()


def test_stock_kernel_left_out_leaves_try_examples_to_concurrent(page: Page, wheel: Path,
                                                                 tmp_path_factory: pytest.TempPathFactory) -> None:
    """try_examples notebooks name the stock kernel ("python"): with jupyterlite-pyodide-kernel installed, the
    README's "disabledExtensions" line leaves it out, and they run in the concurrent kernel again."""
    site = build_docs(tmp_path_factory.mktemp("docs-nostock"), wheel, extra="jupyterlite-pyodide-kernel==0.8.6",
                      lite_config={"jupyter-config-data": {"disabledExtensions": [STOCK_EXTENSION]}})
    assert STOCK_EXTENSION in [e["name"] for e in lite_config(site)["federated_extensions"]]
    server, url = serve_module().serve_in_thread(site, 0, False)
    try:
        new_notebook(page, url + "lite/lab/index.html")
        select = page.locator(".jp-Dialog select")
        expect(select.locator("option:checked")).to_have_text("Python (concurrent)", timeout=60_000)
        kernels = [o for o in select.locator("option").all_inner_texts() if o != "No Kernel"]
        assert kernels == ["Python (concurrent)"]
        open_docs(page, url)
        page.get_by_role("button", name="Try these examples").click()
        frame = page.frame_locator("iframe.jupyterlite_sphinx_iframe")
        run_all(frame)
        assert wait_output(frame, r"^try_examples ").strip() == "try_examples Kernel ['x', 'y']"
    finally:
        server.shutdown()
