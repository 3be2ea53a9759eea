"""End to end: output from threads, fd 1/2, child processes and multiprocessing reaches the cell that caused it,
in order, in a real kernel process (jupyter_client over ZMQ), on both backends; the kernel's own log stays on the
terminal."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from jupyter_client.blocking import BlockingKernelClient
from jupyter_client.manager import KernelManager

from e2e_helpers import (
    TIMEOUT,
    drain,
    execute,
    kernel_pid,
    of_type,
    spec_name,
    start_kernel,
    stdout_of,
    stop_kernel,
    wait_for_iopub,
    write_kernelspecs,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

BACKENDS = ["asyncio", "trio"]


class Running:
    def __init__(self, km: KernelManager, kc: BlockingKernelClient, backend: str, terminal: Path) -> None:
        self.km, self.kc, self.backend, self.terminal = km, kc, backend, terminal

    def execute(self, code: str, timeout: float = TIMEOUT) -> tuple[dict, list[dict]]:
        reply, msgs = execute(self.kc, code, timeout=timeout)
        assert reply["content"]["status"] == "ok", reply["content"]
        return reply, msgs


@pytest.fixture(scope="session")
def kernels_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_kernelspecs(tmp_path_factory.mktemp("kernelspecs"))


@pytest.fixture(scope="module", params=BACKENDS)
def shared(request: pytest.FixtureRequest, kernels_dir: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Running]:
    """One kernel per backend; its terminal (the process's original stdout/stderr) goes to a file."""
    terminal = tmp_path_factory.mktemp("terminal") / "kernel.log"
    from jupyter_client.kernelspec import KernelSpecManager

    ksm = KernelSpecManager(kernel_dirs=[str(kernels_dir)], ensure_native_kernel=False)
    km = KernelManager(kernel_name=spec_name(request.param), kernel_spec_manager=ksm)
    with terminal.open("w") as sink:
        km.start_kernel(stdout=sink, stderr=sink)
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        yield Running(km, kc, request.param, terminal)
    finally:
        stop_kernel(km, kc)


@pytest.fixture
def kernel(shared: Running) -> Running:
    assert shared.km.is_alive(), "the shared kernel died in an earlier test"
    drain(shared.kc)
    return shared


def streams(msgs: list[dict]) -> list[tuple[str, str]]:
    """(name, text) of the stream messages, neighbours of one name joined (batching may split or join them)."""
    out: list[tuple[str, str]] = []
    for m in of_type(msgs, "stream"):
        name, text = m["content"]["name"], m["content"]["text"]
        if out and out[-1][0] == name:
            out[-1] = (name, out[-1][1] + text)
        else:
            out.append((name, text))
    return out


def by_name(msgs: list[dict]) -> dict[str, str]:
    """All stdout text and all stderr text (for checks where the interleaving of the two is not fixed)."""
    out = {"stdout": "", "stderr": ""}
    for name, text in streams(msgs):
        out[name] += text
    return out


def wait_text(kernel: Running, msg_id: str, name: str, text: str, timeout: float = TIMEOUT) -> None:
    """Stream output of `msg_id` arriving after its idle, until it contains `text`."""
    seen = ""
    deadline = time.monotonic() + timeout
    while text not in seen:
        msg = wait_for_iopub(kernel.kc, "stream", msg_id, max(0.1, deadline - time.monotonic()))
        if msg["content"]["name"] == name:
            seen += msg["content"]["text"]


# ------------------------------------------------------------------------------------------------ threads


def test_thread_print_goes_to_the_cell(kernel: Running) -> None:
    _, msgs = kernel.execute("import threading\nt = threading.Thread(target=lambda: print('hi'))\nt.start(); t.join()")
    assert streams(msgs) == [("stdout", "hi\n")]


def test_thread_print_after_the_cell_ended_goes_to_that_cell(kernel: Running) -> None:
    first, msgs = kernel.execute(
        "import threading, time\n"
        "late = threading.Thread(target=lambda: (time.sleep(0.5), print('late from the first cell')))\n"
        "late.start()"
    )
    assert not of_type(msgs, "stream")
    _, during = kernel.execute("late.join()")  # another cell runs while the thread prints
    assert not of_type(during, "stream")
    wait_text(kernel, first["parent_header"]["msg_id"], "stdout", "late from the first cell\n")


def test_executors_and_to_thread(kernel: Running) -> None:
    code = (
        "import anyio, concurrent.futures\n"
        "with concurrent.futures.ThreadPoolExecutor(2) as pool:\n"
        "    list(pool.map(print, ['pool']))\n"
        "await anyio.to_thread.run_sync(print, 'anyio')\n"
    )
    if kernel.backend == "asyncio":
        code += "import asyncio\nawait asyncio.get_running_loop().run_in_executor(None, print, 'run_in_executor')\n"
        expected = "pool\nanyio\nrun_in_executor\n"
    else:
        code += "import trio\nawait trio.to_thread.run_sync(print, 'trio')\n"
        expected = "pool\nanyio\ntrio\n"
    _, msgs = kernel.execute(code)
    assert stdout_of(msgs) == expected


def test_explicit_parent_for_library_threads(kernel: Running) -> None:
    first, _ = kernel.execute("import concurrent_kernel\nfirst_cell = concurrent_kernel.get_parent()")
    _, msgs = kernel.execute(
        "def work():\n"
        "    token = concurrent_kernel.set_parent(first_cell)\n"
        "    try:\n"
        "        print('for the first cell')\n"
        "    finally:\n"
        "        concurrent_kernel.reset_parent(token)\n"
        "    print('for this cell')\n"
        "t = threading.Thread(target=work); t.start(); t.join()"
    )
    assert streams(msgs) == [("stdout", "for this cell\n")]
    wait_text(kernel, first["parent_header"]["msg_id"], "stdout", "for the first cell\n")


# ------------------------------------------------------------------------------------------------ fd 1 and 2


def test_os_level_output_in_order_with_prints(kernel: Running) -> None:
    code = (
        "import os, subprocess, sys\n"
        "print('a')\n"
        "os.system('echo b')\n"
        "print('c')\n"
        "subprocess.run(['echo', 'd'])\n"
        "print('e', flush=True)\n"
        "os.write(1, b'f\\n')\n"
        "print('g')\n"
        "os.system('echo err >&2')\n"
        "print('h', file=sys.stderr)\n"
        "sys.__stdout__.write('i\\n'); sys.__stdout__.flush()\n"
        "print('j')\n"
        "os.system('echo last')"
    )
    _, msgs = kernel.execute(code)
    assert streams(msgs) == [("stdout", "a\nb\nc\nd\ne\nf\ng\n"), ("stderr", "err\nh\n"), ("stdout", "i\nj\nlast\n")]


def test_c_level_writes(kernel: Running) -> None:
    code = (
        "import ctypes, sys\n"
        "libc = ctypes.CDLL(None)\n"
        "libc.puts(b'from puts'); libc.fflush(None)\n"
        "libc.write(2, b'from write(2)\\n', 14)\n"
    )
    _, msgs = kernel.execute(code)
    assert streams(msgs) == [("stdout", "from puts\n"), ("stderr", "from write(2)\n")]


def test_subprocess_flood_every_line_in_order_before_idle(kernel: Running) -> None:
    n = 200_000
    _, msgs = kernel.execute(
        f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', 'for i in range({n}): print(i)'])",
        timeout=120,
    )
    lines = stdout_of(msgs).splitlines()
    assert len(lines) == n and lines == [str(i) for i in range(n)]
    assert len(of_type(msgs, "stream")) < 200, "the flood is batched into few messages"


def test_background_child_prints_into_the_cell_that_started_it(kernel: Running) -> None:
    first, _ = kernel.execute("import subprocess\nsubprocess.Popen(['sh', '-c', 'sleep 0.5; echo later'])")
    wait_text(kernel, first["parent_header"]["msg_id"], "stdout", "later\n")


def test_fileno_and_faulthandler(kernel: Running) -> None:
    code = (
        "import faulthandler, os, signal, sys, subprocess\n"
        "print(sys.stdout.fileno(), sys.stderr.fileno())\n"
        "faulthandler.register(signal.SIGUSR1)\n"
        "os.kill(os.getpid(), signal.SIGUSR1)\n"
        "faulthandler.unregister(signal.SIGUSR1)\n"
        "subprocess.run(['echo', 'via fileno'], stdout=sys.stdout)\n"
    )
    _, msgs = kernel.execute(code)
    out = by_name(msgs)
    assert out["stdout"].startswith("1 2\n") and out["stdout"].endswith("via fileno\n")
    assert "most recent call first" in out["stderr"]


# ------------------------------------------------------------------------------------------------ multiprocessing


def test_multiprocessing_child_prints_and_raises(kernel: Running) -> None:
    code = (
        "import multiprocessing as mp\n"
        "def child():\n"
        "    print('child says hi')\n"
        "    raise ValueError('child failed')\n"
        "p = mp.get_context('fork').Process(target=child); p.start(); p.join()\n"
        "print('exit code', p.exitcode)\n"
        "q = mp.get_context('spawn').Process(target=print, args=('spawned child',)); q.start(); q.join()\n"
    )
    _, msgs = kernel.execute(code, timeout=60)
    out = by_name(msgs)
    assert out["stdout"] == "child says hi\nexit code 1\nspawned child\n", out
    assert "Traceback" in out["stderr"] and "ValueError: child failed" in out["stderr"], out


# ------------------------------------------------------------------------------------------------ the kernel's log


def test_kernel_log_stays_on_the_terminal(kernel: Running) -> None:
    marker = f"kernel-log-{time.time()}"
    _, msgs = kernel.execute(
        f"import logging\nlogging.getLogger('concurrent_kernel').warning('{marker}')\n"
        "logging.getLogger('user.code').warning('user warning')"
    )
    assert streams(msgs) == [("stderr", "user warning\n")]
    deadline = time.monotonic() + 10
    while marker not in kernel.terminal.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker in kernel.terminal.read_text()


def test_fatal_error_traceback_reaches_the_terminal(kernels_dir: Path, tmp_path: Path) -> None:
    """With faulthandler on (PYTHONFAULTHANDLER), a crash's traceback goes to the terminal, not into the pipes
    that die with the process."""
    from jupyter_client.kernelspec import KernelSpecManager

    terminal = tmp_path / "terminal.log"
    ksm = KernelSpecManager(kernel_dirs=[str(kernels_dir)], ensure_native_kernel=False)
    km = KernelManager(kernel_name=spec_name("asyncio"), kernel_spec_manager=ksm)
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    with terminal.open("w") as sink:
        km.start_kernel(stdout=sink, stderr=sink, env={**env, "PYTHONFAULTHANDLER": "1"})
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        kc.execute("import ctypes\nctypes.string_at(0)")
        deadline = time.monotonic() + 30
        while km.is_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not km.is_alive()
        log = terminal.read_text()
        assert "Fatal Python error" in log and "string_at" in log, log[-2000:]
    finally:
        kc.stop_channels()
        km.cleanup_resources()


def test_kernel_started_with_stdout_closed_runs_without_fd_capture(kernels_dir: Path, tmp_path: Path) -> None:
    spec = json.loads((kernels_dir / spec_name("trio") / "kernel.json").read_text())
    spec["argv"] = ["sh", "-c", 'exec "$0" "$@" >&-', *spec["argv"]]
    (tmp_path / "closed").mkdir()
    (tmp_path / "closed" / "kernel.json").write_text(json.dumps(spec))
    km, kc = start_kernel(tmp_path, "closed")
    try:
        reply, msgs = execute(kc, "import threading\nt = threading.Thread(target=print, args=('still here',))\n"
                                  "t.start(); t.join()")
        assert reply["content"]["status"] == "ok"
        assert streams(msgs) == [("stdout", "still here\n")]
    finally:
        stop_kernel(km, kc)


def test_capture_can_be_turned_off(kernels_dir: Path, tmp_path: Path) -> None:
    spec = json.loads((kernels_dir / spec_name("asyncio") / "kernel.json").read_text())
    spec["argv"].append("--Kernel.capture_fd_output=False")
    (tmp_path / "nocapture").mkdir()
    (tmp_path / "nocapture" / "kernel.json").write_text(json.dumps(spec))
    km, kc = start_kernel(tmp_path, "nocapture")
    try:
        reply, msgs = execute(
            kc, "import io, os, sys, threading\nos.system('echo to the terminal')\n"
            "try:\n    sys.stdout.fileno()\nexcept io.UnsupportedOperation:\n    print('no fileno')\n"
            "t = threading.Thread(target=print, args=('thread',)); t.start(); t.join()"
        )
        assert reply["content"]["status"] == "ok"
        assert streams(msgs) == [("stdout", "no fileno\nthread\n")]
        assert kernel_pid(km) > 0
    finally:
        stop_kernel(km, kc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
