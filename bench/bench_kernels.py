"""Benchmark concurrent-kernel beside ipykernel (and other peers), interleaved in one run; print a markdown table.

    python bench/bench_kernels.py [--rounds 3] [--json results.json]
    python bench/bench_kernels.py --peers              # also akernel and async-kernel, in venvs of their own
    python bench/bench_kernels.py --baseline origin/main  # also that commit's concurrent-kernel (a git worktree)

Each round starts every kernel in turn (the order rotates between rounds), measures it, and shuts it down.
The table reports medians over rounds and each kernel's ratio to ipykernel measured in this same run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from queue import Empty
from typing import Any

import psutil
from jupyter_client.blocking import BlockingKernelClient
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

Msg = dict[str, Any]
REFERENCE = "ipykernel"
HIST = "--HistoryManager.hist_file=:memory:"
SPECS: dict[str, dict[str, Any]] = {
    "ipykernel": {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}", HIST],
        "interrupt_mode": "signal",
    },
    "concurrent": {
        "argv": [sys.executable, "-m", "concurrent_kernel", "-f", "{connection_file}", HIST],
        "interrupt_mode": "message",
    },
    "concurrent-trio": {
        "argv": [sys.executable, "-m", "concurrent_kernel", "-f", "{connection_file}", "--backend", "trio", HIST],
        "interrupt_mode": "message",
        # cells run on trio: the awaiting cell awaits trio's sleep (asyncio's would fail at once)
        "await_sleep": "import trio\nawait trio.sleep(100)",
    },
}
#: Other kernels, from PyPI, each in a venv of its own that the bench makes (--peers): pip spec, argv after python.
PEERS = {
    "akernel": ("akernel==0.4.2", ["-m", "akernel", "launch", "-f", "{connection_file}"], "signal"),
    "async-kernel": ("async-kernel==0.23.1", ["-m", "async_kernel", "start", "--connection_file={connection_file}"],
                     "message"),
}


def peer_specs(root: Path) -> dict[str, dict[str, Any]]:
    """Kernelspecs for the peers, installing each into `root/NAME` the first time."""
    specs = {}
    for name, (requirement, args, mode) in PEERS.items():
        venv = root / name
        python = venv / "bin" / "python"
        if not python.exists():
            print(f"installing {requirement} into {venv}", file=sys.stderr)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(python), "-m", "pip", "install", "-q", requirement], check=True)
        specs[name] = {"argv": [str(python), *args], "interrupt_mode": mode}
    return specs


def baseline_specs(rev: str, root: Path) -> dict[str, dict[str, Any]]:
    """This repository's kernel at `rev` (a detached git worktree under `root`), run by this venv's Python."""
    repo = Path(__file__).resolve().parent.parent
    tree = root / "baseline"
    subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", "-f", str(tree), rev], check=True,
                   capture_output=True)
    start = (f"import sys; sys.path.insert(0, {str(tree / 'py')!r}); "
             "from concurrent_kernel.__main__ import main; sys.exit(main())")
    return {
        f"baseline{suffix}": {
            "argv": [sys.executable, "-c", start, "-f", "{connection_file}", *extra, HIST],
            "interrupt_mode": "message",
        }
        | ({"await_sleep": "import trio\nawait trio.sleep(100)"} if suffix else {})
        for suffix, extra in (("", []), ("-trio", ["--backend", "trio"]))
    }


def remove_baseline(root: Path) -> None:
    repo = Path(__file__).resolve().parent.parent
    subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(root / "baseline")],
                   capture_output=True)
#: A request still unanswered after this long while a cell sleeps 3 s is reported as blocked (">").
BLOCKED_AFTER = 2.5
LINES = 200_000
#: The same lines from a child process (OS-level output through the kernel's captured fd 1).
SUBPROCESS_LINES = (
    "import subprocess, sys\nsubprocess.run([sys.executable, '-c', 'for i in range({n}): print(i)'])"
)
PIPELINED = 1000


def write_specs(root: Path, specs: dict[str, dict[str, Any]] | None = None) -> Path:
    """One kernelspec directory per entry of `specs` (default SPECS) under `root`."""
    for name, spec in (SPECS if specs is None else specs).items():
        (root / name).mkdir(parents=True, exist_ok=True)
        full = {"display_name": f"bench {name}", "language": "python",
                **{k: v for k, v in spec.items() if k in ("argv", "interrupt_mode", "env")}}
        (root / name / "kernel.json").write_text(json.dumps(full))
    return root


class Bench:
    """One running kernel and the measurements made on it."""

    def __init__(self, name: str, specs: Path, interrupt_mode: str = "signal", await_sleep: str | None = None) -> None:
        self.name = name
        self.interrupt_mode = interrupt_mode
        #: The awaiting cell of the await-interrupt row, in this kernel's own async library.
        self.await_sleep = await_sleep
        ksm = KernelSpecManager(kernel_dirs=[str(specs)], ensure_native_kernel=False)
        self.km = KernelManager(kernel_name=name, kernel_spec_manager=ksm)
        started = time.perf_counter()
        # ipykernel does not capture fd output under pytest: make sure both kernels see a plain environment.
        # Their terminal stdout is discarded: ipykernel echoes captured fd output there (cheap into /dev/null).
        env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
        self.km.start_kernel(env=env, stdout=subprocess.DEVNULL)
        self.kc: BlockingKernelClient = self.km.client()
        self.kc.start_channels()
        self.cold_start = self._first_kernel_info_reply(started)
        # wait_for_ready adds a fixed ~0.2 s iopub flush on the client side, the same for every kernel,
        # so the cold start is taken at the first kernel_info_reply instead.
        self.kc.wait_for_ready(timeout=60)
        self.proc = psutil.Process(self.km.provisioner.process.pid)  # type: ignore[union-attr]

    def _first_kernel_info_reply(self, started: float, timeout: float = 60) -> float:
        """Ask for kernel_info every 10 ms until the first reply; seconds since `started`."""
        deadline = started + timeout
        while time.perf_counter() < deadline:
            self.kc.kernel_info()
            try:
                while True:
                    msg = self.kc.get_shell_msg(timeout=0.01)
                    if msg["msg_type"] == "kernel_info_reply":
                        return time.perf_counter() - started
            except Empty:
                continue
        raise TimeoutError(f"{self.name}: no kernel_info_reply within {timeout} s")

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)

    # ------------------------------------------------------------ message helpers

    def drain(self) -> None:
        for get in (self.kc.get_shell_msg, self.kc.get_iopub_msg, self.kc.get_control_msg):
            while True:
                try:
                    get(timeout=0.01)
                except Empty:
                    break

    def reply(self, msg_id: str, timeout: float, get: Callable[..., Msg] | None = None) -> Msg | None:
        get = get or self.kc.get_shell_msg
        deadline = time.perf_counter() + timeout
        while (left := deadline - time.perf_counter()) > 0:
            try:
                msg = get(timeout=left)
            except Empty:
                return None
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg
        return None

    def replies(self, ids: set[str], timeout: float) -> dict[str, float]:
        """Wait for shell replies to all of `ids`; return when each arrived (perf_counter)."""
        arrived: dict[str, float] = {}
        deadline = time.perf_counter() + timeout
        while len(arrived) < len(ids) and (left := deadline - time.perf_counter()) > 0:
            try:
                msg = self.kc.get_shell_msg(timeout=left)
            except Empty:
                break
            parent = msg["parent_header"].get("msg_id")
            if parent in ids:
                arrived[parent] = time.perf_counter()
        return arrived

    def _iopub_until(self, msg_id: str, timeout: float, done: Callable[[Msg], bool]) -> bool:
        """Read iopub until a message of `msg_id` satisfies `done`; False on timeout."""
        deadline = time.perf_counter() + timeout
        while (left := deadline - time.perf_counter()) > 0:
            try:
                msg = self.kc.get_iopub_msg(timeout=left)
            except Empty:
                return False
            if msg["parent_header"].get("msg_id") == msg_id and done(msg):
                return True
        return False

    def iopub_until_idle(self, msg_id: str, timeout: float, keep: Callable[[Msg], None]) -> bool:
        def done(msg: Msg) -> bool:
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return True
            keep(msg)
            return False

        return self._iopub_until(msg_id, timeout, done)

    def wait_started(self, msg_id: str, timeout: float = 30) -> bool:
        """Wait for the cell's first stream output (cells print 'started' before they block)."""
        return self._iopub_until(msg_id, timeout, lambda msg: msg["msg_type"] == "stream")

    def rss_mb(self) -> float:
        return float(self.proc.memory_info().rss) / 2**20

    # ------------------------------------------------------------ measurements

    def round_trips(self, n: int = 400) -> tuple[float, float]:
        """p50 and p99 (ms) of `n` sequential `pass` executes, send to execute_reply."""
        times = []
        for _ in range(n):
            started = time.perf_counter()
            msg_id = self.kc.execute("pass")
            if self.reply(msg_id, 30) is None:
                raise RuntimeError("execute round trip timed out")
            times.append(time.perf_counter() - started)
        self.drain()
        times.sort()
        return statistics.median(times) * 1000, times[int(len(times) * 0.99) - 1] * 1000

    def threads(self) -> int:
        return int(self.proc.num_threads())

    def cpu_per_pass(self, n: int = 300) -> float:
        self.drain()
        before = self.proc.cpu_times()
        for _ in range(n):
            msg_id = self.kc.execute("pass")
            self.reply(msg_id, 30)
            self.iopub_until_idle(msg_id, 30, lambda m: None)
        after = self.proc.cpu_times()
        used = (after.user - before.user) + (after.system - before.system)
        return used / n * 1000

    def pipelined(self, n: int = PIPELINED) -> tuple[float, bool]:
        self.drain()
        started = time.perf_counter()
        ids = {self.kc.execute("pass") for _ in range(n)}
        deadline = started + 120
        while ids and (left := deadline - time.perf_counter()) > 0:
            try:
                msg = self.kc.get_shell_msg(timeout=left)
            except Empty:
                break
            ids.discard(msg["parent_header"].get("msg_id"))
        elapsed = time.perf_counter() - started
        self.drain()
        return n / elapsed, not ids

    def print_lines(self, n: int = LINES, code: str = "for i in range({n}): print(i)") -> tuple[float, bool]:
        """Send `code` (printing 0..n-1, one a line, to stdout) and time it to idle; every line must be there."""
        self.drain()
        chunks: list[str] = []
        started = time.perf_counter()
        msg_id = self.kc.execute(code.format(n=n))

        def keep(msg: Msg) -> None:
            if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
                chunks.append(msg["content"]["text"])

        finished = self.iopub_until_idle(msg_id, 300, keep)
        elapsed = time.perf_counter() - started
        self.reply(msg_id, 30)
        text = "".join(chunks)
        complete = finished and text == "".join(f"{i}\n" for i in range(n))
        if not complete:
            lines = text.splitlines()
            bad = next((i for i, line in enumerate(lines) if line != str(i)), None)
            print(f"  {self.name}: {n} lines: idle seen={finished}, got {len(lines)} lines in "
                  f"{len(chunks)} stream messages, first wrong line index {bad}", file=sys.stderr)
        return elapsed, complete

    def while_sleeping(self, what: str) -> tuple[float, bool]:
        """Latency of one request while a cell runs time.sleep(3); (seconds, answered before BLOCKED_AFTER)."""
        self.drain()
        cell = self.kc.execute("import time\nprint('started', flush=True)\ntime.sleep(3)")
        self.wait_started(cell)
        if what == "control kernel_info":
            msg = self.kc.session.msg("kernel_info_request", {})
            started = time.perf_counter()
            self.kc.control_channel.send(msg)
            reply = self.reply(msg["header"]["msg_id"], 10, self.kc.get_control_msg)
            elapsed = time.perf_counter() - started
            self.reply(cell, 30)
        else:
            started = time.perf_counter()
            msg_id = self.kc.kernel_info() if what == "shell kernel_info" else self.kc.comm_info()
            arrived = self.replies({msg_id, cell}, 30)
            reply = {} if msg_id in arrived else None
            elapsed = arrived.get(msg_id, time.perf_counter()) - started
        self.drain()
        return elapsed * 1000, reply is not None and elapsed < BLOCKED_AFTER

    def interrupt(self, code: str) -> tuple[float, bool]:
        """Time from the interrupt request to the cell's execute_reply; and whether the kernel answers after."""
        if "asyncio.sleep" in code and self.await_sleep:
            code = self.await_sleep
        self.drain()
        cell = self.kc.execute(f"print('started', flush=True)\n{code}")
        self.wait_started(cell)
        time.sleep(0.3)
        started = time.perf_counter()
        if self.interrupt_mode == "message":
            # As a front end does: over the client's control channel, which is already connected.
            self.kc.control_channel.send(self.kc.session.msg("interrupt_request", {}))
        else:
            self.km.interrupt_kernel()  # SIGINT
        reply = self.reply(cell, 10)
        elapsed = time.perf_counter() - started
        interrupted = reply is not None and reply["content"].get("ename") == "KeyboardInterrupt"
        alive = interrupted and self.reply(self.kc.execute("1"), 10) is not None
        if not alive:
            self.restart()
        self.drain()
        return elapsed * 1000, alive

    def restart(self) -> None:
        """Replace a kernel stuck in a cell that did not stop, so later measurements still run."""
        self.km.restart_kernel(now=True)
        self.kc.wait_for_ready(timeout=60)
        self.proc = psutil.Process(self.km.provisioner.process.pid)  # type: ignore[union-attr]


