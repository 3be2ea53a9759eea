"""Drive notebooks in a real JupyterLab 4.6 page (window.jupyterapp is exposed by the `lab_server` fixture)."""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INDICATOR = ".jp-Notebook-ExecutionIndicator[data-status]"
INTERRUPT_BUTTON = '[data-command="notebook:interrupt-kernel"]'
#: JupyterLab drops the first Ctrl/Shift+Enter typed right after the kernel turns idle (ENVIRONMENT.md).
SETTLE_S = 2.0


@dataclass
class LabServer:
    url: str  # ends with "/"
    token: str
    root_dir: Path
    kernels_dir: Path
    log_path: Path

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """Call the server's REST API (`path` without a leading slash); return the decoded JSON or None."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.url}{path}", data=data, method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
        return json.loads(raw) if raw else None


_OPEN = """
async ({path, cells, kernel}) => {
  const app = window.jupyterapp;
  const nb = {
    cells: cells.map(src => ({cell_type: 'code', source: src, metadata: {}, outputs: [], execution_count: null})),
    metadata: {kernelspec: {name: kernel, display_name: kernel, language: 'python'}},
    nbformat: 4, nbformat_minor: 5,
  };
  await app.serviceManager.contents.save(path, {type: 'notebook', format: 'json', content: nb});
  const panel = await app.commands.execute('docmanager:open', {path, factory: 'Notebook', kernel: {name: kernel}});
  await panel.context.ready;
  await panel.sessionContext.ready;
  window.__lab = window.__lab || {};
  const rec = {panel, iopubStatus: [], indicator: [], kernelStatus: []};
  window.__lab[path] = rec;
  const conn = panel.sessionContext.session.kernel;
  // What the kernel says (raw iopub status messages) and what JupyterLab makes of it (kernel.status).
  conn.iopubMessage.connect((_, msg) => {
    if (msg.header.msg_type === 'status') {
      rec.iopubStatus.push({t: performance.now(), state: msg.content.execution_state,
                            parent: msg.parent_header.msg_id || null,
                            parentType: msg.parent_header.msg_type || null});
    }
  });
  conn.statusChanged.connect((_, status) => rec.kernelStatus.push({t: performance.now(), status}));
  return conn.name;
}
"""

_WATCH_INDICATOR = """
({path, selector}) => {
  const rec = window.__lab[path];
  const node = rec.panel.node.querySelector(selector);
  if (!node) { return false; }
  rec.indicator.push({t: performance.now(), status: node.getAttribute('data-status')});
  new MutationObserver(() => rec.indicator.push({t: performance.now(), status: node.getAttribute('data-status')}))
    .observe(node, {attributes: true, attributeFilter: ['data-status']});
  return true;
}
"""

_CELL = """
({path, i}) => {
  const cell = window.__lab[path].panel.content.widgets[i];
  return {
    outputs: cell.model.outputs.toJSON(),
    prompt: cell.promptNode ? cell.promptNode.textContent : '',
    count: cell.model.executionCount,
  };
}
"""


class LabNotebook:
    """One notebook open in the JupyterLab page, addressed by its path."""

    def __init__(self, page: Any, path: str, kernel_name: str) -> None:
        self.page = page
        self.path = path
        self.kernel_name = kernel_name

    @classmethod
    def create(cls, page: Any, path: str, kernel_name: str, cells: list[str]) -> LabNotebook:
        page.evaluate(_OPEN, {"path": path, "cells": cells, "kernel": kernel_name})
        nb = cls(page, path, kernel_name)
        nb.indicator_node().wait_for(state="attached")
        page.evaluate(_WATCH_INDICATOR, {"path": path, "selector": INDICATOR})
        nb.wait_status("idle", timeout=90)
        time.sleep(SETTLE_S)
        return nb

    # -- the page -------------------------------------------------------------------------------------------
    def panel_selector(self) -> str:
        return f"#{self.page.evaluate('(p) => window.__lab[p].panel.id', self.path)}"

    def indicator_node(self) -> Any:
        return self.page.locator(f"{self.panel_selector()} {INDICATOR}")

    def status(self) -> str:
        """The notebook toolbar's kernel status indicator, as JupyterLab shows it."""
        return str(self.indicator_node().get_attribute("data-status"))

    def wait_status(self, status: str, timeout: float = 60.0) -> None:
        self.page.wait_for_function(
            "([sel, s]) => { const n = document.querySelector(sel); return n && n.getAttribute('data-status') === s; }",
            arg=[f"{self.panel_selector()} {INDICATOR}", status],
            timeout=timeout * 1000,
        )

    def cell_editor(self, i: int) -> Any:
        return self.page.locator(f"{self.panel_selector()} .jp-Cell").nth(i).locator(".cm-content")

    def type_cell(self, i: int, code: str) -> None:
        """Click into cell i's editor and type `code` (replacing what is there)."""
        editor = self.cell_editor(i)
        editor.click()
        self.page.keyboard.press("Control+a")
        self.page.keyboard.press("Delete")
        self.page.keyboard.type(code)

    def run_cell_keyboard(self, i: int) -> None:
        """Ctrl+Enter in cell i's editor, as a user runs a cell."""
        self.cell_editor(i).click()
        self.page.keyboard.press("Control+Enter")

    def interrupt_button(self) -> Any:
        return self.page.locator(f"{self.panel_selector()} {INTERRUPT_BUTTON}")

    # -- the model ------------------------------------------------------------------------------------------
    def cell(self, i: int) -> dict[str, Any]:
        return self.page.evaluate(_CELL, {"path": self.path, "i": i})

    def outputs(self, i: int) -> list[dict[str, Any]]:
        return self.cell(i)["outputs"]

    def is_running(self, i: int) -> bool:
        return "*" in self.cell(i)["prompt"]

    def wait_output(self, i: int, needle: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = output_text(self.outputs(i))
            if needle in text:
                return text
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} not in the output of cell {i}: {self.outputs(i)}")

    def wait_done(self, i: int, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Wait until cell i has an execution count and no [*]; return its outputs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            c = self.cell(i)
            if c["count"] is not None and "*" not in c["prompt"]:
                return c["outputs"]
            time.sleep(0.05)
        raise AssertionError(f"cell {i} still running after {timeout} s: {self.cell(i)}")

    def records(self) -> dict[str, list[dict[str, Any]]]:
        """What was seen since the notebook opened: raw iopub status messages, kernel.status changes, and the
        indicator's data-status changes, each with a page timestamp (ms)."""
        return self.page.evaluate(
            "(p) => { const r = window.__lab[p];"
            " return {iopubStatus: r.iopubStatus, kernelStatus: r.kernelStatus, indicator: r.indicator}; }",
            self.path,
        )

    def js(self, body: str, arg: Any = None) -> Any:
        """Evaluate `async (panel, kernel, arg) => {body}` for this notebook."""
        return self.page.evaluate(
            "async ({path, arg}) => { const panel = window.__lab[path].panel;"
            " const kernel = panel.sessionContext.session.kernel;"
            f" return await (async (panel, kernel, arg) => {{ {body} }})(panel, kernel, arg); }}",
            {"path": self.path, "arg": arg},
        )


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
        elif kind == "error":
            parts.append(f"{out.get('ename')}: {out.get('evalue')}")
            parts.extend(out.get("traceback", []))
    return "\n".join(parts)


def _join(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)
