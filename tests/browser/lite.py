"""Drive JupyterLite notebooks from Playwright (window.jupyterapp is exposed by the demo site)."""

from __future__ import annotations

import json
import time
from typing import Any

from playwright.sync_api import Page

KERNEL_READY_S = 120.0

_CREATE = """
async ({path, cells, kernel}) => {
  const app = window.jupyterapp;
  await app.started; await app.restored;
  const nb = {
    cells: cells.map(src => ({cell_type: 'code', source: src, metadata: {}, outputs: [], execution_count: null})),
    metadata: {kernelspec: {name: kernel, display_name: kernel, language: 'python'}},
    nbformat: 4, nbformat_minor: 5,
  };
  await app.serviceManager.contents.save(path, {type: 'notebook', format: 'json', content: nb});
  const panel = await app.commands.execute('docmanager:open', {path, factory: 'Notebook', kernel: {name: kernel}});
  await panel.context.ready;
  await panel.sessionContext.ready;
  window.__ck = window.__ck || {};
  window.__ck[path] = panel;
  return true;
}
"""

_OPEN_EXISTING = """
async ({path}) => {
  const app = window.jupyterapp;
  await app.started; await app.restored;
  const panel = await app.commands.execute('docmanager:open', {path, factory: 'Notebook'});
  await panel.context.ready;
  await panel.sessionContext.ready;
  window.__ck = window.__ck || {};
  window.__ck[path] = panel;
  return true;
}
"""

_KERNEL_INFO = """
async ({path}) => {
  const kernel = window.__ck[path].sessionContext.session.kernel;
  const reply = await kernel.info;
  return {id: kernel.id, name: kernel.name, implementation: reply.implementation};
}
"""

_RUN = """
async ({path, i}) => {
  const app = window.jupyterapp;
  const panel = window.__ck[path];
  app.shell.activateById(panel.id);
  // notebook:run-cell acts on the current notebook: wait until it is this one.
  for (let n = 0; n < 100 && app.shell.currentWidget !== panel; n++) {
    await new Promise(r => setTimeout(r, 20));
  }
  if (app.shell.currentWidget !== panel) { throw new Error('could not activate ' + path); }
  panel.content.activeCellIndex = i;
  panel.content.deselectAll();
  window.__ckRuns = window.__ckRuns || {};
  const key = path + '#' + i;
  const run = {done: false, error: null};
  window.__ckRuns[key] = run;
  app.commands.execute('notebook:run-cell').then(
    () => { run.done = true; }, (e) => { run.done = true; run.error = String(e); });
  return true;
}
"""

_CELL = """
({path, i}) => {
  const cell = window.__ck[path].content.widgets[i];
  return {
    outputs: cell.model.outputs.toJSON(),
    prompt: cell.promptNode ? cell.promptNode.textContent : '',
    count: cell.model.executionCount,
    run: (window.__ckRuns || {})[path + '#' + i] || null,
  };
}
"""


class Notebook:
    """One open notebook in the page, addressed by its path."""

    def __init__(self, page: Page, path: str) -> None:
        self.page = page
        self.path = path
        self.kernel: dict[str, Any] = {}

    def wait_kernel(self, timeout: float = KERNEL_READY_S) -> dict[str, Any]:
        """Wait for kernel_info_reply (Python loaded and serving)."""
        self.page.wait_for_function(
            "(p) => window.__ck && window.__ck[p] && window.__ck[p].sessionContext.session"
            " && window.__ck[p].sessionContext.session.kernel",
            arg=self.path,
            timeout=timeout * 1000,
        )
        self.kernel = self.page.evaluate(_KERNEL_INFO, {"path": self.path})
        return self.kernel

    def run(self, i: int) -> None:
        self.page.evaluate(_RUN, {"path": self.path, "i": i})

    def cell(self, i: int) -> dict[str, Any]:
        return self.page.evaluate(_CELL, {"path": self.path, "i": i})

    def outputs(self, i: int) -> list[dict[str, Any]]:
        return self.cell(i)["outputs"]

    def text(self, i: int) -> str:
        return output_text(self.outputs(i))

    def is_running(self, i: int) -> bool:
        return "*" in self.cell(i)["prompt"]

    def wait_done(self, i: int, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Wait until cell i has an execution count and no [*]; return its outputs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            c = self.cell(i)
            if c["run"] is not None and c["run"]["done"] and "*" not in c["prompt"]:
                return c["outputs"]
            time.sleep(0.05)
        raise AssertionError(f"cell {i} of {self.path} still running after {timeout}s: {self.cell(i)}")

    def wait_text(self, i: int, needle: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.text(i)
            if needle in text:
                return text
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} not in the output of cell {i}: {self.outputs(i)}")

    def run_and_wait(self, i: int, timeout: float = 60.0) -> list[dict[str, Any]]:
        self.run(i)
        time.sleep(0.05)
        return self.wait_done(i, timeout)

    def js(self, body: str, arg: Any = None) -> Any:
        """Evaluate `async (panel, kernel, arg) => {body}` for this notebook."""
        return self.page.evaluate(
            "async ({path, arg}) => { const panel = window.__ck[path];"
            " const kernel = panel.sessionContext.session.kernel;"
            f" return await (async (panel, kernel, arg) => {{ {body} }})(panel, kernel, arg); }}",
            {"path": self.path, "arg": arg},
        )


def open_lab(page: Page, base_url: str) -> None:
    page.goto(base_url + "lab/index.html", wait_until="domcontentloaded")
    page.wait_for_function("() => window.jupyterapp !== undefined", timeout=60_000)


def new_notebook(page: Page, path: str, cells: list[str], kernel: str = "concurrent", wait: bool = True) -> Notebook:
    page.evaluate(_CREATE, {"path": path, "cells": cells, "kernel": kernel})
    nb = Notebook(page, path)
    if wait:
        nb.wait_kernel()
    return nb


def open_notebook(page: Page, path: str) -> Notebook:
    page.evaluate(_OPEN_EXISTING, {"path": path})
    nb = Notebook(page, path)
    nb.wait_kernel()
    return nb


def output_text(outputs: list[dict[str, Any]]) -> str:
    """All the text of a cell's outputs (streams, text/plain, html, errors with tracebacks)."""
    parts: list[str] = []
    for out in outputs:
        kind = out.get("output_type")
        if kind == "stream":
            parts.append(_join(out.get("text", "")))
        elif kind in ("execute_result", "display_data"):
            data = out.get("data", {})
            parts.append(_join(data.get("text/plain", "")))
            if "text/html" in data:
                parts.append(_join(data["text/html"]))
        elif kind == "error":
            parts.append(f"{out.get('ename')}: {out.get('evalue')}")
            parts.extend(out.get("traceback", []))
    return "\n".join(parts)


def _join(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def dump(outputs: list[dict[str, Any]]) -> str:
    return json.dumps(outputs, indent=1)[:3000]
