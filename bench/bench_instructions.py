"""Instructions a kernel process spends per `pass` execute, counted by valgrind's callgrind: a CPU cost that does not
move with the machine's load (bench_kernels.py's timings do, on a shared 2-core machine).

    python bench/bench_instructions.py                       # this tree, and ipykernel
    python bench/bench_instructions.py --baseline origin/main --backend trio
    python bench/bench_instructions.py --code "raise KeyboardInterrupt"   # what an interrupted cell's traceback costs

Each kernel runs under callgrind twice, for 50 and for 250 sequential executes after its start-up settled; the
difference divided by 200 is the cost of one execute (start-up and shutdown cancel out). Needs valgrind (Debian's
package); a run takes a few minutes (everything runs ~50x slower under callgrind).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from queue import Empty

from jupyter_client.blocking import BlockingKernelClient
from jupyter_client.connect import write_connection_file

REPO = Path(__file__).resolve().parent.parent
HIST = "--HistoryManager.hist_file=:memory:"


def _argv(kernel: str, tree: Path, backend: str) -> list[str]:
    if kernel == "ipykernel":
        return ["-m", "ipykernel_launcher"]
    start = (f"import sys; sys.path.insert(0, {str(tree / 'py')!r}); "
             "from concurrent_kernel.__main__ import main; sys.exit(main())")
    return ["-c", start, "--backend", backend]


def instructions(kernel: str, tree: Path, backend: str, executes: int, settle: float, code: str = "pass") -> int:
    """Total instructions of one kernel process: start, `executes` cells of `code`, shutdown."""
    with tempfile.TemporaryDirectory(prefix="ck-callgrind-") as tmp:
        connection = Path(tmp) / "kernel.json"
        write_connection_file(str(connection))
        out = Path(tmp) / "callgrind.out"
        args = _argv(kernel, tree, backend)
        if kernel == "ipykernel":
            args += ["-f", str(connection), HIST]
        else:
            args = [*args[:2], "-f", str(connection), *args[2:], HIST]
        env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
        proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "-q", sys.executable, *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        )
        client = BlockingKernelClient(connection_file=str(connection))
        client.load_connection_file()
        client.start_channels()
        try:
            while True:  # valgrind's start-up outlasts wait_for_ready's heartbeat
                client.kernel_info()
                try:
                    client.get_shell_msg(timeout=5)
                    break
                except Empty:
                    if proc.poll() is not None:
                        raise RuntimeError(f"{kernel} exited under valgrind with {proc.returncode}") from None
            time.sleep(settle)  # start-up's deferred work (traceback warm-up, GC freeze) is done
            for _ in range(executes):
                msg_id = client.execute(code)
                while client.get_shell_msg(timeout=600)["parent_header"].get("msg_id") != msg_id:
                    pass
            client.shutdown()
            proc.wait(600)
        finally:
            client.stop_channels()
            if proc.poll() is None:
                proc.kill()
        for line in out.read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError(f"no instruction total in callgrind's output for {kernel}")


def per_execute(kernel: str, tree: Path, backend: str, settle: float, code: str = "pass") -> float:
    few = instructions(kernel, tree, backend, 50, settle, code)
    many = instructions(kernel, tree, backend, 250, settle, code)
    return (many - few) / 200


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    parser.add_argument("--baseline", metavar="REV", default=None, help="also this commit's kernel")
    parser.add_argument("--no-ipykernel", action="store_true", help="leave ipykernel out")
    parser.add_argument("--code", default="pass", help="the cell executed (default: pass)")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds after start before the executes")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (apt-get install valgrind)")
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="ck-baseline-") as tmp:
        kernels: list[tuple[str, str, Path]] = [(f"concurrent ({args.backend})", "concurrent", REPO)]
        if args.baseline:
            tree = Path(tmp) / "tree"
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-f", str(tree), args.baseline],
                           check=True, capture_output=True)
            kernels.append((f"{args.baseline} ({args.backend})", "concurrent", tree))
        if not args.no_ipykernel:
            kernels.append(("ipykernel", "ipykernel", REPO))
        try:
            for label, kernel, tree in kernels:
                value = per_execute(kernel, tree, args.backend, args.settle, args.code)
                print(f"  {label}: {value / 1e6:.3f} M instructions per execute", file=sys.stderr)
                rows.append((label, value))
        finally:
            if args.baseline:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(Path(tmp) / "tree")],
                               capture_output=True)
    reference = dict(rows).get("ipykernel")
    print(f"| kernel | instructions per `{args.code}` execute | ratio to ipykernel |")
    print("|---|---|---|")
    for label, value in rows:
        ratio = f"{value / reference:.2f}x" if reference else "-"
        print(f"| {label} | {value / 1e6:.3f} M | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
