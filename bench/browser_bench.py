"""Browser benchmark: concurrent kernel vs the stock jupyterlite-pyodide-kernel, same offline site, same machine.

For each kernel, in interleaved rounds, in a fresh browser context (empty HTTP cache):
  * first result: time from opening a new notebook (app already loaded) to the first execute_result of `1+1`;
  * round trip: N `1+1` execute requests through the notebook's kernel connection (JupyterLite's message
    path, the worker and the kernel), one at a time, timed in the page; p50 and p90.

    python bench/browser_bench.py [--rounds 3] [--n 50] [--json out.json]

Needs the built site (bash scripts/setup-browser.sh) and /usr/bin/chromium. Targets from the issue:
first result <= 0.5x the stock kernel's; round trip p50 <= 20 ms.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))

from lite import new_notebook, open_lab  # noqa: E402

from conftest import CHROMIUM, CHROMIUM_ARGS, SITE  # noqa: E402

KERNELS = {"concurrent": "concurrent (this kernel)", "python": "stock jupyterlite-pyodide-kernel 0.8.6"}

_ROUND_TRIPS = """
async ({n, timeoutMs}) => {
  // Round trip = execute_request sent -> execute_result received (what the user waits for). Before the
  // next request, wait for the execute_reply or the idle status (the stock kernel sometimes drops replies).
  const panel = window.__ck['bench.ipynb'];
  const kernel = panel.sessionContext.session.kernel;
  const times = [];
  let lostReplies = 0;
  const sleep = (ms, v) => new Promise(res => setTimeout(() => res(v), ms));
  for (let i = 0; i < n; i++) {
    let gotResult, gotIdle;
    const result = new Promise(res => { gotResult = res; });
    const idle = new Promise(res => { gotIdle = res; });
    const t0 = performance.now();
    const future = kernel.requestExecute({code: '1+1', silent: false, store_history: false});
    future.onIOPub = (msg) => {
      if (msg.header.msg_type === 'execute_result') gotResult([performance.now() - t0, msg.content.data['text/plain']]);
      if (msg.header.msg_type === 'status' && msg.content.execution_state === 'idle') gotIdle('idle');
    };
    const r = await Promise.race([result, sleep(timeoutMs, null)]);
    if (r === null || r[1] !== '2') throw new Error('no execute_result for round trip ' + i);
    times.push(r[0]);
    const end = await Promise.race(
      [future.done.then(() => 'reply'), idle.then(() => sleep(50, 'idle')), sleep(5000, 'none')]);
    if (end !== 'reply') lostReplies++;
  }
  return {times, lostReplies};
}
"""


def _serve() -> tuple[Any, str]:
    spec = importlib.util.spec_from_file_location("serve_site", ROOT / "scripts" / "serve-site.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.serve_in_thread(SITE, 0, True)


def one_round(browser: Any, url: str, kernel: str, n: int, idle: float = 0.0) -> dict[str, Any]:
    context = browser.new_context()
    outside: list[str] = []
    context.on("request", lambda r: outside.append(r.url) if not r.url.startswith(url) else None)
    try:
        page = context.new_page()
        page.set_default_timeout(180_000)
        open_lab(page, url)
        page.evaluate("async () => { await window.jupyterapp.started; await window.jupyterapp.restored; }")
        if idle:
            page.wait_for_timeout(idle * 1000)  # a user reading the page before opening a notebook
        t0 = time.perf_counter()
        # Same procedure for both: open, wait for kernel_info_reply, run. (Running a cell before the stock
        # kernel is ready loses its execute_reply and wedges JupyterLite's per-kernel queue.)
        nb = new_notebook(page, "bench.ipynb", ["1+1"], kernel=kernel, wait=True)
        nb.run(0)
        nb.wait_text(0, "2", 180)
        first = time.perf_counter() - t0
        got = page.evaluate(_ROUND_TRIPS, {"n": n, "timeoutMs": 60_000})
    finally:
        context.close()
    assert not [u for u in outside if not u.startswith(("data:", "blob:"))], f"non-local requests: {outside[:5]}"
    return {"first_result_s": first, "round_trips_ms": got["times"], "lost_replies": got["lostReplies"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", type=int, default=50, help="round trips per round")
    parser.add_argument("--json", type=Path, help="write raw results here")
    parser.add_argument("--idle", type=float, default=10.0,
                        help="also measure opening the notebook this many seconds after the app loaded (0: skip)")
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    server, url = _serve()
    modes = [0.0] + ([args.idle] if args.idle else [])
    results: dict[str, list[dict[str, Any]]] = {f"{k}@{m:g}": [] for k in KERNELS for m in modes}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            for r in range(args.rounds):
                for mode in modes:
                    for kernel in KERNELS:  # interleaved, so drift hits both alike
                        res = one_round(browser, url, kernel, args.n, mode)
                        results[f"{kernel}@{mode:g}"].append(res)
                        print(
                            f"round {r + 1} {kernel:10s} idle {mode:g}s: first result {res['first_result_s']:.2f} s, "
                            f"round trip p50 {statistics.median(res['round_trips_ms']):.1f} ms",
                            file=sys.stderr,
                        )
            browser.close()
    finally:
        server.shutdown()

    rows = []
    summary: dict[str, dict[str, float]] = {}
    for key, res in results.items():
        kernel, mode = key.split("@")
        firsts = [r["first_result_s"] for r in res]
        trips = sorted(t for r in res for t in r["round_trips_ms"])
        p90 = trips[min(len(trips) - 1, int(0.9 * len(trips)))]
        lost = sum(r["lost_replies"] for r in res)
        summary[key] = {"first_median_s": statistics.median(firsts), "rt_p50_ms": statistics.median(trips),
                        "rt_p90_ms": p90}
        rows.append(f"| {KERNELS[kernel]} | {mode} s | {statistics.median(firsts):.2f} s "
                    f"(min {min(firsts):.2f}, max {max(firsts):.2f}) | {statistics.median(trips):.1f} ms "
                    f"| {p90:.1f} ms | {lost} |")
    print(f"Browser benchmark: headless Chromium, {args.rounds} rounds x {args.n} round trips, offline site, "
          "fresh browser context (empty cache) per run\n")
    print("| kernel | app idle before New notebook | new notebook -> first `1+1` result (median) "
          "| execute round trip p50 | p90 | replies lost |")
    print("| --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    ratios = {m: summary[f"concurrent@{m:g}"]["first_median_s"] / summary[f"python@{m:g}"]["first_median_s"]
              for m in modes}
    print("\nfirst-result ratio concurrent/stock (target <= 0.5): "
          + ", ".join(f"{r:.2f} with {m:g} s idle" for m, r in ratios.items())
          + f"; concurrent round trip p50 {summary['concurrent@0']['rt_p50_ms']:.1f} ms (target <= 20 ms)")
    ratio = ratios[0.0]
    if args.json:
        args.json.write_text(json.dumps({"results": results, "summary": summary, "ratio": ratio}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
