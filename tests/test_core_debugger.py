"""The debugger's kernel-side requests (no debugpy session needed) over the in-memory transport, both backends.

Stepping, stopping and the kernel staying live while stopped: tests/test_e2e_debugger.py and
tests/lab/test_debugger_panel.py."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import pytest

from memory_client import MemoryClient, serving_kernel, stdout_of

pytestmark = pytest.mark.anyio
#: debugpy exists on CPython only: the core test run inside Pyodide deselects these ("threads").
cpython_only = pytest.mark.threads


@pytest.fixture
async def dclient(anyio_backend: str) -> AsyncIterator[MemoryClient]:
    async with serving_kernel(anyio_backend, debugger=True) as client:
        yield client


async def dap(client: MemoryClient, command: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    content = {"type": "request", "seq": 7, "command": command, "arguments": arguments or {}}
    reply, _ = await client.request("control", "debug_request", content)
    assert reply["msg_type"] == "debug_reply"
    body: dict[str, Any] = reply["content"]
    assert body["command"] == command and body["request_seq"] == 7
    return body


# MurmurHash2 values of ipykernel 7.4's `compiler.murmur2_x86` (the reference JupyterLab's hash matches) for the
# seed both announce; the last one has non-ASCII text, hashed as UTF-8 bytes.
REFERENCE = [("", 3990065800), ("a", 2167009006), ("abc", 3350977461), ("abcd", 804720481), ("i = 0", 3033251095),
             ('print("héllo wörld ✓")\n', 1423973983)]


def test_murmur2_matches_the_reference() -> None:
    from concurrent_kernel.services.debugger import HASH_SEED, murmur2

    assert HASH_SEED == 0xC70F6907
    assert [(text, murmur2(text.encode(), HASH_SEED)) for text, _ in REFERENCE] == REFERENCE


@cpython_only
async def test_kernel_info_and_debug_info(dclient: MemoryClient) -> None:
    reply, _ = await dclient.request("shell", "kernel_info_request")
    assert reply["content"]["debugger"] is True and "debugger" in reply["content"]["supported_features"]
    info = (await dap(dclient, "debugInfo"))["body"]
    assert info["isStarted"] is False and info["breakpoints"] == [] and info["stoppedThreads"] == []
    assert info["hashMethod"] == "Murmur2" and info["tmpFileSuffix"] == ".py"
    assert info["tmpFilePrefix"].endswith(os.sep) and str(os.getpid()) in info["tmpFilePrefix"]


@cpython_only
async def test_dump_cell_names_the_file_cells_compile_under(dclient: MemoryClient) -> None:
    code = "def where():\n    import inspect\n    return inspect.currentframe().f_code.co_filename\nprint(where())"
    reply = await dap(dclient, "dumpCell", {"code": code})
    path = reply["body"]["sourcePath"]
    info = (await dap(dclient, "debugInfo"))["body"]
    from concurrent_kernel.services.debugger import murmur2

    assert path == f"{info['tmpFilePrefix']}{murmur2(code.encode(), info['hashSeed'])}{info['tmpFileSuffix']}"
    with open(path, encoding="utf-8") as f:
        assert f.read() == code
    _, outputs = await dclient.execute(code)
    assert stdout_of(outputs).strip() == path  # the cell really runs under that name: breakpoints there hit
    source = await dap(dclient, "source", {"source": {"path": path}})
    assert source["success"] and source["body"]["content"] == code


@cpython_only
async def test_variables_without_a_session(dclient: MemoryClient) -> None:
    reply, _ = await dclient.execute("class Box:\n    def __init__(self):\n        self.size = 3\nbox = Box()\n"
                                     "items = [10, 'x']\n_private_i = 1\n")
    assert reply["content"]["status"] == "ok"
    names = {v["name"]: v for v in (await dap(dclient, "inspectVariables"))["body"]["variables"]}
    assert names["items"]["value"] == "[10, 'x']" and names["items"]["type"] == "list"
    assert not {"In", "Out", "get_ipython", "_i1", "_ih", "__builtins__"} & set(names)
    children = await dap(dclient, "variables", {"variablesReference": names["items"]["variablesReference"]})
    assert [(v["name"], v["value"]) for v in children["body"]["variables"]] == [("0", "10"), ("1", "'x'")]
    fields = await dap(dclient, "variables", {"variablesReference": names["box"]["variablesReference"]})
    assert [(v["name"], v["value"], v["evaluateName"]) for v in fields["body"]["variables"]] == [
        ("size", "3", "box.size")]
    rich = await dap(dclient, "richInspectVariables", {"variableName": "items"})
    assert rich["success"] and rich["body"]["data"] == {"text/plain": "[10, 'x']"}
    missing = await dap(dclient, "richInspectVariables", {"variableName": "nothing_here"})
    assert missing["success"] is False
    modules = (await dap(dclient, "modules", {"startModule": 0, "moduleCount": 100000}))["body"]
    assert any(m["name"] == "concurrent_kernel._kernel" for m in modules["modules"])


@cpython_only
async def test_session_requests_before_initialize_fail_cleanly(dclient: MemoryClient) -> None:
    for command, arguments in (("attach", {}), ("setBreakpoints", {"source": {"path": "/x.py"}, "breakpoints": []}),
                               ("stackTrace", {"threadId": 1}), ("continue", {"threadId": 1}),
                               ("copyToGlobals", {"srcVariableName": "a", "dstVariableName": "b", "srcFrameId": 1})):
        reply = await dap(dclient, command, arguments)
        assert reply["success"] is False and reply["message"], reply
    assert (await dap(dclient, "disconnect"))["success"] is True
    reply, _ = await dclient.request("control", "debug_request", {"seq": 1, "type": "event", "command": "x"})
    assert reply["content"]["success"] is False
    debugger = dclient.kernel.debugger  # type: ignore[attr-defined]
    assert debugger.backend is None and not debugger.attached  # nothing above started debugpy
    reply, outputs = await dclient.execute("print('still fine')")
    assert reply["content"]["status"] == "ok" and stdout_of(outputs) == "still fine\n"


async def test_debugger_off_answers_with_an_error(client: MemoryClient) -> None:
    """The default Kernel, and the browser kernel: no debugger, said plainly."""
    reply, _ = await client.request("control", "debug_request", {"type": "request", "seq": 1, "command": "debugInfo"})
    assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "DebuggerUnavailable"
    info, _ = await client.request("shell", "kernel_info_request")
    assert info["content"]["debugger"] is False and "debugger" not in info["content"]["supported_features"]


def test_debugpy_listen_is_retried_when_a_stray_peer_answers_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """debugpy reads its adapter's endpoints from the first connection to a fresh port; in CI a ZeroMQ peer
    reconnecting to a port an ended kernel used got there first ("can't decode byte 0xff"). The backend asks again,
    and gives up (with debugpy's own error) after a few draws or on any other failure."""
    debugpy = pytest.importorskip("debugpy")
    from concurrent_kernel.services.debugger import debugpy_backend

    calls: list[tuple[str, int]] = []
    outcomes: list[Any] = [
        RuntimeError("error retrieving adapter endpoints: 'utf-8' codec can't decode byte 0xff"),
        ("127.0.0.1", 5678),
    ]

    def listen(address: tuple[str, int]) -> tuple[str, int]:
        calls.append(address)
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(debugpy, "listen", listen)
    monkeypatch.setattr(debugpy, "configure", lambda **_: None)
    backend = debugpy_backend.DebugpyBackend.__new__(debugpy_backend.DebugpyBackend)
    assert backend._listen() == ("127.0.0.1", 5678)
    assert len(calls) == 2

    outcomes[:] = [RuntimeError("error retrieving adapter endpoints: EOF")] * debugpy_backend._LISTEN_ATTEMPTS
    with pytest.raises(RuntimeError, match="adapter endpoints"):
        backend._listen()
    outcomes[:] = [RuntimeError("timed out waiting for adapter to connect"), ("127.0.0.1", 1)]
    with pytest.raises(RuntimeError, match="timed out"):
        backend._listen()
    assert outcomes == [("127.0.0.1", 1)]
