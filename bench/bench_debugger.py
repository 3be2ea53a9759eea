"""Debugger cost: the execute round trip (request -> reply and idle) with --no-debugger, with the debugger offered
(the default, not started), and with a debug session attached and no breakpoint set.

    python bench/bench_debugger.py [N] [CODE] [STARTS]
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from e2e_helpers import iopub_until_idle, start_kernel, stop_kernel, wait_reply
from test_e2e_debugger import Dap

WARMUP = 20


def write_spec(kernels: Path, name: str, extra: list[str]) -> None:
    spec_dir = kernels / name
    spec_dir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "concurrent_kernel", "-f", "{connection_file}", "--HistoryManager.hist_file=:memory:"]
    spec = {"argv": argv + extra, "display_name": name, "language": "python", "interrupt_mode": "message"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))


def round_trips(kc: Any, code: str, n: int) -> list[float]:
    times = []
    for i in range(n + WARMUP):
        start = time.perf_counter()
        msg_id = kc.execute(code)
        wait_reply(kc, msg_id)
        iopub_until_idle(kc, msg_id)
        if i >= WARMUP:
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    code = sys.argv[2] if len(sys.argv) > 2 else "x = sum(range(100))"
    starts_n = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    kernels = Path(tempfile.mkdtemp(prefix="ck-bench-debugger-")) / "kernels"
    write_spec(kernels, "off", ["--no-debugger"])
    write_spec(kernels, "on", [])
    rows: dict[str, list[float]] = {}
    runs = (
        ("--no-debugger", "off", False, code),
        ("offered", "on", False, code),
        ("attached", "on", True, code),
        # what a thread of its own per cell costs without any tracing (the attached row pays it too)
        ("--no-debugger, `# thread` cell", "off", False, "# thread\n" + code),
    )
    for label, name, attach, source in runs:
        km, kc = start_kernel(kernels, name)
        try:
            if attach:
                Dap(km, kc).start()
            rows[label] = round_trips(kc, source, n)
        finally:
            stop_kernel(km, kc)
    starts: dict[str, list[float]] = {"--no-debugger": [], "offered": []}
    for _ in range(starts_n):
        for label, name in (("--no-debugger", "off"), ("offered", "on")):
            begin = time.perf_counter()
            km, kc = start_kernel(kernels, name)
            try:
                msg_id = kc.execute("1")
                wait_reply(kc, msg_id)
                starts[label].append(time.perf_counter() - begin)
            finally:
                stop_kernel(km, kc)
    print(f"start-up to the first execute reply, {starts_n} starts each (interleaved)")
    print("| debugger | median s |")
    print("|---|---|")
    for label, times in starts.items():
        print(f"| {label} | {statistics.median(times):.2f} |")
    print()
    base = statistics.median(rows["--no-debugger"])
    print(f"execute round trip of {code!r}, {n} each after {WARMUP} warm-up")
    print("| debugger | median ms | mean ms | ratio (medians) |")
    print("|---|---|---|---|")
    for label, times in rows.items():
        median = statistics.median(times)
        print(f"| {label} | {median * 1000:.2f} | {statistics.mean(times) * 1000:.2f} | {median / base:.2f} |")


if __name__ == "__main__":
    main()
