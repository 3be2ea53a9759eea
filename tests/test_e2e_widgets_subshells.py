"""End to end over ZMQ: ipywidgets driven like JupyterLab drives them, and subshells beside a blocked shell."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from jupyter_client.blocking import BlockingKernelClient
from jupyter_client.manager import KernelManager

from e2e_helpers import (
    drain,
    execute,
    iopub_until_idle,
    of_type,
    request,
    send,
    spec_name,
    start_kernel,
    stdout_of,
    stop_kernel,
    wait_for_iopub,
    wait_reply,
    write_kernelspecs,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

Kernel = tuple[KernelManager, BlockingKernelClient]


@pytest.fixture(scope="module", params=["asyncio", "trio"])
def kernel(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kernel]:
    kernels = write_kernelspecs(tmp_path_factory.mktemp("specs"))
    km, kc = start_kernel(kernels, spec_name(request.param))
    try:
        yield km, kc
    finally:
        stop_kernel(km, kc)


def test_button_click_reaches_a_cell_awaiting_it(kernel: Kernel) -> None:
    _, kc = kernel
    drain(kc)
    setup = (
        "import ipywidgets as widgets, aiologic\n"
        "clicked = aiologic.Event()\n"
        "button = widgets.Button(description='Finish')\n"
        "button.on_click(lambda b: clicked.set())\n"
        "display(button)\n"
    )
    reply, msgs = execute(kc, setup)
    assert reply["content"]["status"] == "ok", reply["content"]
    opens = [m for m in of_type(msgs, "comm_open") if m["content"]["data"]["state"].get("_model_name") == "ButtonModel"]
    [button_open] = opens
    assert button_open["parent_header"]["msg_id"] == reply["parent_header"]["msg_id"]
    comm_id = button_open["content"]["comm_id"]
    waiting = kc.execute("print('waiting for a click', flush=True)\nawait clicked\n'clicked'")
    wait_for_iopub(kc, "stream", waiting)
    # What JupyterLab's widget manager sends when the button is clicked.
    send(kc, "comm_msg", {"comm_id": comm_id, "data": {"method": "custom", "content": {"event": "click"}}})
    assert wait_reply(kc, waiting)["content"]["status"] == "ok"
    [result] = of_type(iopub_until_idle(kc, waiting), "execute_result")
    assert result["content"]["data"]["text/plain"] == "'clicked'"


def test_output_widget_captures_into_its_cell(kernel: Kernel) -> None:
    _, kc = kernel
    drain(kc)
    reply, msgs = execute(kc, "import ipywidgets as widgets\nout = widgets.Output()\nwith out:\n    print('inside')\n")
    cell_id = reply["parent_header"]["msg_id"]
    updates = [m["content"]["data"] for m in of_type(msgs, "comm_msg")]
    assert {"method": "update", "state": {"msg_id": cell_id}, "buffer_paths": []} in updates
    assert stdout_of(msgs) == "inside\n"


def test_subshell_runs_while_the_main_shell_sleeps(kernel: Kernel) -> None:
    _, kc = kernel
    drain(kc)
    created, _ = request(kc, "create_subshell_request", {}, channel="control")
    subshell_id = created["content"]["subshell_id"]
    blocked = kc.execute("import time\ntime.sleep(3)\n'main done'")
    wait_for_iopub(kc, "execute_input", blocked)
    started = time.monotonic()
    reply, msgs = request(
        kc, "execute_request",
        {"code": "import threading\nthreading.current_thread().name", "silent": False, "store_history": False,
         "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
        header={"subshell_id": subshell_id},
    )
    answered_in = time.monotonic() - started
    assert reply["content"]["status"] == "ok"
    assert of_type(msgs, "execute_result")[0]["content"]["data"]["text/plain"].startswith("'subshell-")
    assert answered_in < 2.5, "the subshell waited for the blocked main shell"
    assert wait_reply(kc, blocked)["content"]["status"] == "ok"
    deleted, _ = request(kc, "delete_subshell_request", {"subshell_id": subshell_id}, channel="control")
    assert deleted["content"]["status"] == "ok"


def test_kernel_exits_when_its_parent_dies(tmp_path: Path) -> None:
    """JPY_PARENT_PID: a kernel whose launcher is killed must not live on as an orphan."""
    launcher = (
        "import os, subprocess, sys, time\n"
        "env = {**os.environ, 'JPY_PARENT_PID': str(os.getpid())}\n"
        "kernel = subprocess.Popen([sys.executable, '-m', 'concurrent_kernel', '-f', sys.argv[1]], env=env)\n"
        "print(kernel.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", launcher, str(tmp_path / "connection.json")], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    kernel = psutil.Process(int(parent.stdout.readline()))
    deadline = time.monotonic() + 30
    while not (tmp_path / "connection.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert oct((tmp_path / "connection.json").stat().st_mode & 0o777) == "0o600"
    parent.kill()
    parent.wait(10)
    kernel.wait(timeout=15)  # raises psutil.TimeoutExpired if the kernel outlived its parent


def test_bad_settings_are_reported_and_the_kernel_still_runs(tmp_path: Path) -> None:
    spec_dir = tmp_path / "kernels" / "ck-bad-settings"
    spec_dir.mkdir(parents=True)
    argv = [sys.executable, "-m", "concurrent_kernel", "-f", "{connection_file}",
            "--InteractiveShell.colors=no-such-scheme", "--HistoryManager.hist_file=:memory:", "--no-such-flag"]
    (spec_dir / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "bad", "language": "python"}))
    km, kc = start_kernel(tmp_path / "kernels", "ck-bad-settings")
    try:
        reply, msgs = execute(kc, "6*7")
        assert reply["content"]["status"] == "ok"
        assert of_type(msgs, "execute_result")[0]["content"]["data"]["text/plain"] == "42"
    finally:
        stop_kernel(km, kc)
