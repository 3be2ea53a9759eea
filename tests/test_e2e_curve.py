"""CurveZMQ transport encryption end to end, as ipykernel 7.4 offers it.

The kernelspec declares `metadata.supported_encryption: ["curve"]`; jupyter_client (KernelManager.transport_encryption)
and jupyter_server (MappingKernelManager.transport_encryption, modes `auto` and `required`) then write a Z85 keypair
into the connection file and connect as CurveZMQ clients. Here: real kernel processes, real jupyter_client clients
on all five channels, a real jupyter_server with a websocket client, and kernels given malformed keys, which must
exit at once with the reason instead of leaving the client waiting.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from queue import Empty
from typing import Any

import pytest
import websocket
import zmq
from jupyter_client.blocking import BlockingKernelClient
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

from concurrent_kernel._kernelspec import kernelspec_dict
from e2e_helpers import TIMEOUT, execute, stdout_of, wait_reply

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

BACKENDS = ["asyncio", "trio"]
MODES = ["auto", "required"]
#: A kernelspec like ours but without the declaration: what jupyter_server's `required` mode refuses.
UNDECLARED = "ck-curve-undeclared"


def curve_spec_name(backend: str) -> str:
    return f"ck-curve-{backend}"


def write_curve_kernelspecs(data_dir: Path) -> Path:
    """This project's kernelspec (as `concurrent-kernel install` writes it) per backend, plus an undeclared one."""
    kernels = data_dir / "kernels"
    specs = {curve_spec_name(b): kernelspec_dict(display_name=f"curve {b}", backend=b) for b in BACKENDS}
    undeclared = kernelspec_dict(display_name="undeclared")
    undeclared["metadata"] = {}
    specs[UNDECLARED] = undeclared
    for name, spec in specs.items():
        argv = [*spec["argv"], "--HistoryManager.hist_file=:memory:"]  # type: ignore[misc]
        (kernels / name).mkdir(parents=True, exist_ok=True)
        (kernels / name / "kernel.json").write_text(json.dumps({**spec, "argv": argv}))
    return kernels


@pytest.fixture(scope="module")
def kernels_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_curve_kernelspecs(tmp_path_factory.mktemp("curve-specs"))


def test_installed_kernelspec_declares_curve(tmp_path: Path) -> None:
    """`concurrent-kernel install` writes the declaration jupyter_client reads (this pyzmq has CURVE)."""
    assert zmq.has("curve"), "this pyzmq's libzmq has no CURVE: transport encryption cannot be offered"
    subprocess.run(
        [sys.executable, "-m", "concurrent_kernel", "install", "--prefix", str(tmp_path), "--name", "ck-curve-inst"],
        check=True, capture_output=True, timeout=60,
    )
    spec = json.loads((tmp_path / "share" / "jupyter" / "kernels" / "ck-curve-inst" / "kernel.json").read_text())
    assert spec["metadata"]["supported_encryption"] == ["curve"]


# ---------------------------------------------------------------- jupyter_client directly


@contextmanager
def encrypted_kernel(
    kernels_dir: Path, backend: str, mode: str, keys: tuple[bytes, bytes] | None = None, transport: str = "tcp"
) -> Iterator[tuple[KernelManager, BlockingKernelClient]]:
    """A kernel started by a KernelManager with `transport_encryption=mode` (and, given `keys`, that keypair)."""
    ksm = KernelSpecManager(kernel_dirs=[str(kernels_dir)], ensure_native_kernel=False)
    where: dict[str, str] = {}
    if transport == "ipc":  # ip is the socket files' path prefix
        where = {"transport": "ipc", "ip": str(kernels_dir.parent / f"ipc-{uuid.uuid4().hex[:8]}")}
    km = KernelManager(
        kernel_name=curve_spec_name(backend), kernel_spec_manager=ksm, transport_encryption=mode, **where
    )
    if keys is not None:  # the provisioner keeps keys a manager already holds (as on a restart)
        km.curve_publickey, km.curve_secretkey = keys
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        yield km, kc
    finally:
        kc.stop_channels()
        if km.has_kernel:
            km.shutdown_kernel(now=True)


