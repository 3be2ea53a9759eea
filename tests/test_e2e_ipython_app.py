"""ipykernel's application and kernel API, against real kernel processes (both backends): the profile's config
files and startup files, extensions, `do_shutdown` / `exit` ending the process as ipykernel's do, the ipykernel
comm classes libraries import, and the names libraries check to tell a kernel from a terminal."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.kernelspec import KernelSpecManager

from e2e_helpers import execute, of_type, spec_name, start_kernel, stdout_of, stop_kernel, write_kernelspecs

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

BACKENDS = ["asyncio", "trio"]


@pytest.fixture(scope="session")
def kernels_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_kernelspecs(tmp_path_factory.mktemp("kernelspecs"))


def stderr_of(msgs: list[dict[str, Any]]) -> str:
    return "".join(m["content"]["text"] for m in of_type(msgs, "stream") if m["content"]["name"] == "stderr")


def result_of(msgs: list[dict[str, Any]]) -> str:
    return of_type(msgs, "execute_result")[0]["content"]["data"]["text/plain"]


@pytest.fixture
def ipython_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A profile of the user's, with a config file, startup files (one broken) and an extension."""
    profile = tmp_path / "ipython" / "profile_default"
    (profile / "startup").mkdir(parents=True)
    (profile / "ipython_kernel_config.py").write_text(
        "c.IPKernelApp.exec_lines = ['from_exec_lines = 6 * 7']\n"
        "c.InteractiveShellApp.extensions = ['user_extension']\n"
        "c.InteractiveShell.ast_node_interactivity = 'all'\n"
    )
    (profile / "ipython_config.py").write_text("c.InteractiveShellApp.exec_lines = ['overridden = True']\n")
    (profile / "startup" / "00-first.py").write_text("from_startup = ['first']\n")
    (profile / "startup" / "10-second.ipy").write_text("from_startup.append('second')\n%autoawait\n")
    # IPython stops at the first startup file that raises (as with ipykernel): reported, not fatal
    (profile / "startup" / "20-broken.py").write_text("raise RuntimeError('a broken startup file')\n")
    extensions = tmp_path / "extensions"
    extensions.mkdir()
    (extensions / "user_extension.py").write_text(
        "def load_ipython_extension(ip):\n    ip.user_ns['extension_loaded'] = True\n"
    )
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("PYTHONPATH", str(extensions))
    return tmp_path / "ipython"


@pytest.mark.parametrize("backend", BACKENDS)
def test_profile_config_startup_files_and_extensions(kernels_dir: Path, ipython_dir: Path, backend: str) -> None:
    km, kc = start_kernel(kernels_dir, spec_name(backend))
    try:
        reply, msgs = execute(kc, "from_exec_lines, from_startup, extension_loaded, 'overridden' in dir()")
        assert reply["content"]["status"] == "ok", reply
        # ipython_kernel_config.py's exec_lines win over ipython_config.py's, as for ipykernel
        assert result_of(msgs) == "(42, ['first', 'second'], True, False)"
        reply, msgs = execute(kc, "1\n2")  # ast_node_interactivity = 'all' from the config file
        assert [m["content"]["data"]["text/plain"] for m in of_type(msgs, "execute_result")] == ["1", "2"]
        reply, msgs = execute(kc, "get_ipython().profile_dir.location")
        assert result_of(msgs) == repr(str(ipython_dir / "profile_default"))
        reply, msgs = execute(kc, "stored = 5\n%store stored")  # IPython's default extension
        assert stdout_of(msgs) == "Stored 'stored' (int)\n"
        # The broken startup file was reported in the kernel's log, not fatal, and not a cell's output
        assert not of_type(msgs, "error")
    finally:
        stop_kernel(km, kc)


def test_a_broken_config_file_is_reported_and_the_kernel_starts(kernels_dir: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    profile = tmp_path / "profile_default"
    profile.mkdir()
    (profile / "ipython_kernel_config.py").write_text("c.IPKernelApp.exec_lines = [\n")  # a syntax error
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path))
    km, kc = start_kernel(kernels_dir, spec_name("asyncio"))
    try:
        reply, msgs = execute(kc, "6 * 7")
        assert reply["content"]["status"] == "ok"
        assert result_of(msgs) == "42"
    finally:
        stop_kernel(km, kc)


def test_an_unknown_profile_falls_back_to_the_default_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path))
    spec_dir = tmp_path / "kernels" / "ck-profile"
    spec_dir.mkdir(parents=True)
    argv = [sys.executable, "-m", "concurrent_kernel", "-f", "{connection_file}", "--profile=no-such-profile",
            "--HistoryManager.hist_file=:memory:"]
    (spec_dir / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "p", "language": "python"}))
    km, kc = start_kernel(tmp_path / "kernels", "ck-profile")
    try:
        _, msgs = execute(kc, "get_ipython().profile")
        assert result_of(msgs) == "'default'"
    finally:
        stop_kernel(km, kc)


