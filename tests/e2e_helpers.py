"""Helpers for end-to-end tests: kernelspecs in a temp dir, a started kernel, and message collection."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from queue import Empty
from typing import Any

from jupyter_client.blocking import BlockingKernelClient
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

Msg = dict[str, Any]

#: Generous default wait for anything the kernel should answer (the 2-core machine is noisy).
TIMEOUT = 30.0


def spec_name(backend: str, interrupt_mode: str = "message") -> str:
    return f"ck-e2e-{backend}-{interrupt_mode}"


def write_kernelspecs(root: Path) -> Path:
    """Write kernelspecs for both backends and both interrupt modes under `root`; return the kernels dir."""
    kernels = root / "kernels"
    for backend in ("asyncio", "trio"):
        for mode in ("message", "signal"):
            name = spec_name(backend, mode)
            spec = {
                "argv": [
                    sys.executable, "-m", "concurrent_kernel", "-f", "{connection_file}",
                    "--backend", backend, "--HistoryManager.hist_file=:memory:",
                ],
                "display_name": f"concurrent e2e ({backend}, {mode})",
                "language": "python",
                "interrupt_mode": mode,
                # as `concurrent-kernel install` writes it: JupyterLab enables its debugger button from this
                "metadata": {"debugger": True},
            }
            (kernels / name).mkdir(parents=True, exist_ok=True)
            (kernels / name / "kernel.json").write_text(json.dumps(spec))
    return kernels


def start_kernel(kernels_dir: Path, name: str) -> tuple[KernelManager, BlockingKernelClient]:
    """Start a kernel from a kernelspec in `kernels_dir` and return its manager and a ready client."""
    ksm = KernelSpecManager(kernel_dirs=[str(kernels_dir)], ensure_native_kernel=False)
    km = KernelManager(kernel_name=name, kernel_spec_manager=ksm)
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
    except Exception:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        raise
    return km, kc


def stop_kernel(km: KernelManager, kc: BlockingKernelClient) -> None:
    kc.stop_channels()
    if km.has_kernel:
        km.shutdown_kernel(now=False)


def kernel_pid(km: KernelManager) -> int:
    provisioner: Any = km.provisioner
    return int(provisioner.process.pid)


def drain(kc: BlockingKernelClient) -> None:
    """Drop whatever is already queued on shell, iopub and stdin."""
    forget_stash(kc)
    for get in (kc.get_shell_msg, kc.get_iopub_msg, kc.get_stdin_msg):
        while True:
            try:
                get(timeout=0.05)
            except Empty:
                break


# Messages read while looking for another parent: kept so no reply or output is lost between waits.
_stash: dict[tuple[int, str], dict[str, list[Msg]]] = {}


def _next_for(kc: BlockingKernelClient, channel: str, parent_id: str, timeout: float) -> Msg:
    """The next message on `channel` parented to `parent_id`; others are stashed for their own waiters."""
    stash = _stash.setdefault((id(kc), channel), {})
    kept = stash.get(parent_id)
    if kept:
        return kept.pop(0)
    getters = {"shell": kc.get_shell_msg, "control": kc.get_control_msg, "iopub": kc.get_iopub_msg}
    get = getters[channel]
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"nothing on {channel} for {parent_id} within {timeout} s")
        try:
            msg = get(timeout=remaining)
        except Empty:
            continue
        parent = msg["parent_header"].get("msg_id")
        if parent == parent_id:
            return msg
        if parent is not None:
            stash.setdefault(parent, []).append(msg)


def forget_stash(kc: BlockingKernelClient) -> None:
    for key in [k for k in _stash if k[0] == id(kc)]:
        del _stash[key]


def wait_reply(
    kc: BlockingKernelClient, msg_id: str, channel: str = "shell", timeout: float = TIMEOUT
) -> Msg:
    """The reply to `msg_id` on shell or control."""
    return _next_for(kc, channel, msg_id, timeout)


def iopub_until_idle(kc: BlockingKernelClient, msg_id: str, timeout: float = TIMEOUT) -> list[Msg]:
    """Every iopub message parented to `msg_id`, up to and including its idle status."""
    out: list[Msg] = []
    deadline = time.monotonic() + timeout
    while True:
        msg = _next_for(kc, "iopub", msg_id, max(0.0, deadline - time.monotonic()))
        out.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return out


def send(
    kc: BlockingKernelClient,
    msg_type: str,
    content: dict[str, Any],
    channel: str = "shell",
    header: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> str:
    """Send an arbitrary (possibly malformed) request; return its msg_id."""
    msg = kc.session.msg(msg_type, content, metadata=metadata)
    msg["header"].update(header or {})
    (kc.shell_channel if channel == "shell" else kc.control_channel).send(msg)
    return str(msg["header"]["msg_id"])


def request(
    kc: BlockingKernelClient,
    msg_type: str,
    content: dict[str, Any],
    channel: str = "shell",
    timeout: float = TIMEOUT,
    **kw: Any,
) -> tuple[Msg, list[Msg]]:
    """Send a request and return its reply and its iopub messages (through idle)."""
    msg_id = send(kc, msg_type, content, channel, **kw)
    reply = wait_reply(kc, msg_id, channel, timeout)
    return reply, iopub_until_idle(kc, msg_id, timeout)


def execute(
    kc: BlockingKernelClient, code: str, timeout: float = TIMEOUT, **kw: Any
) -> tuple[Msg, list[Msg]]:
    """Execute `code`; return the execute_reply and the cell's iopub messages (through idle)."""
    msg_id = kc.execute(code, **kw)
    reply = wait_reply(kc, msg_id, "shell", timeout)
    return reply, iopub_until_idle(kc, msg_id, timeout)


def of_type(msgs: list[Msg], msg_type: str) -> list[Msg]:
    return [m for m in msgs if m["msg_type"] == msg_type]


def stdout_of(msgs: list[Msg]) -> str:
    streams = of_type(msgs, "stream")
    return "".join(m["content"]["text"] for m in streams if m["content"]["name"] == "stdout")


def wait_for_iopub(
    kc: BlockingKernelClient, msg_type: str, parent_id: str, timeout: float = TIMEOUT
) -> Msg:
    """The first iopub message of `msg_type` parented to `parent_id` (earlier ones of it are dropped)."""
    deadline = time.monotonic() + timeout
    while True:
        msg = _next_for(kc, "iopub", parent_id, max(0.0, deadline - time.monotonic()))
        if msg["msg_type"] == msg_type:
            return msg
