"""The same notebooks give the same outputs in both worlds: the browser kernel in the JupyterLite page and this
kernel on CPython.

Each notebook of tests/corpus/notebooks/nbclient is opened in the page and run with JupyterLab's own run-all
command (`notebook:run-all-cells`); its outputs are read from the notebook model. The same notebook runs with
nbclient on this kernel on CPython (tests/corpus/harness.py, in a thread beside the page), and both are compared
cell by cell after the harness's normalisation. What the harness's options ask of nbclient is done the JupyterLab
way: `allow_errors` is the `raises-exception` tag on every code cell (JupyterLab then sends stop_on_error=False),
`interrupt_on_timeout` is the kernel's interrupt once a cell has run for `timeout` seconds, and the files a notebook
reads are uploaded beside it. Every remaining difference is listed below with its reason: bound to the browser
(PLATFORM) or to JupyterLab as a front end, where nbclient behaves otherwise (FRONT_END). A listed difference that
no longer shows fails the test, so the lists stay true.
"""

from __future__ import annotations

import base64
import json
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import nbformat
import pytest
from lite import open_lab

from corpus.harness import NOTEBOOKS, Notebook, NotebookOptions, blank, compare, corpus, nbclient_runner, options_for

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

FOLDER = NOTEBOOKS / "nbclient"
CPYTHON = "ck-corpus-lite-cpython"

ENV_FROM_HARNESS = (
    "the harness gives the CPython kernel an environment variable (and runs the pair at once, sharing a folder); "
    "a browser kernel has no process environment to set from outside: the cell fails with KeyError there"
)
NO_SUCH_VARIABLE = "follows from the previous cell's KeyError: `directory` was never set"
SKIP_EXECUTION = (
    "nbclient skips cells tagged skip-execution; JupyterLab's run-all runs them (so the next count is one higher)"
)
STDIN = (
    "nbclient runs with allow_stdin=False (input() raises StdinNotImplementedError); JupyterLab allows stdin, so "
    "the runner answers the prompt and the cell shows it as JupyterLab does (a stdin output)"
)

PYTHON_314 = (
    "Pyodide is Python 3.14, the CPython run here 3.11: datetime.utcnow() is deprecated since 3.12 and warns "
    "(a CPython 3.12+ kernel shows the same warning)"
)
UPDATE_EXECUTE_RESULT = (
    "JupyterLab's output area updates only display_data outputs by display_id: the execute_result that carries "
    "display_id 'result' keeps 9 when the next cell updates it; nbclient updates it to 10"
)

#: (notebook file, code cell index) -> why the browser run differs from the CPython one
PLATFORM: dict[tuple[str, int], str] = {
    ("Sleep1s.ipynb", 1): PYTHON_314,
    ("Parallel Execute A.ipynb", 1): ENV_FROM_HARNESS,
    ("Parallel Execute A.ipynb", 2): NO_SUCH_VARIABLE,
    ("Parallel Execute B.ipynb", 1): ENV_FROM_HARNESS,
    ("Parallel Execute B.ipynb", 2): NO_SUCH_VARIABLE,
}
FRONT_END: dict[tuple[str, int], str] = {
    ("Skip Execution with Cell Tag.ipynb", 0): SKIP_EXECUTION,
    ("Skip Execution with Cell Tag.ipynb", 1): SKIP_EXECUTION,
    ("Disable Stdin.ipynb", 0): STDIN,
    ("update-display-id.ipynb", 4): UPDATE_EXECUTE_RESULT,
}
#: What the runner types when a cell asks for input (JupyterLab's stdin box).
STDIN_ANSWER = "nbclient"


def _notebooks() -> list[Path]:
    return [p for p in corpus() if p.parent == FOLDER]


# ---------------------------------------------------------------------------------------------- the CPython side


@pytest.fixture(scope="module")
def cpython_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[Path, Future[Notebook]]]:
    """This kernel's nbclient runs on CPython, all started at once in two threads (they mostly wait on the kernel
    process and on sleeps) while the page runs the same notebooks."""
    kernels = tmp_path_factory.mktemp("corpus-lite-kernels")
    (kernels / CPYTHON).mkdir()
    spec = {"argv": [sys.executable, "-m", "concurrent_kernel", "-f", "{connection_file}"], "display_name": CPYTHON,
            "language": "python", "interrupt_mode": "signal"}
    (kernels / CPYTHON / "kernel.json").write_text(json.dumps(spec))
    runner = nbclient_runner(CPYTHON, kernels)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="corpus-lite") as pool:
        yield {path: pool.submit(runner, path, options_for(path)) for path in _notebooks()}


# ---------------------------------------------------------------------------------------------- the browser side

