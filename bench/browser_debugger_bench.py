"""The browser kernel's debugger: what it costs a cell, and what the panel costs a site's pages.

Round trip (execute_request sent -> execute_reply and idle received, timed in the page) of the CPython bench's cell
(bench/bench_debugger.py: `x = sum(range(100))`) through the notebook's kernel connection in the JupyterLite lab
page, headless Chromium, cross-origin isolated, the site served locally:

  off       the site leaves the debugger out (`disabledExtensions: ["concurrent-kernel:debugger"]` in its
            jupyter-lite.json, served from a copy of the site): the kernel offers none
  offered   the default: offered, no session
  attached  a session attached as the panel attaches one (initialize, attach, configurationDone), no breakpoint
            (its first 50 cells timed apart: the first attach of a process has CPython re-instrument each code
            object once, as it next runs)
  attached, a breakpoint in another cell
            a breakpoint set (that cell's code is instrumented; the cell timed is not)

Each round: the "off" site in a page of its own, then one page of the site with the panel where the other rows run
one after another in the same kernel (offered, attached, a breakpoint set, disconnect and offered again), so they
compare without a page's or a kernel's start between them; N round trips per row and round after a warm-up;
medians over all rounds.

Bytes: what a lab page fetches from the site when it opens this kernel's notebook (the server's count of body
bytes, the kernel's Pyodide files left out: the same in both), with the panel and with it left out; and the panel's
files in the site.

    python bench/browser_debugger_bench.py [--rounds 3] [--n 100] [--site lite-site/_output]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))

from lite import new_notebook, open_lab  # noqa: E402

from conftest import CHROMIUM, CHROMIUM_ARGS, SITE, serve_module  # noqa: E402

CODE = "x = sum(range(100))"
WARMUP = 20
FIRST = "attached: its first cells"
FIRST_N = 50
ROWS = ("off", "offered", FIRST, "attached", "attached, a breakpoint in another cell")

_ROUND_TRIPS = """
async ({n, code}) => {
  const kernel = window.__ck['bench.ipynb'].sessionContext.session.kernel;
  const times = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    let idle;
    const gotIdle = new Promise(res => { idle = res; });
    const future = kernel.requestExecute({code, silent: false, store_history: false});
    future.onIOPub = (msg) => {
      if (msg.header.msg_type === 'status' && msg.content.execution_state === 'idle') idle();
    };
    const reply = await future.done;
    await gotIdle;
    if (reply.content.status !== 'ok') throw new Error('the cell failed: ' + JSON.stringify(reply.content));
    times.push([performance.now() - t0, reply.metadata.started, reply.header.date]);
  }
  return times;
}
"""

_DAP = """
async ({command, args}) => {
  const kernel = window.__ck['bench.ipynb'].sessionContext.session.kernel;
  const reply = await kernel.requestDebug({type: 'request', seq: 0, command, arguments: args || {}}).done;
  return reply.content;
}
"""


def site_without_panel(site: Path, where: Path) -> Path:
    """The same site with the one setting that leaves the panel out: its files linked, jupyter-lite.json changed.
    (Not a routed request: routing makes the browser skip its HTTP cache, and the bytes would not compare.)"""
    for entry in site.iterdir():
        if entry.name != "jupyter-lite.json":
            (where / entry.name).symlink_to(entry)
    config = json.loads((site / "jupyter-lite.json").read_text())
    config["jupyter-config-data"]["disabledExtensions"] = ["concurrent-kernel:debugger"]
    (where / "jupyter-lite.json").write_text(json.dumps(config, indent=1))
    return where


def _dap(page: Any, command: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    reply = page.evaluate(_DAP, {"command": command, "args": args or {}})
    if not reply.get("success"):
        raise RuntimeError(f"{command} failed: {reply}")
    return dict(reply)


def _page(browser: Any, url: str) -> tuple[Any, Any]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(180_000)
    open_lab(page, url)
    page.evaluate("async () => { await window.jupyterapp.started; await window.jupyterapp.restored; }")
    new_notebook(page, "bench.ipynb", [CODE], wait=True)
    page.wait_for_timeout(2000)  # the panel's own first requests (debugInfo, inspectVariables) are over
    return context, page


def _trips(page: Any, n: int, warmup: int = WARMUP) -> list[tuple[float, float]]:
    """(round trip ms, in the kernel ms: from its handler's start to the reply, as the reply's times say)."""
    out = []
    for ms, started, date in page.evaluate(_ROUND_TRIPS, {"n": n + warmup, "code": CODE})[warmup:]:
        kernel = (datetime.fromisoformat(date) - datetime.fromisoformat(started)).total_seconds() * 1000
        out.append((ms, kernel))
    return out


def one_round(browser: Any, url: str, off_url: str, n: int, log: Any,
              off_first: bool) -> tuple[dict[str, list[tuple[float, float]]], dict[str, int]]:
    """One round: the site without the panel in a page of its own (before or after the other page: rounds
    alternate); in one page of the site with it, the other rows one after another in the same kernel (offered,
    attached, a breakpoint set, offered again after disconnect), so that they compare without a page's or a
    kernel's start between them."""
    times: dict[str, list[tuple[float, float]]] = {}
    fetched: dict[str, int] = {}
    if not off_first:
        times.update(_panel_rows(browser, url, n, log, fetched))
    context, page = _open(browser, off_url, "off", log, fetched)
    times["off"] = _trips(page, n)
    context.close()
    if off_first:
        times.update(_panel_rows(browser, url, n, log, fetched))
    return times, fetched