@pytest.mark.parametrize(
    ("backend", "mode", "transport"),
    [*((b, m, "tcp") for b in BACKENDS for m in MODES), *((b, "required", "ipc") for b in BACKENDS)],
)
def test_jupyter_client_encrypted_kernel(kernels_dir: Path, backend: str, mode: str, transport: str) -> None:
    """Every channel works through CurveZMQ (over tcp, and ipc which jupyter_client also encrypts), and a client
    without the key gets nothing."""
    with encrypted_kernel(kernels_dir, backend, mode, transport=transport) as (km, kc):
        info = json.loads(Path(km.connection_file).read_text())
        assert info["transport"] == transport
        assert len(info["curve_publickey"]) == len(info["curve_secretkey"]) == 40
        assert kc.curve_publickey == info["curve_publickey"].encode()
        kc.wait_for_ready(timeout=60)

        # shell + iopub
        reply, msgs = execute(kc, "print('over curve'); 6 * 7")
        assert reply["content"]["status"] == "ok"
        assert stdout_of(msgs) == "over curve\n"
        results = [m for m in msgs if m["msg_type"] == "execute_result"]
        assert results and results[0]["content"]["data"]["text/plain"] == "42"

        # stdin
        msg_id = kc.execute("answer = input('name? '); print('hi', answer)", allow_stdin=True)
        prompt = kc.get_stdin_msg(timeout=TIMEOUT)
        assert prompt["msg_type"] == "input_request" and prompt["content"]["prompt"] == "name? "
        kc.input("curve")
        assert wait_reply(kc, msg_id)["content"]["status"] == "ok"
        reply, msgs = execute(kc, "print(answer)")
        assert stdout_of(msgs) == "curve\n"

        # control
        request = kc.session.msg("kernel_info_request", {})
        kc.control_channel.send(request)
        control_reply = wait_reply(kc, request["header"]["msg_id"], "control")
        assert control_reply["msg_type"] == "kernel_info_reply"

        # heartbeat
        assert kc.hb_channel.is_beating()

        # A client with the right HMAC key and ports but no Curve keys: its handshake never completes, so it can
        # neither send requests nor read iopub (the eavesdropping CurveZMQ is there to stop).
        plain = BlockingKernelClient()
        plain.load_connection_info({k: v for k, v in info.items() if not k.startswith("curve_")})
        assert plain.curve_publickey is None
        plain.start_channels(hb=False)
        try:
            plain.kernel_info()
            reply, msgs = execute(kc, "print('still here')")  # the encrypted client is unaffected
            assert stdout_of(msgs) == "still here\n"
            with pytest.raises(Empty):
                plain.get_shell_msg(timeout=3)
            with pytest.raises(Empty):
                plain.get_iopub_msg(timeout=0.5)
        finally:
            plain.stop_channels()

        # Shutdown goes through the encrypted control channel.
        km.shutdown_kernel(now=False)
        assert not km.is_alive()


#: case -> (the connection file's curve fields from a fresh (public, secret) pair, what the kernel must say)
BAD_KEYS: dict[str, tuple[Callable[[str, str], dict[str, Any]], str]] = {
    "half a pair": (lambda pub, sec: {"curve_publickey": pub}, "no curve_secretkey"),
    "short secret": (lambda pub, sec: {"curve_publickey": pub, "curve_secretkey": sec[:39]}, "40 Z85 characters"),
    "bad character": (
        lambda pub, sec: {"curve_publickey": pub, "curve_secretkey": sec[:39] + ","}, "40 Z85 characters"
    ),
    "not a string": (lambda pub, sec: {"curve_publickey": pub, "curve_secretkey": 12345}, "must be a Z85 string"),
    "mismatched pair": (
        lambda pub, sec: {"curve_publickey": zmq.curve_keypair()[0].decode(), "curve_secretkey": sec},
        "is not the public key",
    ),
}


def _bad_connection_info(case: str) -> dict[str, Any]:
    public, secret = (k.decode() for k in zmq.curve_keypair())
    return {
        "ip": "127.0.0.1", "transport": "tcp", "key": uuid.uuid4().hex, "signature_scheme": "hmac-sha256",
        **{f"{name}_port": 0 for name in ("shell", "iopub", "stdin", "control", "hb")},
        **BAD_KEYS[case][0](public, secret),
    }


