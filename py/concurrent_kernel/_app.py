"""Run the kernel as a process on CPython: connection file, ZMQ transport, parent watch, clean exit."""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .transports.zmq import SOCKET_NAMES, ConnectionFileError, ZMQTransport

log = logging.getLogger("concurrent_kernel")


def new_connection_file(path: Path | None = None, ip: str = "127.0.0.1") -> Path:
    """Write a connection file with a fresh key (ports chosen when binding); default place: Jupyter's runtime dir."""
    if path is None:
        from jupyter_core.paths import jupyter_runtime_dir

        runtime = Path(jupyter_runtime_dir())
        runtime.mkdir(parents=True, exist_ok=True)
        path = runtime / f"kernel-concurrent-{os.getpid()}.json"
    info = {
        "ip": ip,
        "transport": "tcp",
        "key": secrets.token_hex(16),
        "signature_scheme": "hmac-sha256",
        "kernel_name": "concurrent",
        **{f"{name}_port": 0 for name in SOCKET_NAMES},
    }
    _write_private(path, info)
    return path


def _write_private(path: Path, info: dict[str, Any]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(info, f, indent=1)
    os.chmod(path, 0o600)


def parent_watch() -> Callable[[], None] | None:
    """A check that exits when the process that started us (JPY_PARENT_PID) is gone, so no kernel is orphaned; the
    transport's I/O thread runs it every second (no thread of its own). None when no parent is named."""
    try:
        parent = int(os.environ.get("JPY_PARENT_PID", "0"))
    except ValueError:
        return None
    if parent <= 0:
        return None

    first_ppid = os.getppid()

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def check() -> None:
        # Reparenting catches a launcher that is our direct parent; kill(0) catches one further up the tree.
        if os.getppid() != first_ppid or not alive(parent):
            log.warning("parent process %s is gone; exiting", parent)
            os._exit(1)

    return check


def _as_bool(value: Any) -> bool:
    """A setting of a class IPython does not know (`--Kernel.x=False`) stays text in the config."""
    if isinstance(value, str) or type(value).__name__ == "DeferredConfigString":
        return str(value).strip().lower() not in ("false", "0", "no", "off", "")
    return bool(value)


def launch(connection_file: str | None, backend: str, ipython_args: list[str], debugger: bool = True) -> int:
    """Bind the sockets first, then import the rest: the kernel is reachable as early as possible. `ipython_args`
    are IPython's (`--Class.trait=value`, `--profile`, `--matplotlib`, ...), read by services/ipython_app.py."""
    # Only our own logger goes to the terminal: user code's logging keeps reaching the cell's stderr
    # (through logging's last-resort handler, which writes to the current sys.stderr).
    handler = logging.StreamHandler(sys.__stderr__)
    handler.setFormatter(logging.Formatter("[concurrent-kernel %(levelname)s] %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.WARNING)
    log.propagate = False
    # No file, or a path that does not exist yet (as with ipykernel): make one and say how to connect.
    created = connection_file is None or not Path(connection_file).exists()
    path = new_connection_file(Path(connection_file) if connection_file else None) if created else Path(connection_file)
    try:
        info = json.loads(path.read_text())
        if not isinstance(info, dict):
            raise ConnectionFileError(f"expected a JSON object, got {type(info).__name__}")
        info.setdefault("ip", "127.0.0.1")
        transport = ZMQTransport(info)
    except (ConnectionFileError, json.JSONDecodeError) as exc:
        # Exit at once with the reason: the launcher sees the process die instead of waiting for a reply.
        log.error("cannot start with connection file %s: %s", path, exc)
        return 1
    if created or any(not info.get(f"{name}_port") for name in SOCKET_NAMES):
        _write_private(path, {**info, **transport.connection_info})
    if created:
        print(f"concurrent-kernel: connect with  jupyter console --existing {path}", file=sys.__stderr__, flush=True)
    check_parent = parent_watch()
    if check_parent is not None:
        transport.every_second.append(check_parent)
    from functools import partial

    from ._kernel_info import debugger_available, kernel_info
    from ._messages import MessageFactory

    debugger = debugger and debugger_available()
    messages = MessageFactory()
    transport.start_early(messages, partial(kernel_info, debugger=debugger))
    import anyio

    from ._kernel import Kernel
    from .services.ipython_app import make_app

    # The profile, config files and command line (as ipykernel's kernel app reads them); imported after the sockets
    # are bound, so kernel_info is answered meanwhile.
    app = make_app(ipython_args)
    app.connection_file = str(path)
    config = app.config
    # fd 1/2 of the process (child processes, C code) go to the cells unless --Kernel.capture_fd_output=False
    # (ipykernel's IPKernelApp.capture_fd_output, on the command line or in ipython_kernel_config.py, is read too).
    capture_fds = _as_bool(config.get("Kernel", {}).get("capture_fd_output", app.capture_fd_output))
    kernel = Kernel(
        transport, backend=backend, config=config, app=app, session=messages.session, debugger=debugger,
        capture_fds=capture_fds,
    )

    def exit_soon() -> None:
        # A cell that ignores KeyboardInterrupt must not keep a shut-down kernel alive.
        threading.Timer(3.0, os._exit, (0,)).start()

    kernel.on_stop.append(exit_soon)
    try:
        anyio.run(kernel.serve, backend=backend)
    except KeyboardInterrupt:
        pass
    finally:
        transport.close()
        if created and connection_file is None:
            path.unlink(missing_ok=True)
    return 0