_OPEN = """
async ({path, nb, files}) => {
  const app = window.jupyterapp;
  await app.started; await app.restored;
  const contents = app.serviceManager.contents;
  const folder = path.split('/')[0];
  const made = await contents.newUntitled({path: '', type: 'directory'});
  await contents.rename(made.path, folder);
  for (const [name, content] of Object.entries(files)) {
    await contents.save(name, {type: 'file', format: 'base64', content});
  }
  await contents.save(path, {type: 'notebook', format: 'json', content: nb});
  const panel = await app.commands.execute('docmanager:open',
                                           {path, factory: 'Notebook', kernel: {name: 'concurrent'}});
  await panel.context.ready;
  await panel.sessionContext.ready;
  const kernel = panel.sessionContext.session.kernel;
  await kernel.info;
  window.__ckCorpus = {panel, done: false, error: null};
  app.shell.activateById(panel.id);
  for (let n = 0; n < 100 && app.shell.currentWidget !== panel; n++) {
    await new Promise(r => setTimeout(r, 20));
  }
  return true;
}
"""

_RUN_ALL = """
() => {
  const run = window.__ckCorpus;
  window.jupyterapp.commands.execute('notebook:run-all-cells').then(
    () => { run.done = true; }, e => { run.done = true; run.error = String(e); });
  return true;
}
"""

_STATE = """
() => {
  const run = window.__ckCorpus;
  const cells = run.panel.content.widgets;
  const running = cells.findIndex(c => c.model.type === 'code' && c.model.executionState === 'running');
  const kernelStatus = run.panel.sessionContext.session?.kernel?.status;
  return {done: run.done, error: run.error, running, kernelStatus,
          stdin: !!run.panel.node.querySelector('.jp-Stdin-input')};
}
"""

_CLOSE = """
async () => {
  const {panel} = window.__ckCorpus;
  const nb = panel.context.model.toJSON();
  await panel.sessionContext.shutdown();
  panel.dispose();
  return nb;
}
"""


def _browser_run(page: Any, path: Path, options: NotebookOptions) -> Notebook:
    """Run the notebook in the page with JupyterLab's run-all and return it as the model has it."""
    nb = blank(nbformat.read(path, as_version=4))
    nb.metadata["kernelspec"] = {"name": "concurrent", "display_name": "Python (concurrent)", "language": "python"}
    if options.allow_errors:
        for cell in nb.cells:
            if cell.cell_type == "code":
                tags = cell.metadata.setdefault("tags", [])
                if "raises-exception" not in tags:
                    tags.append("raises-exception")
    folder = f"corpus-{path.stem.replace(' ', '-')}"
    files = {f"{folder}/{name}": base64.b64encode((path.parent / name).read_bytes()).decode() for name in options.files}
    page.evaluate(_OPEN, {"path": f"{folder}/{path.name}", "nb": nb, "files": files})
    time.sleep(0.5)
    page.evaluate(_RUN_ALL)
    running_since: tuple[int, float] = (-1, time.monotonic())
    interrupted: set[int] = set()
    deadline = time.monotonic() + 90
    while True:
        state = page.evaluate(_STATE)
        if state["done"] and state["running"] < 0 and state["kernelStatus"] == "idle":
            break
        assert time.monotonic() < deadline, f"{path.name} still running after 90 s: {state}"
        if state["stdin"]:
            box = page.locator(".jp-Stdin-input").first
            box.fill(STDIN_ANSWER)
            box.press("Enter")
        if state["running"] != running_since[0]:
            running_since = (state["running"], time.monotonic())
        elif (state["running"] >= 0 and state["running"] not in interrupted
              and time.monotonic() - running_since[1] > options.timeout):
            assert options.interrupt_on_timeout, f"{path.name}: cell {state['running']} ran past {options.timeout} s"
            page.evaluate("() => window.__ckCorpus.panel.sessionContext.session.kernel.interrupt()")
            interrupted.add(state["running"])
        time.sleep(0.1)
    assert state["error"] is None, state
    return nbformat.from_dict(page.evaluate(_CLOSE))


@pytest.fixture(scope="module")
def lab(browser: Any, base_url: str) -> Iterator[Any]:
    """One page for the whole corpus (a kernel per notebook, shut down after it)."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(60_000)
    open_lab(page, base_url)
    yield page
    context.close()


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.name)
def test_notebook_gives_the_same_outputs_in_the_browser(
    path: Path, lab: Any, cpython_runs: dict[Path, Future[Notebook]]
) -> None:
    browser_nb = _browser_run(lab, path, options_for(path))
    cpython_nb = cpython_runs[path].result(timeout=180)
    differences = {d.index: d for d in compare(cpython_nb, browser_nb)}
    listed = {index for (name, index) in (*PLATFORM, *FRONT_END) if name == path.name}
    unexpected = [d.describe() for index, d in sorted(differences.items()) if index not in listed]
    gone = sorted(listed - set(differences))
    assert not unexpected, f"{path.name}: the browser differs from CPython:\n" + "\n".join(unexpected)
    assert not gone, f"{path.name}: listed differences no longer seen in cells {gone}: update PLATFORM/FRONT_END"