@pytest.mark.parametrize("case", list(BAD_KEYS))
def test_malformed_keys_exit_with_the_reason(tmp_path: Path, case: str) -> None:
    """`python -m concurrent_kernel -f FILE` with bad keys exits 1 at once, saying what is wrong."""
    path = tmp_path / "kernel.json"
    path.write_text(json.dumps(_bad_connection_info(case)))
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "concurrent_kernel", "-f", str(path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1, proc.stderr
    assert BAD_KEYS[case][1] in proc.stderr
    assert "Traceback" not in proc.stderr
    assert time.monotonic() - start < 30


@pytest.mark.parametrize(("text", "says"), [("{not json", "Expecting property name"), ("[]", "a JSON object")])
def test_unreadable_connection_file_exits_with_the_reason(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "kernel.json"
    path.write_text(text)
    proc = subprocess.run(
        [sys.executable, "-m", "concurrent_kernel", "-f", str(path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1, proc.stderr
    assert says in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("backend", BACKENDS)
def test_mismatched_keys_fail_the_client_fast(kernels_dir: Path, backend: str) -> None:
    """Through jupyter_client: a manager holding a broken keypair sees the kernel die, not a silent wait."""
    public, _ = zmq.curve_keypair()
    _, secret = zmq.curve_keypair()
    with encrypted_kernel(kernels_dir, backend, "required", keys=(public, secret)) as (km, kc):
        start = time.monotonic()
        with pytest.raises(RuntimeError, match="died"):
            kc.wait_for_ready(timeout=60)
        assert time.monotonic() - start < 30
        assert not km.is_alive()


# ---------------------------------------------------------------- a real jupyter_server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, url: str, token: str, runtime_dir: Path, log_path: Path) -> None:
        self.url, self.token, self.runtime_dir, self.log_path = url, token, runtime_dir, log_path

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        req = urllib.request.Request(
            self.url + path, method=method, data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=90) as r:
                raw = r.read()
                return r.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")


@contextmanager
def jupyter_server(base: Path, mode: str) -> Iterator[Server]:
    """`jupyter server` with `--MappingKernelManager.transport_encryption=mode` and our kernelspecs."""
    write_curve_kernelspecs(base / "data")
    root = base / "root"
    root.mkdir()
    token, port = uuid.uuid4().hex, _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(JUPYTER_PATH=str(base / "data"), JUPYTER_CONFIG_DIR=str(base / "config"),
               JUPYTER_RUNTIME_DIR=str(base / "runtime"), JUPYTER_DATA_DIR=str(base / "userdata"))
    cmd = [
        sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
        "--port-retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        f"--MappingKernelManager.transport_encryption={mode}",
    ]
    log_path = base / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
        server = Server(f"http://127.0.0.1:{port}/", token, base / "runtime", log_path)
        try:
            deadline = time.monotonic() + 90
            while True:
                assert proc.poll() is None, log_path.read_text()[-4000:]
                try:
                    if server.api("GET", "api/status")[0] == 200:
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline, log_path.read_text()[-4000:]
                time.sleep(0.3)
            yield server
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _run_cell_over_websocket(server: Server, kernel_id: str, code: str) -> tuple[str, dict[str, Any]]:
    """Execute `code` through the server's kernel websocket; return its stdout and execute_reply content."""
    ws_url = server.url.replace("http", "ws", 1) + f"api/kernels/{kernel_id}/channels?token={server.token}"
    ws = websocket.create_connection(ws_url, timeout=TIMEOUT)
    try:
        msg_id = uuid.uuid4().hex
        ws.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "test", "session": "curve",
                       "date": "", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True},
        }))
        stdout, reply, idle = "", None, False
        deadline = time.monotonic() + TIMEOUT * 2
        while reply is None or not idle:
            assert time.monotonic() < deadline, "no reply over the websocket"
            msg = json.loads(ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
                stdout += msg["content"]["text"]
            elif msg["msg_type"] == "execute_reply":
                reply = msg["content"]
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                idle = True
        return stdout, reply
    finally:
        ws.close()


@pytest.mark.parametrize("mode", MODES)
def test_jupyter_server_transport_encryption(tmp_path: Path, mode: str) -> None:
    """jupyter_server in `auto` / `required` mode starts our kernel (both backends) encrypted; a cell runs through
    its websocket. In `required` mode it refuses a kernelspec without the declaration (what it did to ours)."""
    with jupyter_server(tmp_path, mode) as server:
        for backend in BACKENDS:
            status, kernel = server.api("POST", "api/kernels", {"name": curve_spec_name(backend)})
            assert status == 201, kernel
            info = json.loads((server.runtime_dir / f"kernel-{kernel['id']}.json").read_text())
            assert len(info["curve_publickey"]) == 40 and len(info["curve_secretkey"]) == 40
            stdout, reply = _run_cell_over_websocket(server, kernel["id"], f"print('{backend} via server', 6 * 7)")
            assert reply["status"] == "ok", reply
            assert stdout == f"{backend} via server 42\n"
            assert server.api("DELETE", f"api/kernels/{kernel['id']}")[0] == 204
        status, body = server.api("POST", "api/kernels", {"name": UNDECLARED})
        if mode == "required":
            assert status >= 400 and "supported_encryption" in str(body) + server.log_path.read_text()
        else:  # auto: the undeclared kernel starts without keys
            assert status == 201, body
            info = json.loads((server.runtime_dir / f"kernel-{body['id']}.json").read_text())
            assert "curve_publickey" not in info
            server.api("DELETE", f"api/kernels/{body['id']}")
