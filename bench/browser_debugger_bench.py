"""The browser kernel's debugger: what it costs a cell, and what the panel costs a site's pages.

Round trip (execute_request sent -> execute_reply and idle received, timed in the page) of the CPython bench's cell
(bench/bench_debugger.py: `x = sum(range(100))`) through the notebook's kernel connection in the JupyterLite lab
page, headless Chromium, cross-origin isolated, the site served locally:

  off       the site leaves the debugger out (`disabledExtensions: ["concurrent-kernel:debugger"]` in its
            jupyter-lite.json, served from a copy of the site): the kernel offers none
  offered   the default: offered, no session
  attached  a session attached as the panel attaches one (initialize, attach, configurationDone), no breakpoint
  attached, a breakpoint in another cell
            a breakpoint set (that cell's code is instrumented; the cell timed is not)

The rows are interleaved, each round in a fresh browser context; N round trips per row and round after a warm-up;
medians over all rounds.

Bytes: what a lab page fetches from the site when it opens this kernel's notebook (the server's count of body
bytes, the kernel's Pyodide files left out: the same in both), with the panel and with it left out; and the panel's
files in the site.

    python bench/browser_debugger_bench.py [--rounds 3] [--n 100] [--site lite-site/_output]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))

from lite import new_notebook, open_lab  # noqa: E402

from conftest import CHROMIUM, CHROMIUM_ARGS, SITE  # noqa: E402

CODE = "x = sum(range(100))"
WARMUP = 20
ROWS = ("off", "offered", "attached", "attached, a breakpoint in another cell")

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
    times.push(performance.now() - t0);
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


def _serve_module() -> Any:
    spec = importlib.util.spec_from_file_location("serve_site", ROOT / "scripts" / "serve-site.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def one_row(browser: Any, url: str, row: str, n: int, log: Any) -> tuple[list[float], int]:
    """N round trips of one row in a fresh context; also the site bytes the page fetched (Pyodide's left out)."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(180_000)
        t0 = time.time()
        open_lab(page, url)
        page.evaluate("async () => { await window.jupyterapp.started; await window.jupyterapp.restored; }")
        nb = new_notebook(page, "bench.ipynb", [CODE], wait=True)
        offered = nb.js("return (await kernel.info).debugger")
        if offered is not (row != "off"):
            raise RuntimeError(f"row {row!r}: the kernel says debugger: {offered}")
        if row.startswith("attached"):
            _dap(page, "initialize", {"clientID": "bench", "adapterID": "python", "pathFormat": "path",
                                      "linesStartAt1": True, "columnsStartAt1": True})
            _dap(page, "attach")
            _dap(page, "configurationDone")
        if row == "attached, a breakpoint in another cell":
            other = "def elsewhere():\n    return 1\n"
            path = _dap(page, "dumpCell", {"code": other})["body"]["sourcePath"]
            _dap(page, "setBreakpoints", {"source": {"path": path}, "breakpoints": [{"line": 2}]})
            page.evaluate(_ROUND_TRIPS, {"n": 1, "code": other})
        page.wait_for_timeout(2000)  # the panel's own requests (debugInfo, inspectVariables) are over
        times = page.evaluate(_ROUND_TRIPS, {"n": n + WARMUP, "code": CODE})[WARMUP:]
        fetched = sum(e.nbytes for e in log.since(t0) if "/static/pyodide/" not in e.path)
        return times, fetched
    finally:
        context.close()


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
    serve = _serve_module()
    log = serve.ServeLog()
    server, url = serve.serve_in_thread(args.site, 0, True, None, log)
    plain = tempfile.TemporaryDirectory(prefix="ck-no-panel-")
    off_server, off_url = serve.serve_in_thread(site_without_panel(args.site, Path(plain.name)), 0, True, None, log)
    from playwright.sync_api import sync_playwright

    times: dict[str, list[float]] = {row: [] for row in ROWS}
    fetched: dict[str, list[int]] = {row: [] for row in ROWS}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            for r in range(args.rounds):
                for row in ROWS:
                    got, nbytes = one_row(browser, off_url if row == "off" else url, row, args.n, log)
                    times[row] += got
                    fetched[row].append(nbytes)
                    print(f"round {r + 1} {row}: median {statistics.median(got):.2f} ms, page fetched "
                          f"{nbytes / 1e3:.0f} kB", flush=True)
            browser.close()
    finally:
        server.shutdown()
        off_server.shutdown()
        plain.cleanup()
    base = statistics.median(times["off"])
    print(f"\nround trip of `{CODE}`, {args.rounds} rounds x {args.n} (after {WARMUP} warm-up), medians")
    print("| debugger | p50 ms | p90 ms | ratio to off |")
    print("|---|---|---|---|")
    for row in ROWS:
        p50 = statistics.median(times[row])
        p90 = statistics.quantiles(times[row], n=10)[-1]
        print(f"| {row} | {p50:.2f} | {p90:.2f} | {p50 / base:.2f}x |")
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
