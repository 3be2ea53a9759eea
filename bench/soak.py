"""Soak: a heavy user's session, pipelined, on both backends of this kernel beside ipykernel; nothing may be lost.

    python bench/soak.py [--cells 5000] [--runs 1] [--kernels concurrent-asyncio,concurrent-trio,ipykernel]

Load (cell k = 1..N, sent back to back): every cell runs `print('line', k)`; every 10th also displays HTML; every
50th raises after printing (`stop_on_error` false); after every 5th cell the client sends a comm message to a
kernel-side echo comm, after every 20th a `kernel_info_request` on control. The client is one thread with its own
sockets (iopub receive high-water mark 0, set before connecting, so it never drops) that reads whatever has
arrived after every message it sends, and keeps reading until every answer is in.

The cells go in two halves; the kernel's RSS is taken after a warm-up cell, after the first half and at the end
(each once the kernel is idle), and growth per 1,000 cells is reported over the second half (steady state) and
over the whole run. Throughput is cells over the time from each half's first send to its last answer.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import zmq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_kernels import SPECS, Bench, write_specs

Msg = dict[str, Any]

KERNEL_SPECS: dict[str, dict[str, Any]] = {
    "concurrent-asyncio": SPECS["concurrent"],
    "concurrent-trio": {**SPECS["concurrent"], "argv": [*SPECS["concurrent"]["argv"], "--backend", "trio"]},
    "ipykernel": SPECS["ipykernel"],
}
ECHO_TARGET = "soak-echo"
SETUP = f"""
from IPython.display import HTML, display
from comm import get_comm_manager

def _soak_open(comm, open_msg):
    comm.on_msg(lambda msg: comm.send(msg["content"]["data"]))

get_comm_manager().register_target({ECHO_TARGET!r}, _soak_open)
"""
#: Runs the failing and displaying paths once before the first RSS sample, so their one-time imports are not growth.
WARM_UP = ["display(HTML('<i>warm</i>'))", "print('warm')\nraise ValueError('warm')"]
LINE = re.compile(r"^line (\d+)$")


def cell_code(k: int) -> str:
    code = f"print('line', {k})"
    if k % 10 == 0:
        code += f"\ndisplay(HTML('<b>{k}</b>'))"
    if k % 50 == 0:
        code += f"\nraise ValueError('soak {k}')"
    return code


@dataclass
class Result:
    kernel: str
    cells: int
    replies: int = 0
    replies_wrong: list[int] = field(default_factory=list)
    lines_unique: int = 0
    lines_duplicated: int = 0
    lines_in_order: bool = True
    lines_lost: list[int] = field(default_factory=list)
    #: Lines that arrived under another cell's parent header, or after their cell's idle status.
    lines_misparented: list[int] = field(default_factory=list)
    lines_after_idle: list[int] = field(default_factory=list)
    #: Lines cut across two stream messages: whole in the output, but a client reading each message as whole
    #: lines would miss them.
    lines_split: list[int] = field(default_factory=list)
    displays: int = 0
    displays_expected: int = 0
    echoes: int = 0
    echoes_expected: int = 0
    control_replies: int = 0
    control_expected: int = 0
    rss_start: float = 0.0
    rss_mid: float = 0.0
    rss_end: float = 0.0
    seconds: float = 0.0
    complete: bool = True

    @property
    def cells_per_s(self) -> float:
        return self.cells / self.seconds if self.seconds else 0.0

    @property
    def growth_steady(self) -> float:
        """MB per 1,000 cells over the second half."""
        return (self.rss_end - self.rss_mid) / (self.cells - self.cells // 2) * 1000

    @property
    def growth_all(self) -> float:
        return (self.rss_end - self.rss_start) / self.cells * 1000

    @property
    def ok(self) -> bool:
        return (
            self.complete and self.replies == self.cells and not self.replies_wrong and not self.lines_lost
            and not self.lines_duplicated and self.lines_in_order and not self.lines_misparented
            and not self.lines_after_idle and not self.lines_split and self.displays == self.displays_expected
            and self.echoes == self.echoes_expected and self.control_replies == self.control_expected
        )


class SoakClient:
    """A client on its own sockets: a thread-based client's iopub would queue (and drop) behind our reading."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.session = bench.kc.session
        info = bench.km.get_connection_info()
        self.ctx = zmq.Context()
        url = f"{info['transport']}://{info['ip']}:"
        self.shell = self._socket(zmq.DEALER, url + str(info["shell_port"]))
        self.control = self._socket(zmq.DEALER, url + str(info["control_port"]))
        self.iopub = self._socket(zmq.SUB, url + str(info["iopub_port"]))
        self.iopub.setsockopt(zmq.SUBSCRIBE, b"")
        self.poller = zmq.Poller()
        for sock in (self.shell, self.control, self.iopub):
            self.poller.register(sock, zmq.POLLIN)
        self.handlers: dict[zmq.Socket[Any], Any] = {}

    def _socket(self, kind: int, url: str) -> zmq.Socket[Any]:
        sock = self.ctx.socket(kind)
        sock.linger = 0
        sock.rcvhwm = 0  # before connect: HWM options apply to connections made afterwards
        sock.sndhwm = 0
        if kind == zmq.DEALER:
            sock.identity = uuid.uuid4().hex.encode()
        sock.connect(url)
        return sock

    def send(self, sock: zmq.Socket[Any], msg_type: str, content: dict[str, Any]) -> str:
        msg = self.session.msg(msg_type, content)
        self.session.send(sock, msg)
        return str(msg["header"]["msg_id"])

    def pump(self, timeout_ms: int) -> int:
        """Read everything that is ready (waiting up to timeout_ms for the first); how many messages were read."""
        n = 0
        for sock, _ in self.poller.poll(timeout_ms):
            while True:
                try:
                    frames = sock.recv_multipart(zmq.NOBLOCK, copy=True)
                except zmq.Again:
                    break
                _, parts = self.session.feed_identities(frames)
                self.handlers[sock](self.session.deserialize(parts))
                n += 1
        return n

    def close(self) -> None:
        self.ctx.destroy(linger=0)


