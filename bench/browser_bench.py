"""Browser benchmark: concurrent kernel vs the stock jupyterlite-pyodide-kernel, same offline site, same machine.

For each kernel, in interleaved rounds, in a fresh browser context (empty HTTP cache):
  * first result: time from opening a new notebook (app already loaded) to the first execute_result of `1+1`;
  * round trip: N `1+1` execute requests, one at a time, timed in the page; p50 and p90. Through a kernel the app's
    service manager starts with no notebook open (issue 20's row: JupyterLite's message path, the worker and the
    kernel), in a page of its own; and through the new notebook's kernel, where JupyterLab's notebook toolbar and
    debugger handlers also react to every status and reply;
  * 200 `pass` execute requests sent at once, to the last execute_reply (a missing reply fails the row);
  * a cell printing 20,000 lines, to its idle status (a missing or reordered line fails the row);
  * kernel_info while a cell awaits `asyncio.sleep(2)`, timed in the page;
  * interrupt of blocking code: `kernel.interrupt()` while `while True: pass` runs, to the execute reply (3 times;
    none when no reply comes in 5 s).

    python bench/browser_bench.py [--rounds 3] [--n 50] [--steady] [--json out.json]

With --steady the round trips are those of a kernel past its start, for either kernel: the page is left 3 s after
the first result and 20 round trips are run uncounted first (this kernel's worker loads its later files and the
browser tiers up Pyodide's wasm in the background for a few seconds after a start). For this kernel it also waits
until the pool's next spare worker is warm: 2 s of quiet start it, and its warm-up (~1.5 s of one core) beside the
round trips doubled them on this 2-core machine (10-11 ms against 5 ms p50 in one run).

With --cold, instead: a reader of a docs page. The REPL opens with `?kernel=...&code=...&execute=1` in a fresh
browser profile (empty disk cache) and the clock runs from page open to the printed result; then the same page
is reloaded in the same profile (warm cache). Served by the benchmark's own plain static server (no compression,
no Cache-Control: Last-Modified only), on localhost and throttled (--mbit/--delay-ms: one bandwidth cap shared by
every request, workers included, and a delay before each response); bytes are counted by that server. The same is
done against a host that makes every file revalidate (`Cache-Control: no-cache` and an ETag on every file, 304 for
a matching If-None-Match), the reload row of issue 20; its 304s are counted.

    python bench/browser_bench.py --cold [--rounds 3] [--mbit 40] [--delay-ms 20] [--json out.json]

Needs the built site (bash scripts/setup-browser.sh) and /usr/bin/chromium. Targets from the issue:
first result <= 0.5x the stock kernel's; round trip p50 <= 20 ms.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))

from lite import new_notebook, open_lab  # noqa: E402

from conftest import CHROMIUM, CHROMIUM_ARGS, SITE, serve_module  # noqa: E402

#: Execute requests sent at once, and lines printed by one cell (issue 20's throughput rows).
PIPELINED_N = 200
PRINTED_LINES = 20_000

#: --steady: the page is left this long after the first result, then this many round trips are not counted.
STEADY_PAUSE_S = 3.0
STEADY_WARMUP = 20

KERNELS = {"concurrent": "concurrent (this kernel)", "python": "stock jupyterlite-pyodide-kernel 0.8.6"}

_ROUND_TRIPS = """
async ({n, timeoutMs}) => {
  // Round trip = execute_request sent -> execute_result received (what the user waits for). Before the
  // next request, wait for the execute_reply or the idle status (the stock kernel sometimes drops replies).
  const kernel = window.__benchKernel;
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

# kernel_info while a cell awaits: what a front end's status poll or a second client sees during a long cell.
_INFO_WHILE_AWAITING = """
async ({timeoutMs}) => {
  const kernel = window.__benchKernel;
  let go;
  const started = new Promise(res => { go = res; });
  const future = kernel.requestExecute({code: "print('go', flush=True)\\nimport asyncio\\nawait asyncio.sleep(2)",
                                        silent: false, store_history: false});
  future.onIOPub = msg => { if (msg.header.msg_type === 'stream') go(); };
  await Promise.race([started, new Promise((_, rej) => setTimeout(() => rej(new Error('no "go"')), 30000))]);
  await new Promise(res => setTimeout(res, 200));
  const t0 = performance.now();
  const late = new Promise(res => setTimeout(() => res(null), timeoutMs));
  const info = await Promise.race([kernel.requestKernelInfo(), late]);
  const ms = info === null ? null : performance.now() - t0;
  await Promise.race([future.done, new Promise(res => setTimeout(res, timeoutMs))]);
  return ms;
}
"""

# Throughput: N `pass` execute requests sent at once through the kernel connection; time until the last
# execute_reply. Fails (error set) when a reply is missing after timeoutMs.
_PIPELINED = """
async ({n, timeoutMs}) => {
  const kernel = window.__benchKernel;
  let replies = 0, last = 0, allIn;
  const done = new Promise(res => { allIn = res; });
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const future = kernel.requestExecute({code: 'pass', silent: false, store_history: false});
    future.onReply = () => { replies++; last = performance.now(); if (replies === n) allIn(); };
  }
  await Promise.race([done, new Promise(res => setTimeout(res, timeoutMs))]);
  const ok = replies === n;
  return {ms: ok ? last - t0 : null, replies, error: ok ? null : `${replies} of ${n} execute_replies`};
}
"""

# Output throughput: a cell printing `lines` numbered lines; time from the request to its idle status. Every line
# must arrive, in order (error set otherwise).
_PRINTED = """
async ({lines, timeoutMs}) => {
  const kernel = window.__benchKernel;
  let text = '', gotIdle;
  const idle = new Promise(res => { gotIdle = res; });
  const t0 = performance.now();
  const future = kernel.requestExecute({code: `for i in range(${lines}): print(i)`, silent: false,
                                        store_history: false});
  future.onIOPub = msg => {
    const type = msg.header.msg_type;
    if (type === 'stream' && msg.content.name === 'stdout') text += msg.content.text;
    if (type === 'status' && msg.content.execution_state === 'idle') gotIdle(performance.now());
  };
  const end = await Promise.race([idle, new Promise(res => setTimeout(() => res(null), timeoutMs))]);
  if (end === null) return {ms: null, error: 'no idle status'};
  let expected = '';
  for (let i = 0; i < lines; i++) expected += i + '\\n';
  if (text !== expected) {
    const got = text.split('\\n').length - 1;
    return {ms: null, error: `output differs from ${lines} lines in order (${got} lines, ${text.length} chars)`};
  }
  return {ms: end - t0, error: null};
}
"""

# Interrupt of blocking code: `while True: pass` running (its "go" printed, then 300 ms), `kernel.interrupt()`,
# time to the execute reply; null when none came in timeoutMs (the kernel is then left as it is).
_INTERRUPT_BLOCKING = """
async ({timeoutMs}) => {
  const kernel = window.__benchKernel;
  let go;
  const started = new Promise(res => { go = res; });
  const future = kernel.requestExecute({code: "print('go', flush=True)\\nwhile True:\\n    pass", silent: false,
                                        store_history: false, stop_on_error: false});
  future.onIOPub = msg => { if (msg.header.msg_type === 'stream') go(); };
  await Promise.race([started, new Promise((_, rej) => setTimeout(() => rej(new Error('no "go"')), 30000))]);
  await new Promise(res => setTimeout(res, 300));
  const t0 = performance.now();
  await Promise.race([kernel.interrupt(), new Promise(res => setTimeout(res, timeoutMs))]);
  const reply = await Promise.race([future.done, new Promise(res => setTimeout(() => res(null), timeoutMs))]);
  return reply === null ? null : performance.now() - t0;
}
"""


def _throughput(results: dict[str, list[dict[str, Any]]], kernel: str, key: str) -> str:
    """Median of a throughput row's runs for KERNEL; a run that lost or reordered anything fails the row."""
    runs = [r[key] for k, res in results.items() if k.split("@")[0] == kernel for r in res]
    failed = [r["error"] for r in runs if r["ms"] is None]
    if failed:
        return f"FAILED in {len(failed)} of {len(runs)} runs: {failed[0]}"
    return f"{statistics.median(r['ms'] for r in runs):.0f} ms (of {len(runs)})"


def _p50_p90(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _serve() -> tuple[Any, str]:
    return serve_module().serve_in_thread(SITE, 0, True)


def one_round(
    browser: Any, url: str, kernel: str, n: int, idle: float = 0.0, interrupts_n: int = 3, steady: bool = False
) -> dict[str, Any]:
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
        page.evaluate("() => { window.__benchKernel = window.__ck['bench.ipynb'].sessionContext.session.kernel; }")
        got = _timed_round_trips(page, kernel, n, steady)
        # before the interrupts: the stock kernel may be left running the interrupted loop
        pipelined = page.evaluate(_PIPELINED, {"n": PIPELINED_N, "timeoutMs": 120_000})
        printed = page.evaluate(_PRINTED, {"lines": PRINTED_LINES, "timeoutMs": 120_000})
        info_ms = page.evaluate(_INFO_WHILE_AWAITING, {"timeoutMs": 10_000})
        interrupts: list[float | None] = []
        for _ in range(interrupts_n):
            interrupts.append(page.evaluate(_INTERRUPT_BLOCKING, {"timeoutMs": 5_000}))
            if interrupts[-1] is None:
                break  # the kernel is still running the loop: nothing more to measure in this page
    finally:
        context.close()
    assert not [u for u in outside if not u.startswith(("data:", "blob:"))], f"non-local requests: {outside[:5]}"
    return {
        "first_result_s": first,
        "round_trips_ms": got["times"],
        "lost_replies": got["lostReplies"],
        "info_while_awaiting_ms": info_ms,
        "interrupt_blocking_ms": interrupts,
        "pipelined": pipelined,
        "printed": printed,
    }


def _timed_round_trips(page: Any, kernel: str, n: int, steady: bool) -> dict[str, Any]:
    """N round trips through window.__benchKernel; with STEADY, once the start's background work is over."""
    if steady:  # the start's background work (later files, wasm tier-up) over, for either kernel
        page.wait_for_timeout(STEADY_PAUSE_S * 1000)
        if kernel == "concurrent":  # the pause let the pool warm its next spare (a worker of its own): until done
            page.wait_for_function("() => window.concurrentKernelPool.spareWarmed", timeout=60_000, polling=100)
        page.evaluate(_ROUND_TRIPS, {"n": STEADY_WARMUP, "timeoutMs": 60_000})
    return page.evaluate(_ROUND_TRIPS, {"n": n, "timeoutMs": 60_000})


# Round trips timed straight after a kernel's first cell (the slowest of them is the row).
AFTER_FIRST_N = 5

# A kernel of the app's service manager with no notebook open (issue 20's round trip row): only the kernel
# connection listens, none of JupyterLab's notebook, toolbar or debugger handlers.
_START_BARE = """
async ({name}) => {
  const app = window.jupyterapp;
  await app.started;
  await app.restored;
  const kernel = await app.serviceManager.kernels.startNew({name});
  await kernel.info;
  window.__benchKernel = kernel;
}
"""


def bare_round(browser: Any, url: str, kernel: str, n: int, steady: bool = False) -> dict[str, Any]:
    """Round trips through a kernel started by the app's service manager, in a page of its own."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(180_000)
        open_lab(page, url)
        page.evaluate(_START_BARE, {"name": kernel})
        # its first cell first, as the notebook's (that kernel's first reply starts this kernel's background work:
        # later files, decoded copies written to the cache)
        page.evaluate(_ROUND_TRIPS, {"n": 1, "timeoutMs": 60_000})
        # the cells right after it, as a Run All sends them: what the start's background work still costs
        after_first = page.evaluate(_ROUND_TRIPS, {"n": AFTER_FIRST_N, "timeoutMs": 60_000})
        got = _timed_round_trips(page, kernel, n, steady)
    finally:
        context.close()
    return {
        "round_trips_ms": got["times"],
        "lost_replies": got["lostReplies"] + after_first["lostReplies"],
        "after_first_ms": after_first["times"],
    }


_CODE = "print(2**20)"
_EXPECT = "1048576"

# Runs in every page before its scripts: notes (performance.now(), ms since the page opened) when the printed
# result appears in an output area.
_WATCH = """
(() => {
  const expect = "__EXPECT__";
  const poll = setInterval(() => {
    for (const el of document.querySelectorAll('.jp-OutputArea-output')) {
      if (el.textContent.includes(expect)) {
        window.__ckResult = performance.now();
        clearInterval(poll);
        return;
      }
    }
  }, 10);
})();
""".replace("__EXPECT__", _EXPECT)

# Load timings of the concurrent kernel's worker (ms since the worker started, plus its start in epoch ms).
_WORKER_TIMINGS = """
() => {
  const k = window.concurrentKernels && [...window.concurrentKernels.values()][0];
  return k ? k.timings : null;
}
"""

#: Already compressed: a compressing host sends these as they are.
_PRECOMPRESSED = (".gz", ".whl", ".zip", ".png", ".woff", ".woff2", ".br")


#: The worker's log lines when a file set it loads in the background was needed before it arrived.
_SYNC_FETCH = re.compile("fetching the later files|standard library zip: fetching")


def _kind(path: str) -> str:
    """Which part of the load a served path belongs to (for the timeline)."""
    name = path.rsplit("/", 1)[-1]
    if "/static/pyodide/" not in path and "/pyodide-stock/" not in path:
        return "app"
    if name.startswith("ck-snapshot"):
        return "snapshot memory"
    if name.startswith("ck-site-packages"):
        return "snapshot files"
    if name.endswith(".whl"):
        return "wheels"
    if name.startswith("pyodide.asm.wasm"):
        return "pyodide wasm"
    return "pyodide other"


def _compressed_sizes(paths: list[str]) -> tuple[int, int]:
    """Bytes a host that gzips (level 6) or brotli-compresses (quality 11, via Node) would send for PATHS."""
    import gzip
    import subprocess

    gz = br = 0
    texts = []
    for path in paths:
        file = SITE / urllib.parse.unquote(path.lstrip("/"))
        if file.is_dir():
            file = file / "index.html"
        if not file.is_file():
            continue
        data = file.read_bytes()
        if path.endswith(_PRECOMPRESSED):
            gz += len(data)
            br += len(data)
        else:
            gz += len(gzip.compress(data, 6))
            texts.append(str(file))
    script = (
        "const fs=require('fs'),z=require('zlib');let n=0;for(const f of JSON.parse(process.argv[1]))"
        "n+=z.brotliCompressSync(fs.readFileSync(f)).length;console.log(n)"
    )
    try:
        out = subprocess.run(["node", "-e", script, json.dumps(texts)], capture_output=True, text=True, check=True)
        br += int(out.stdout.strip())
    except (OSError, subprocess.CalledProcessError, ValueError):
        br = -1
    return gz, br


def _wait_result(page: Any, timeout_s: float) -> float | None:
    """Seconds from the page's navigation start to the printed result (None: none within TIMEOUT_S)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        handle = page.wait_for_function("() => window.__ckResult", timeout=timeout_s * 1000, polling=50)
    except PlaywrightTimeout:
        return None
    return float(handle.json_value()) / 1000


def cold_trial(
    p: Any, urls: dict[str, str], logs: dict[str, Any], net: str, kernel: str, settle: float, timeout: float = 120
) -> dict:
    """Open the REPL in a fresh profile, then reload it (warm cache); times, bytes and a timeline for both."""
    url = urls[net]
    served = logs[net]
    query = urllib.parse.urlencode({"kernel": kernel, "code": _CODE, "execute": "1"})
    repl = f"{url}repl/index.html?{query}"
    outside: list[str] = []
    out: dict[str, Any] = {"net": net, "kernel": kernel}
    with tempfile.TemporaryDirectory(prefix="ck-bench-profile-") as profile:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            context.on("request", lambda r: outside.append(r.url) if not r.url.startswith(url) else None)
            context.add_init_script(_WATCH)
            # what had to fetch the later files or the standard library itself (before the background load)
            later_sync: list[str] = []
            context.on("console", lambda m: later_sync.append(m.text) if _SYNC_FETCH.search(m.text) else None)
            page = context.pages[0] if context.pages else context.new_page()
            for run in ("cold", "warm"):
                if run == "cold":
                    sent_before = served.total
                    page.goto(repl, wait_until="commit")
                else:
                    page.wait_for_timeout(settle * 1000)  # a reader reads; caches are written
                    sent_before = served.total
                    page.reload(wait_until="commit")
                took = _wait_result(page, timeout)
                sent = served.total - sent_before  # what crossed the link until the result showed
                if took is None:  # counted as the timeout and marked in the table
                    out["timeouts"] = out.get("timeouts", 0) + 1
                    took = timeout
                origin = float(page.evaluate("performance.timeOrigin")) / 1000
                entries = [e for e in served.since(origin) if e.start <= origin + took]
                out[run] = {
                    "s": took,
                    "bytes": sent,
                    "requests": len(entries),
                    "revalidated": sum(1 for e in entries if e.status == 304),
                    "served": [
                        {
                            "path": e.path,
                            "status": e.status,
                            "bytes": e.nbytes,
                            "start": e.start - origin,
                            "end": (e.end - origin) if e.end else None,
                        }
                        for e in entries
                    ],
                    "worker": page.evaluate(_WORKER_TIMINGS),
                    "origin": origin,
                }
        finally:
            context.close()
    assert not [u for u in outside if not u.startswith(("data:", "blob:"))], f"non-local requests: {outside[:5]}"
    out["later_sync"] = later_sync
    return out


def _timeline(trial: dict[str, Any]) -> list[str]:
    """Phases of one run: what was fetched when (from the server) and the worker's own marks."""
    lines = []
    kinds: dict[str, list[float]] = {}
    for e in trial["served"]:
        k = kinds.setdefault(_kind(e["path"]), [e["start"], e["start"], 0, 0])
        k[0] = min(k[0], e["start"])
        k[1] = max(k[1], e["end"] if e["end"] is not None else trial["s"])
        k[2] += e["bytes"]
        k[3] += 1
    for kind, (start, end, nbytes, n) in sorted(kinds.items(), key=lambda kv: kv[1][0]):
        lines.append(f"| fetch: {kind} | {start:.2f} | {end:.2f} | {nbytes / 1e6:.2f} MB in {n} requests |")
    worker = trial.get("worker") or {}
    if "origin" in worker:
        zero = worker["origin"] / 1000 - trial["origin"]
        lines.append(f"| worker script started | {zero:.2f} | | |")
        previous = zero
        for key, ms in sorted(
            ((k, v) for k, v in worker.items() if k != "origin" and k != "warmUpCells"), key=lambda kv: kv[1]
        ):
            at = zero + ms / 1000
            lines.append(f"| worker: {key} | {previous:.2f} | {at:.2f} | {at - previous:.2f} s |")
            previous = at
    lines.append(f"| printed result | | {trial['s']:.2f} | |")
    return lines


def main_cold(args: argparse.Namespace) -> int:
    from playwright.sync_api import sync_playwright

    serve = serve_module()
    # "nocache": the throttled link from a host that makes every file revalidate (Cache-Control: no-cache, ETag).
    nets = {"localhost": (None, None, False), "throttled": (True, None, False), "nocache": (True, "no-cache", True)}
    logs = {net: serve.ServeLog() for net in nets}
    throttle = serve.Throttle(args.mbit, args.delay_ms)
    servers, urls = {}, {}
    for net, (thr, cache_control, etag) in nets.items():
        servers[net], urls[net] = serve.serve_in_thread(
            SITE, 0, True, throttle if thr else None, logs[net], cache_control, etag
        )
    trials: list[dict[str, Any]] = []
    t_start = time.perf_counter()
    try:
        with sync_playwright() as p:
            for r in range(args.rounds):
                order = list(KERNELS) if r % 2 == 0 else list(reversed(KERNELS))
                for net in nets:
                    for kernel in order:  # interleaved, so drift hits both alike
                        t = cold_trial(p, urls, logs, net, kernel, args.settle)
                        t["round"] = r
                        trials.append(t)
                        print(
                            f"round {r + 1} {net:9s} {kernel:10s}: cold {t['cold']['s']:.2f} s "
                            f"({t['cold']['bytes'] / 1e6:.1f} MB), reload {t['warm']['s']:.2f} s "
                            f"({t['warm']['bytes'] / 1e6:.2f} MB)",
                            file=sys.stderr,
                        )
    finally:
        for server in servers.values():
            server.shutdown()

    def med(net: str, kernel: str, run: str, key: str) -> float:
        return statistics.median(t[run][key] for t in trials if t["net"] == net and t["kernel"] == kernel)

    net_label = f"{args.mbit:g} Mbit/s with {args.delay_ms:g} ms per request"
    rows = [
        ("page open -> printed result, localhost", "localhost", "cold", "s"),
        (f"the same at {net_label}", "throttled", "cold", "s"),
        ("bytes served to get there", "throttled", "cold", "bytes"),
        ("reload of the same page (browser cache warm), localhost", "localhost", "warm", "s"),
        (f"reload of the same page (browser cache warm), {args.mbit:g} Mbit/s", "throttled", "warm", "s"),
        (f"bytes re-downloaded on reload ({args.mbit:g} Mbit/s)", "throttled", "warm", "bytes"),
        (
            f"reload against a no-cache host (Cache-Control: no-cache, ETag), {args.mbit:g} Mbit/s",
            "nocache",
            "warm",
            "s",
        ),
        ("bytes re-downloaded on that reload", "nocache", "warm", "bytes"),
        ("requests answered 304 on that reload", "nocache", "warm", "revalidated"),
    ]
    print(
        f"Cold page benchmark: REPL `?kernel=...&code={_CODE}&execute=1`, fresh Chromium profile per trial, "
        f"median of {args.rounds} interleaved trials ({time.perf_counter() - t_start:.0f} s)\n"
    )
    print(f"| | {KERNELS['concurrent']} | {KERNELS['python']} | ratio |")
    print("|---|---|---|---|")
    summary = {}
    for label, net, run, key in rows:
        a, b = med(net, "concurrent", run, key), med(net, "python", run, key)
        lost = {
            k: sum(1 for t in trials if t["net"] == net and t["kernel"] == k and t.get("timeouts")) for k in KERNELS
        }
        if any(lost.values()):
            label += " (⚠ trials without a result in 120 s: " + ", ".join(f"{k} {n}" for k, n in lost.items()) + ")"
        summary[label] = {"concurrent": a, "python": b}
        fmt = {"bytes": lambda v: f"{v / 1e6:.2f} MB", "revalidated": lambda v: f"{v:g}"}.get(
            key, lambda v: f"{v:.2f} s"
        )
        print(f"| {label} | {fmt(a)} | {fmt(b)} | {f'{a / b:.2f}x' if b else '-'} |")

    # What a compressing host would send for the same files (median concurrent trial's paths).
    for kernel in KERNELS:
        runs = sorted(
            (t for t in trials if t["net"] == "throttled" and t["kernel"] == kernel), key=lambda t: t["cold"]["s"]
        )
        mid = runs[len(runs) // 2]["cold"]
        done = [e["path"] for e in mid["served"] if e["status"] == 200 and e["end"] and e["end"] <= mid["s"]]
        gz, br = _compressed_sizes(done)
        print(
            f"\n{KERNELS[kernel]}: {mid['bytes'] / 1e6:.1f} MB served uncompressed; a host that compresses would "
            f"send {gz / 1e6:.1f} MB (gzip) / {br / 1e6:.1f} MB (brotli)"
        )
        summary[f"compressed {kernel}"] = {"gzip": gz, "brotli": br}
    for kernel in ("concurrent",):
        for net, run in (("throttled", "cold"), ("throttled", "warm"), ("nocache", "warm")):
            runs = sorted((t for t in trials if t["net"] == net and t["kernel"] == kernel), key=lambda t: t[run]["s"])
            mid = runs[len(runs) // 2][run]
            host = ", no-cache host" if net == "nocache" else ""
            print(
                f"\nTimeline, {KERNELS[kernel]}, {run} at {net_label}{host} (median trial; seconds since page open)\n"
            )
            print("| phase | start | end | |\n|---|---|---|---|")
            print("\n".join(_timeline(mid)))
    if args.json:
        args.json.write_text(json.dumps({"trials": trials, "summary": summary}, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", type=int, default=50, help="round trips per round")
    parser.add_argument("--json", type=Path, help="write raw results here")
    parser.add_argument("--steady", action="store_true", help="round trips of a kernel past its start (see above)")
    parser.add_argument(
        "--idle",
        type=float,
        default=10.0,
        help="also measure opening the notebook this many seconds after the app loaded (0: skip)",
    )
    parser.add_argument(
        "--cold",
        action="store_true",
        help="page open -> first result from a fresh profile, then reload (the cold-page table)",
    )
    parser.add_argument("--mbit", type=float, default=40.0, help="--cold: bandwidth of the throttled server")
    parser.add_argument("--delay-ms", type=float, default=20.0, help="--cold: delay per request, throttled server")
    parser.add_argument("--site", type=Path, default=ROOT / "lite-site" / "_output", help="the built site to serve")
    parser.add_argument("--settle", type=float, default=5.0, help="--cold: seconds between the result and reload")
    args = parser.parse_args(argv)
    globals()["SITE"] = args.site.resolve()
    if args.cold:
        return main_cold(args)

    from playwright.sync_api import sync_playwright

    server, url = _serve()
    modes = [0.0] + ([args.idle] if args.idle else [])
    results: dict[str, list[dict[str, Any]]] = {f"{k}@{m:g}": [] for k in KERNELS for m in modes}
    bare: dict[str, list[dict[str, Any]]] = {k: [] for k in KERNELS}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            for r in range(args.rounds):
                for mode in modes:
                    for kernel in KERNELS:  # interleaved, so drift hits both alike
                        res = one_round(browser, url, kernel, args.n, mode, steady=args.steady)
                        results[f"{kernel}@{mode:g}"].append(res)
                        if mode == 0.0:
                            bare[kernel].append(bare_round(browser, url, kernel, args.n, steady=args.steady))
                        print(
                            f"round {r + 1} {kernel:10s} idle {mode:g}s: first result {res['first_result_s']:.2f} s, "
                            f"round trip p50 {statistics.median(res['round_trips_ms']):.1f} ms, "
                            f"pipelined {res['pipelined']['ms']} ms, printed {res['printed']['ms']} ms",
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
        p50, p90 = _p50_p90([t for r in res for t in r["round_trips_ms"]])
        lost = sum(r["lost_replies"] for r in res)
        summary[key] = {"first_median_s": statistics.median(firsts), "rt_p50_ms": p50, "rt_p90_ms": p90}
        rows.append(
            f"| {KERNELS[kernel]} | {mode} s | {statistics.median(firsts):.2f} s "
            f"(min {min(firsts):.2f}, max {max(firsts):.2f}) | {p50:.1f} ms "
            f"| {p90:.1f} ms | {lost} |"
        )
    for kernel, res in bare.items():
        p50, p90 = _p50_p90([t for r in res for t in r["round_trips_ms"]])
        summary[f"{kernel}@bare"] = {"rt_p50_ms": p50, "rt_p90_ms": p90}
    print(
        f"Browser benchmark: headless Chromium, {args.rounds} rounds x {args.n} round trips"
        f"{f' (--steady: after {STEADY_PAUSE_S:g} s and {STEADY_WARMUP} uncounted)' if args.steady else ''}, "
        "offline site, "
        "fresh browser context (empty cache) per run\n"
    )
    print(
        "| kernel | app idle before New notebook | new notebook -> first `1+1` result (median) "
        "| execute round trip p50 | p90 | replies lost |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    ratios = {
        m: summary[f"concurrent@{m:g}"]["first_median_s"] / summary[f"python@{m:g}"]["first_median_s"] for m in modes
    }
    print(
        "\nfirst-result ratio concurrent/stock (target <= 0.5): "
        + ", ".join(f"{r:.2f} with {m:g} s idle" for m, r in ratios.items())
        + f"; concurrent round trip p50 {summary['concurrent@0']['rt_p50_ms']:.1f} ms (target <= 20 ms)"
    )

    def cell(kernel: str, key: str, unit: str) -> str:
        values = [v for m in modes for r in results[f"{kernel}@{m:g}"] for v in _listed(r[key])]
        got = sorted(v for v in values if v is not None)
        missed = len(values) - len(got)
        text = f"{statistics.median(got):.0f} {unit} (of {len(got)})" if got else "none"
        return text + (f", {missed} without a reply in 5-10 s" if missed else "")

    def trips(kernel: str) -> str:
        t = summary[f"{kernel}@0"]
        return f"{t['rt_p50_ms']:.1f} / {t['rt_p90_ms']:.1f} ms"

    def bare_trips(kernel: str) -> str:
        t = summary[f"{kernel}@bare"]
        lost = sum(r["lost_replies"] for r in bare[kernel])
        return f"{t['rt_p50_ms']:.1f} / {t['rt_p90_ms']:.1f} ms" + (f" ({lost} replies lost)" if lost else "")

    print(f"\n| browser row (issue 20) | {KERNELS['python']} | {KERNELS['concurrent']} |\n|---|---|---|")
    print(
        "| execute round trip p50 / p90, a kernel of the app's service manager (no notebook open) "
        f"| {bare_trips('python')} | {bare_trips('concurrent')} |"
    )
    print(
        "| the same through an open notebook's kernel (JupyterLab's toolbar and debugger react to each) "
        f"| {trips('python')} | {trips('concurrent')} |"
    )
    def after_first(kernel: str) -> str:
        slowest = [max(r["after_first_ms"]) for r in bare[kernel] if r["after_first_ms"]]
        return f"{statistics.median(slowest):.0f} ms (max {max(slowest):.0f})" if slowest else "none"

    print(
        f"| slowest of the {AFTER_FIRST_N} round trips right after a kernel's first cell (median over rounds) "
        f"| {after_first('python')} | {after_first('concurrent')} |"
    )
    for label, key in (
        ("interrupt `while True: pass` -> execute reply (median)", "interrupt_blocking_ms"),
        ("kernel_info while a cell awaits (median)", "info_while_awaiting_ms"),
    ):
        print(f"| {label} | {cell('python', key, 'ms')} | {cell('concurrent', key, 'ms')} |")
    for label, key in (
        (f"{PIPELINED_N} pipelined `pass` executes -> last execute_reply, every reply (median)", "pipelined"),
        (f"{PRINTED_LINES:,} printed lines -> idle, every line in order (median)", "printed"),
    ):
        print(f"| {label} | {_throughput(results, 'python', key)} | {_throughput(results, 'concurrent', key)} |")
    ratio = ratios[0.0]
    if args.json:
        args.json.write_text(
            json.dumps({"results": results, "bare": bare, "summary": summary, "ratio": ratio}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
