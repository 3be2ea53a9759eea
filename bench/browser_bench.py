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


def one_round(browser: Any, url: str, kernel: str, n: int) -> dict[str, Any]:
    context = browser.new_context()
    outside: list[str] = []
    context.on("request", lambda r: outside.append(r.url) if not r.url.startswith(url) else None)
    try:
        page = context.new_page()
        page.set_default_timeout(180_000)
        open_lab(page, url)
        page.evaluate("async () => { await window.jupyterapp.started; await window.jupyterapp.restored; }")
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
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    server, url = _serve()
    results: dict[str, list[dict[str, Any]]] = {k: [] for k in KERNELS}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            for r in range(args.rounds):
                for kernel in KERNELS:  # interleaved, so drift hits both alike
                    res = one_round(browser, url, kernel, args.n)
                    results[kernel].append(res)
                    print(
                        f"round {r + 1} {kernel:10s} first result {res['first_result_s']:.2f} s, "
                        f"round trip p50 {statistics.median(res['round_trips_ms']):.1f} ms",
                        file=sys.stderr,
                    )
            browser.close()
    finally:
        server.shutdown()

    rows = []
    summary: dict[str, dict[str, float]] = {}
    for kernel, label in KERNELS.items():
        firsts = [r["first_result_s"] for r in results[kernel]]
        trips = sorted(t for r in results[kernel] for t in r["round_trips_ms"])
        p90 = trips[min(len(trips) - 1, int(0.9 * len(trips)))]
        summary[kernel] = {"first_median_s": statistics.median(firsts), "rt_p50_ms": statistics.median(trips),
                           "rt_p90_ms": p90}
        lost = sum(r["lost_replies"] for r in results[kernel])
        rows.append(f"| {label} | {statistics.median(firsts):.2f} s (min {min(firsts):.2f}, max {max(firsts):.2f}) "
                    f"| {statistics.median(trips):.1f} ms | {p90:.1f} ms | {lost} |")
    ratio = summary["concurrent"]["first_median_s"] / summary["python"]["first_median_s"]
    print(f"Browser benchmark: headless Chromium, {args.rounds} rounds x {args.n} round trips, offline site\n")
    print("| kernel | new notebook -> first `1+1` result (median) | execute round trip p50 | p90 | replies lost |")
    print("| --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    print(f"\nfirst-result ratio concurrent/stock: {ratio:.2f} (target <= 0.5); "
          f"round trip p50 {summary['concurrent']['rt_p50_ms']:.1f} ms (target <= 20 ms)")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "summary": summary, "ratio": ratio}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