class Soak:
    def __init__(self, bench: Bench, cells: int, window: int = 0) -> None:
        self.bench = bench
        self.n = cells
        self.window = window
        self.client = SoakClient(bench)
        self.client.handlers = {
            self.client.shell: self.on_shell,
            self.client.control: self.on_control,
            self.client.iopub: self.on_iopub,
        }
        self.cell_of: dict[str, int] = {}  # execute msg_id -> cell number (0 for setup / warm-up cells)
        self.replies: dict[int, str] = {}
        self.idle: set[str] = set()
        self.stdout: list[tuple[str, str]] = []  # (parent msg_id, text) in arrival order
        self.after_idle: set[int] = set()
        self.displays = 0
        self.echoes: Counter[int] = Counter()
        self.control_replies = 0
        self.comm_id = uuid.uuid4().hex

    # ------------------------------------------------------------ receiving

    def on_shell(self, msg: Msg) -> None:
        if msg["msg_type"] == "execute_reply":
            k = self.cell_of.get(msg["parent_header"].get("msg_id", ""))
            if k:
                self.replies[k] = msg["content"]["status"]

    def on_control(self, msg: Msg) -> None:
        if msg["msg_type"] == "kernel_info_reply":
            self.control_replies += 1

    def on_iopub(self, msg: Msg) -> None:
        kind, content = msg["msg_type"], msg["content"]
        parent = msg["parent_header"].get("msg_id", "")
        if kind == "stream" and content.get("name") == "stdout":
            self.stdout.append((parent, content["text"]))
            if parent in self.idle and self.cell_of.get(parent):
                self.after_idle.add(self.cell_of[parent])
        elif kind == "status" and content.get("execution_state") == "idle":
            self.idle.add(parent)
        elif kind == "display_data" and self.cell_of.get(parent):
            self.displays += 1
        elif kind == "comm_msg" and content.get("comm_id") == self.comm_id:
            self.echoes[int(content["data"].get("seq", -1))] += 1

    # ------------------------------------------------------------ driving

    def execute(self, code: str, k: int) -> str:
        msg_id = self.client.send(self.client.shell, "execute_request", {
            "code": code, "silent": False, "store_history": True, "user_expressions": {},
            "allow_stdin": False, "stop_on_error": False,
        })
        self.cell_of[msg_id] = k
        return msg_id

    def settle(self, msg_id: str, timeout: float, until: Any = None) -> bool:
        """Read until `msg_id` is idle and `until()` holds, then until 0.3 s pass without a message."""
        deadline = time.perf_counter() + timeout
        while not (msg_id in self.idle and (until is None or until())):
            if time.perf_counter() > deadline:
                return False
            self.client.pump(100)
        return self.quiet(deadline)

    def quiet(self, deadline: float) -> bool:
        while time.perf_counter() < deadline:
            if not self.client.pump(300):
                return True
        return False

    def run_cells(self, first: int, last: int, timeout: float) -> tuple[float, bool]:
        client = self.client
        started = time.perf_counter()
        msg_id = ""
        answered_before = len(self.replies)
        for k in range(first, last + 1):
            while self.window and k - first - (len(self.replies) - answered_before) >= self.window:
                client.pump(100)
            msg_id = self.execute(cell_code(k), k)
            if k % 5 == 0:
                client.send(client.shell, "comm_msg", {"comm_id": self.comm_id, "data": {"seq": k}})
            if k % 20 == 0:
                client.send(client.control, "kernel_info_request", {})
            client.pump(0)

        def answered() -> bool:
            return (
                all(j in self.replies for j in range(first, last + 1))
                and self.echoes.keys() >= set(range(5 * -(-first // 5), last + 1, 5))
                and self.control_replies >= last // 20
            )

        deadline = time.perf_counter() + timeout
        while not (msg_id in self.idle and answered()):
            if time.perf_counter() > deadline:
                return time.perf_counter() - started, False
            client.pump(100)
        elapsed = time.perf_counter() - started
        return elapsed, self.quiet(time.perf_counter() + 30)

    def run(self) -> Result:
        n, client, bench = self.n, self.client, self.bench
        result = Result(bench.name, n)
        timeout = 120 + n / 20
        # Subscriptions take a moment to reach the kernel; outputs before that are dropped, so ask until one idle
        # arrives.
        probes: list[str] = []
        deadline = time.perf_counter() + 30
        while not self.idle.intersection(probes):
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{bench.name}: no idle status on iopub within 30 s")
            probes.append(self.execute("pass", 0))
            client.pump(500)
        self.quiet(deadline + 30)
        setup = self.execute(SETUP, 0)
        client.send(client.shell, "comm_open", {"comm_id": self.comm_id, "target_name": ECHO_TARGET, "data": {}})
        for code in WARM_UP:
            setup = self.execute(code, 0)
        client.send(client.shell, "comm_msg", {"comm_id": self.comm_id, "data": {"seq": 0}})
        if not self.settle(setup, 60, lambda: self.echoes[0] > 0):
            raise RuntimeError(f"{bench.name}: setup did not finish (is the echo comm registered?)")
        self.echoes.clear()
        result.rss_start = bench.rss_mb()
        half = n // 2
        t1, ok1 = self.run_cells(1, half, timeout)
        result.rss_mid = bench.rss_mb()
        t2, ok2 = self.run_cells(half + 1, n, timeout)
        result.rss_end = bench.rss_mb()
        result.seconds, result.complete = t1 + t2, ok1 and ok2
        self.tally(result)
        return result

    def tally(self, r: Result) -> None:
        n = self.n
        r.replies = len(self.replies)
        r.replies_wrong = sorted(
            k for k in range(1, n + 1) if self.replies.get(k) != ("error" if k % 50 == 0 else "ok")
        )
        r.displays, r.displays_expected = self.displays, n // 10
        r.echoes, r.echoes_expected = sum(self.echoes.values()), n // 5
        r.control_replies, r.control_expected = self.control_replies, n // 20
        # Lines by text, in arrival order (a print's text and newline may come in different stream messages).
        text = "".join(t for _, t in self.stdout)
        numbers = [int(m.group(1)) for line in text.splitlines() if (m := LINE.match(line))]
        seen = Counter(numbers)
        r.lines_unique = len(seen)
        r.lines_duplicated = sum(c - 1 for c in seen.values())
        r.lines_in_order = all(a < b for a, b in pairwise(numbers))
        r.lines_lost = sorted(set(range(1, n + 1)) - seen.keys())
        by_parent: defaultdict[str, list[str]] = defaultdict(list)
        for parent, t in self.stdout:
            by_parent[parent].append(t)
        msg_id_of = {k: m for m, k in self.cell_of.items() if k}
        r.lines_misparented = sorted(
            k for k in seen if "".join(by_parent.get(msg_id_of.get(k, ""), [])) != f"line {k}\n"
        )
        r.lines_after_idle = sorted(self.after_idle)
        whole = {int(m.group(1)) for _, t in self.stdout for line in t.split("\n")[:-1] if (m := LINE.match(line))}
        r.lines_split = sorted(seen.keys() - whole)


def soak(name: str, specs: Path, cells: int, window: int = 0) -> Result:
    bench = Bench(name, specs, KERNEL_SPECS[name]["interrupt_mode"])
    bench.kc.stop_channels()  # its iopub would queue everything unread, in the kernel (ours) or dropped (ipykernel)
    soaker = Soak(bench, cells, window)
    try:
        return soaker.run()
    finally:
        soaker.client.close()
        bench.close()


def _cells_list(cells: list[int], limit: int = 8) -> str:
    if not cells:
        return "0"
    shown = ", ".join(map(str, cells[:limit]))
    return f"{len(cells)} ({shown}{', ...' if len(cells) > limit else ''})"


def table(results: list[Result]) -> str:
    lines = [
        "| kernel | cells | replies (status right) | lines unique / dup / in order | lines lost (cells) "
        "| misparented / after idle / split | displays | comm echoes | control replies | RSS start / mid / end (MB) "
        "| RSS growth per 1k cells, 2nd half / all (MB) | cells/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.kernel}{'' if r.ok else ' ⚠'} | {r.cells} | {r.replies} ({r.replies - len(r.replies_wrong)}) "
            f"| {r.lines_unique} / {r.lines_duplicated} / {'yes' if r.lines_in_order else 'NO'} "
            f"| {_cells_list(r.lines_lost)} | {len(r.lines_misparented)} / {len(r.lines_after_idle)} / "
            f"{_cells_list(r.lines_split, 4)} "
            f"| {r.displays}/{r.displays_expected} | {r.echoes}/{r.echoes_expected} "
            f"| {r.control_replies}/{r.control_expected} | {r.rss_start:.1f} / {r.rss_mid:.1f} / {r.rss_end:.1f} "
            f"| {r.growth_steady:.2f} / {r.growth_all:.2f} | {r.cells_per_s:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=5000, help="cells per run (default 5000)")
    parser.add_argument("--runs", type=int, default=1, help="runs of each kernel, interleaved (default 1)")
    parser.add_argument("--kernels", default=",".join(KERNEL_SPECS), help="comma-separated, of: %(default)s")
    parser.add_argument("--window", type=int, default=0,
                        help="at most this many cells sent and not yet answered (default 0: all back to back)")
    parser.add_argument("--json", type=Path, default=None, help="also write every run's raw result here")
    args = parser.parse_args(argv)
    kernels = [k.strip() for k in args.kernels.split(",") if k.strip()]
    unknown = set(kernels) - KERNEL_SPECS.keys()
    if unknown or args.cells < 2:
        parser.error(f"unknown kernels {sorted(unknown)}" if unknown else "--cells must be at least 2")
    # ipykernel turns its fd-level capture off under pytest; measure it as a user runs it.
    os.environ.pop("PYTEST_CURRENT_TEST", None)
    results: list[Result] = []
    begun = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ck-soak-") as tmp:
        specs = write_specs(Path(tmp), KERNEL_SPECS)
        for run in range(args.runs):
            for name in kernels if run % 2 == 0 else reversed(kernels):
                r = soak(name, specs, args.cells, args.window)
                results.append(r)
                print(f"run {run + 1}/{args.runs} {name}: {r.cells_per_s:.0f} cells/s, ok={r.ok}, "
                      f"lost {_cells_list(r.lines_lost)}, split {_cells_list(r.lines_split)}", file=sys.stderr)
    results.sort(key=lambda r: kernels.index(r.kernel))
    print(table(results))
    print(f"\n_{len(results)} runs in {time.perf_counter() - begun:.0f} s; python {sys.version.split()[0]}; "
          f"{os.cpu_count()} CPUs._")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