def test_arguments_are_parsed_and_none_build_no_parser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No arguments (the browser kernel, a kernelspec passing none): traitlets' argparse parser of every alias and
    flag is not built; arguments are parsed as before."""
    from concurrent_kernel.services.ipython_app import IPKernelApp, make_app

    monkeypatch.setenv("IPYTHONDIR", str(tmp_path))
    loaders: list[list[str]] = []
    create_loader = IPKernelApp._create_loader

    def counted(self: IPKernelApp, argv: list[str], *args: Any, **kwargs: Any) -> Any:
        loaders.append(list(argv))
        return create_loader(self, argv, *args, **kwargs)

    monkeypatch.setattr(IPKernelApp, "_create_loader", counted)
    try:
        app = make_app([])
        assert loaders == [] and app.extra_args == [] and app.profile == "default"
        app = make_app(["--IPKernelApp.exec_lines=['x = 1']", "--profile=default"])
        assert loaders == [["--IPKernelApp.exec_lines=['x = 1']", "--profile=default"]]
        assert app.exec_lines == ["x = 1"]
    finally:
        IPKernelApp.clear_instance()


# ---------------------------------------------------------------------------------------- the kernel ending itself


def _ends_after_reply(kernels_dir: Path, backend: str, code: str) -> dict[str, Any]:
    km, kc = start_kernel(kernels_dir, spec_name(backend))
    try:
        reply, msgs = execute(kc, code)
        deadline = time.monotonic() + 15
        while km.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not km.is_alive(), "the kernel process did not end"
        assert msgs[-1]["content"]["execution_state"] == "idle"  # the cell's idle went out first
        return reply
    finally:
        stop_kernel(km, kc)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("code", [
    "get_ipython().kernel.do_shutdown(True)",
    "import warnings\nwarnings.simplefilter('ignore')\n"
    "import IPython\nIPython.Application.instance().kernel.do_shutdown(True)",
    "exit",
])
def test_the_kernel_ends_itself_as_ipykernel_does(kernels_dir: Path, backend: str, code: str) -> None:
    """The process exits after the reply; a kernel manager with autorestart (JupyterLab's) then starts a new one."""
    reply = _ends_after_reply(kernels_dir, backend, code)
    assert reply["content"]["status"] == "ok"


def test_exit_keeping_the_kernel_only_asks_the_front_end(kernels_dir: Path) -> None:
    km, kc = start_kernel(kernels_dir, spec_name("asyncio"))
    try:
        reply, _ = execute(kc, "exit(keep_kernel=True)")
        assert reply["content"]["payload"] == [{"source": "ask_exit", "keepkernel": True}]
        time.sleep(1)
        assert km.is_alive()
    finally:
        stop_kernel(km, kc)


def test_a_restarting_kernel_manager_starts_a_new_kernel(kernels_dir: Path) -> None:
    """What JupyterLab's server does when the process ends: the restarter starts the kernel again."""
    import asyncio

    from jupyter_client.ioloop import AsyncIOLoopKernelManager

    async def main() -> tuple[int, int]:
        ksm = KernelSpecManager(kernel_dirs=[str(kernels_dir)], ensure_native_kernel=False)
        km = AsyncIOLoopKernelManager(kernel_name=spec_name("asyncio"), kernel_spec_manager=ksm)
        await km.start_kernel()
        km.start_restarter()
        restarted = asyncio.Event()
        km.add_restart_callback(restarted.set, "restart")
        kc = km.client()
        kc.start_channels()
        try:
            await kc.wait_for_ready(timeout=60)
            first = km.provisioner.process.pid  # type: ignore[union-attr]
            await kc.execute_interactive("get_ipython().kernel.do_shutdown(True)", timeout=30)
            await asyncio.wait_for(restarted.wait(), 60)
            await asyncio.sleep(0.5)
            return first, km.provisioner.process.pid  # type: ignore[union-attr]
        finally:
            kc.stop_channels()
            km.stop_restarter()
            await km.shutdown_kernel(now=True)

    first, second = asyncio.run(main())
    assert first != second


# ---------------------------------------------------------------------------------------- ipykernel's API


@pytest.fixture(scope="module", params=BACKENDS)
def kernel(request: pytest.FixtureRequest, kernels_dir: Path) -> Iterator[Any]:
    km, kc = start_kernel(kernels_dir, spec_name(request.param))
    try:
        yield kc
    finally:
        stop_kernel(km, kc)


def test_ipykernel_comm_class_sends_through_this_kernel(kernel: Any) -> None:
    code = (
        "import warnings\nwarnings.simplefilter('ignore', DeprecationWarning)\n"
        "from ipykernel.comm import Comm\n"
        "c = Comm(target_name='old-api', data={'n': 1})\nc.send({'n': 2})\nc.close()"
    )
    reply, msgs = execute(kernel, code)
    assert reply["content"]["status"] == "ok", reply
    sent = [(m["msg_type"], m["content"].get("target_name"), m["content"]["data"]) for m in msgs
            if m["msg_type"].startswith("comm_")]
    assert sent == [("comm_open", "old-api", {"n": 1}), ("comm_msg", None, {"n": 2}), ("comm_close", None, {})]


def test_names_libraries_check_for_a_kernel(kernel: Any) -> None:
    code = (
        "import sys\nip = get_ipython()\n"
        "from tqdm.auto import tqdm\nfrom rich.console import Console\n"
        "(type(ip).__name__, 'IPKernelApp' in ip.config, ip.parent_header['header']['msg_type'],\n"
        " tqdm.__mro__[1].__module__, Console().is_jupyter, 'ipykernel.zmqshell' in sys.modules)"
    )
    reply, msgs = execute(kernel, code)
    assert reply["content"]["status"] == "ok", reply
    assert result_of(msgs) == "('ZMQInteractiveShell', True, 'execute_request', 'tqdm.notebook', True, True)"


def test_gui_names_as_ipykernel_takes_them(kernel: Any) -> None:
    reply, msgs = execute(kernel, "get_ipython().kernel.backend")
    backend = result_of(msgs).strip("'")
    for name in ("inline", "ipympl", "widget", ""):
        reply, msgs = execute(kernel, f"%gui {name}")
        assert reply["content"]["status"] == "ok" and not stderr_of(msgs), (name, msgs)
    reply, msgs = execute(kernel, "%gui asyncio")
    if backend == "asyncio":  # the kernel's own loop is asyncio's: nothing to start
        assert reply["content"]["status"] == "ok" and not stderr_of(msgs), msgs
    else:
        assert "runs its cells on trio, not asyncio" in stderr_of(msgs), msgs
    reply, msgs = execute(kernel, "%gui no-such-toolkit")
    assert "Invalid GUI request 'no-such-toolkit'" in stderr_of(msgs), msgs


def test_pip_magic_prints_pips_output_and_the_note(kernel: Any) -> None:
    reply, msgs = execute(kernel, "%pip --version", timeout=60)
    assert reply["content"]["status"] == "ok"
    text = stdout_of(msgs)
    assert text.startswith("pip ") and text.endswith(
        "Note: you may need to restart the kernel to use updated packages.\n"
    ), text


def test_kernel_magics_as_ipykernel(kernel: Any, tmp_path: Path) -> None:
    reply, msgs = execute(kernel, "%autosave 30")
    assert stdout_of(msgs) == "Autosaving every 30 seconds\n"
    (tmp_path / "notes.txt").write_text("line one\n")
    reply, msgs = execute(kernel, f"%less {tmp_path / 'notes.txt'}")
    assert reply["content"]["payload"] == [{"source": "page", "data": {"text/plain": "line one\n"}, "start": 0}]
    reply, msgs = execute(kernel, "%edit -n 2 " + str(tmp_path / "notes.txt"))
    assert reply["content"]["payload"] == [  # the line as IPython parsed it: text, as ipykernel sends it
        {"source": "edit_magic", "filename": str(tmp_path / "notes.txt"), "line_number": "2"}
    ]
    reply, msgs = execute(kernel, "%connect_info")
    assert '"shell_port"' in stdout_of(msgs) and "jupyter console --existing" in stdout_of(msgs)
    reply, msgs = execute(kernel, "import os\nos.environ['PAGER'], os.environ['GIT_PAGER'], os.environ['CLICOLOR']")
    assert result_of(msgs) == "('cat', 'cat', '1')"


def test_a_cell_driving_another_kernel_shows_its_outputs(kernel: Any, kernels_dir: Path) -> None:
    """jupyter_client's execute_interactive in a cell (a notebook that runs another kernel) sends that kernel's
    outputs into the cell through the shell's display publisher, as with ipykernel."""
    code = (
        "from jupyter_client.kernelspec import KernelSpecManager\n"
        "from jupyter_client.manager import KernelManager\n"
        f"ksm = KernelSpecManager(kernel_dirs=[{str(kernels_dir)!r}], ensure_native_kernel=False)\n"
        f"km = KernelManager(kernel_name={spec_name('asyncio')!r}, kernel_spec_manager=ksm)\n"
        "km.start_kernel()\nkc = km.client()\nkc.start_channels()\nkc.wait_for_ready(timeout=60)\n"
        "reply = kc.execute_interactive('display(\"from the other kernel\")\\n6 * 7', timeout=60)\n"
        "kc.stop_channels()\nkm.shutdown_kernel(now=True)\nreply['content']['status']"
    )
    reply, msgs = execute(kernel, code, timeout=120)
    assert reply["content"]["status"] == "ok", reply
    shown = [m["content"]["data"]["text/plain"] for m in msgs if m["msg_type"] in ("display_data", "execute_result")]
    assert shown == ["'from the other kernel'", "42", "'ok'"], shown


def test_startup_does_not_leave_ipythons_crash_handler(kernel: Any) -> None:
    """IPython's terminal app writes crash reports from sys.excepthook; a kernel keeps the shell's hook, as
    ipykernel's does."""
    _, msgs = execute(kernel, "import sys\nsys.excepthook.__qualname__")
    assert result_of(msgs) == "'InteractiveShell.excepthook'"


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", *os.environ.get("PYTEST_ARGS", "").split()]))