INTERRUPTS = {
    "interrupt `while True: pass`": "while True: pass",
    "interrupt `time.sleep(100)`": "import time\ntime.sleep(100)",
    "interrupt `await asyncio.sleep(100)`": "import asyncio\nawait asyncio.sleep(100)",
}


class _Timed(dict[str, tuple[float, bool]]):
    """Results that also log how long each measurement took (to stderr)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.last = time.perf_counter()

    def __setitem__(self, key: str, value: tuple[float, bool]) -> None:
        now = time.perf_counter()
        print(f"  {self.name}: {key}: {value[0]:.4g}{'' if value[1] else ' (!)'} [{now - self.last:.1f} s]",
              file=sys.stderr)
        self.last = now
        super().__setitem__(key, value)


def measure(name: str, specs: Path, spec: dict[str, Any], only: str | None = None) -> dict[str, tuple[float, bool]]:
    """One round on one kernel: metric -> (value, ok). A row that fails (a kernel without that feature) is marked."""
    bench = Bench(name, specs, spec["interrupt_mode"], spec.get("await_sleep"))
    out = _Timed(name)
    try:
        if only == "interrupt":
            for label, code in INTERRUPTS.items():
                out[f"{label} (ms)"] = bench.interrupt(code)
            return out
        if only == "execute":
            time.sleep(1.0)
            out["RSS idle (MB)"] = (bench.rss_mb(), True)
            out["threads idle"] = (bench.threads(), True)
            rate, complete = bench.pipelined()
            out["1000 pipelined executes (exec/s)"] = (rate, complete)
            p50, p99 = bench.round_trips()
            out["execute round trip p50 (ms)"] = (p50, True)
            out["execute round trip p99 (ms)"] = (p99, True)
            out["kernel CPU per `pass` (ms)"] = (bench.cpu_per_pass(), True)
            return out
        out["cold start to kernel_info_reply (ms)"] = (bench.cold_start * 1000, True)
        time.sleep(1.0)
        out["RSS idle (MB)"] = (bench.rss_mb(), True)
        out["threads idle"] = (bench.threads(), True)
        rate, complete = bench.pipelined()
        out["1000 pipelined executes (exec/s)"] = (rate, complete)
        out["RSS after 1,000 cells (MB)"] = (bench.rss_mb(), True)
        p50, p99 = bench.round_trips()
        out["execute round trip p50 (ms)"] = (p50, True)
        out["execute round trip p99 (ms)"] = (p99, True)
        out["kernel CPU per `pass` (ms)"] = (bench.cpu_per_pass(), True)
        out["200,000 printed lines, time to idle (s)"] = bench.print_lines()
        out["200,000 lines printed by a subprocess, time to idle (s)"] = bench.print_lines(code=SUBPROCESS_LINES)
        for what in ("control kernel_info", "shell kernel_info", "comm_info"):
            out[f"{what} during time.sleep(3) (ms)"] = bench.while_sleeping(what)
        for label, code in INTERRUPTS.items():
            out[f"{label} (ms)"] = bench.interrupt(code)
    finally:
        bench.close()
    return out


TARGETS = {
    "execute round trip p50 (ms)": "<= 0.3x, below every peer",
    "execute round trip p99 (ms)": "<= 0.5x",
    "kernel CPU per `pass` (ms)": "<= 0.3x",
    "1000 pipelined executes (exec/s)": ">= 6x, above every peer, all replies",
    "200,000 printed lines, time to idle (s)": "<= 1.0x, all lines in order",
    "200,000 lines printed by a subprocess, time to idle (s)": "<= 1.0x, all lines in order before idle",
    "control kernel_info during time.sleep(3) (ms)": "<= ipykernel's",
    "shell kernel_info during time.sleep(3) (ms)": "<= 5 ms",
    "comm_info during time.sleep(3) (ms)": "<= 5 ms",
    "interrupt `while True: pass` (ms)": "<= 100 ms, alive",
    "interrupt `time.sleep(100)` (ms)": "<= 4 ms, alive",
    "interrupt `await asyncio.sleep(100)` (ms)": "<= 4 ms, alive",
    "cold start to kernel_info_reply (ms)": "<= 0.6x",
    "RSS idle (MB)": "<= 0.85x",
    "RSS after 1,000 cells (MB)": "<= 1.0x",
    "threads idle": "no more than needed",
}


def cell(values: list[tuple[float, bool]]) -> str:
    median = statistics.median(v for v, _ in values)
    bad = sum(1 for _, ok in values if not ok)
    text = f"{median:.3g}" if median < 1000 else f"{median:.0f}"
    if bad:
        # e.g. a request that was only answered after the cell ended, a lost line, an interrupt that failed
        text = f"{text} ⚠ {bad}/{len(values)} blocked/failed"
    return text


def table(results: dict[str, dict[str, list[tuple[float, bool]]]], rounds: int) -> str:
    """One column per kernel; every kernel but ipykernel shows its ratio to ipykernel in this run."""
    names = list(results)
    lines = [
        f"| metric (median of {rounds} rounds) | " + " | ".join(names) + " | target |",
        "|---|" + "---|" * len(names) + "---|",
    ]
    for metric, target in TARGETS.items():
        if metric not in results[REFERENCE]:
            continue  # not measured in this run (--only)
        reference = statistics.median(v for v, _ in results[REFERENCE][metric])
        cells = []
        for name in names:
            values = results[name].get(metric)
            if not values:
                cells.append("-")
                continue
            text = cell(values)
            value = statistics.median(v for v, _ in values)
            if name != REFERENCE and reference and metric != "threads idle":
                text += f" ({value / reference:.2f}x)"
            cells.append(text)
        lines.append(f"| {metric} | " + " | ".join(cells) + f" | {target} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every kernel (default 3)")
    parser.add_argument("--json", type=Path, default=None, help="also write raw per-round results here")
    parser.add_argument("--only", choices=["interrupt", "execute"], default=None,
                        help="measure only these rows (interrupt: the three interrupt rows; execute: round trips, "
                        "CPU per cell, pipelined executes, RSS and threads idle)")
    parser.add_argument("--peers", action="store_true",
                        help="also akernel and async-kernel (installed from PyPI into --peers-dir the first time)")
    parser.add_argument("--peers-dir", type=Path, default=Path.home() / ".cache" / "ck-bench-peers")
    parser.add_argument("--baseline", metavar="REV", default=None,
                        help="also this commit's concurrent-kernel, asyncio and trio (e.g. the previous main)")
    parser.add_argument("--kernels", default=None,
                        help="comma-separated subset of the kernels to run (ipykernel is always run)")
    args = parser.parse_args(argv)
    begun = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ck-bench-") as tmp:
        specs = dict(SPECS)
        if args.baseline:
            specs.update(baseline_specs(args.baseline, Path(tmp)))
        if args.peers:
            specs.update(peer_specs(args.peers_dir))
        if args.kernels:
            wanted = {REFERENCE, *args.kernels.split(",")}
            specs = {name: spec for name, spec in specs.items() if name in wanted}
        kernels = list(specs)
        results: dict[str, dict[str, list[tuple[float, bool]]]] = {k: {} for k in kernels}
        spec_dir = write_specs(Path(tmp) / "kernels", specs)
        try:
            for rnd in range(args.rounds):
                order = kernels[rnd % len(kernels):] + kernels[:rnd % len(kernels)]
                for name in order:
                    t0 = time.perf_counter()
                    try:
                        measured = measure(name, spec_dir, specs[name], args.only)
                    except Exception as exc:  # a peer that cannot do some request: the rest of the run goes on
                        print(f"round {rnd + 1} {name}: failed: {exc!r}", file=sys.stderr)
                        continue
                    for metric, value in measured.items():
                        results[name].setdefault(metric, []).append(value)
                    print(f"round {rnd + 1}/{args.rounds} {name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        finally:
            if args.baseline:
                remove_baseline(Path(tmp))
    print(table(results, args.rounds))
    print(f"\n_{args.rounds} rounds in {time.perf_counter() - begun:.0f} s; python {sys.version.split()[0]}; "
          f"{psutil.cpu_count()} CPUs; kernels: {', '.join(kernels)}._")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