def _open(browser: Any, site: str, row: str, log: Any, fetched: dict[str, int]) -> tuple[Any, Any]:
    t0 = time.time()
    context, page = _page(browser, site)
    fetched[row] = sum(e.nbytes for e in log.since(t0) if "/static/pyodide/" not in e.path)
    offered = page.evaluate("async () => (await window.__ck['bench.ipynb'].sessionContext.session.kernel.info)"
                            ".debugger")
    if offered is not (row != "off"):
        raise RuntimeError(f"row {row!r}: the kernel says debugger: {offered}")
    return context, page


def _panel_rows(browser: Any, url: str, n: int, log: Any,
                fetched: dict[str, int]) -> dict[str, list[tuple[float, float]]]:
    times: dict[str, list[tuple[float, float]]] = {}
    context, page = _open(browser, url, "offered", log, fetched)
    times["offered"] = _trips(page, n)
    _dap(page, "initialize", {"clientID": "bench", "adapterID": "python", "pathFormat": "path",
                              "linesStartAt1": True, "columnsStartAt1": True})
    _dap(page, "attach")
    _dap(page, "configurationDone")
    # The first attach of a process sets the tool's one global event (RAISE, no callback until asked for), which
    # has CPython re-instrument each code object as it next runs: timed on its own.
    times[FIRST] = _trips(page, FIRST_N, warmup=0)
    times["attached"] = _trips(page, n)
    other = "def elsewhere():\n    return 1\n"
    path = _dap(page, "dumpCell", {"code": other})["body"]["sourcePath"]
    _dap(page, "setBreakpoints", {"source": {"path": path}, "breakpoints": [{"line": 2}]})
    page.evaluate(_ROUND_TRIPS, {"n": 1, "code": other})
    times["attached, a breakpoint in another cell"] = _trips(page, n)
    _dap(page, "disconnect", {"restart": False, "terminateDebuggee": False})
    times["offered"] += _trips(page, n)
    context.close()
    return times


def panel_files(site: Path) -> dict[str, int]:
    static = site / "extensions" / "concurrent-kernel" / "static"
    files = {p.name: p.stat().st_size for p in static.glob("ck-lazy-*.js")}
    schemas = site / "extensions" / "concurrent-kernel" / "schemas" / "concurrent-kernel"
    files.update({p.name: p.stat().st_size for p in schemas.glob("debugger-*.json")})
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", type=int, default=100, help="round trips per row and round")
    parser.add_argument("--site", type=Path, default=SITE, help="the built site to serve")
    parser.add_argument("--json", type=Path, help="write raw results here")
    args = parser.parse_args(argv)
    serve = serve_module()
    log = serve.ServeLog()
    server, url = serve.serve_in_thread(args.site, 0, True, None, log)
    plain = tempfile.TemporaryDirectory(prefix="ck-no-panel-")
    off_server, off_url = serve.serve_in_thread(site_without_panel(args.site, Path(plain.name)), 0, True, None, log)
    from playwright.sync_api import sync_playwright

    times: dict[str, list[tuple[float, float]]] = {row: [] for row in ROWS}
    fetched: dict[str, list[int]] = {row: [] for row in ROWS}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            for r in range(args.rounds):
                got, nbytes = one_round(browser, url, off_url, args.n, log, off_first=r % 2 == 0)
                for row in ROWS:
                    times[row] += got[row]
                    print(f"round {r + 1} {row}: median {statistics.median(t for t, _ in got[row]):.2f} ms, in the "
                          f"kernel {statistics.median(k for _, k in got[row]):.2f} ms", flush=True)
                for row, count in nbytes.items():
                    fetched[row].append(count)
            browser.close()
    finally:
        server.shutdown()
        off_server.shutdown()
        plain.cleanup()
    base = statistics.median(t for t, _ in times["off"])
    kernel_base = statistics.median(k for _, k in times["off"])
    print(f"\nround trip of `{CODE}`, {args.rounds} rounds x {args.n} (after {WARMUP} warm-up), medians; 'in the "
          "kernel': from the handler's start to the reply (execute_reply's metadata.started and header.date)")
    print("| debugger | round trip p50 ms | p90 ms | ratio to off | in the kernel p50 ms | ratio to off |")
    print("|---|---|---|---|---|---|")
    for row in ROWS:
        trips = [t for t, _ in times[row]]
        kernel = statistics.median(k for _, k in times[row])
        p50 = statistics.median(trips)
        p90 = statistics.quantiles(trips, n=10)[-1]
        print(f"| {row} | {p50:.2f} | {p90:.2f} | {p50 / base:.2f}x | {kernel:.2f} | {kernel / kernel_base:.2f}x |")
    print("\nsite bytes a lab page fetched opening this kernel's notebook (Pyodide's files left out), median")
    print(f"| with the panel | {statistics.median(fetched['offered']) / 1e3:.0f} kB |")
    print(f"| panel left out | {statistics.median(fetched['off']) / 1e3:.0f} kB |")
    files = panel_files(args.site)
    listed = ", ".join(f"{name} {size / 1e3:.1f} kB" for name, size in files.items())
    print(f"\nthe panel's files in the site: {listed}")
    if args.json:
        args.json.write_text(json.dumps({"times_ms": times, "fetched_bytes": fetched, "panel_files": files}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
