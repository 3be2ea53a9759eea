"""IPython's application behaviour, as ipykernel's kernel app has it, on CPython and in the browser.

The profile (`IPYTHONDIR`, `--profile`), its config files (`ipython_config.py`, then `ipython_kernel_config.py`),
startup files, `exec_lines` / `exec_files` / `code_to_run` / `module_to_run`, `--matplotlib` / `--gui`, and the
extensions (IPython's default `storemagic` and those configured) all come from IPython's own application classes.
In the browser the profile is the worker's own (`~/.ipython`, in memory), unless the site's files hold one at
`.ipython` (shipped with the site, `"ContentsManager": {"allow_hidden": true}` in jupyter_lite_config.json, or written
by a notebook): then that one, kept in the browser's storage, so `%store` and startup files persist there.

The class is named `IPKernelApp`, as ipykernel's is, because that is the config section people already have
(`c.IPKernelApp.exec_lines = [...]` in ipython_kernel_config.py) and the one libraries test for
(`"IPKernelApp" in get_ipython().config`: tqdm.autonotebook), and because `IPython.Application.instance().kernel`
is how notebooks reach the kernel ("restart after installing": `...kernel.do_shutdown(True)`).

Nothing here is fatal: a config file that fails to load, a startup file that raises, an extension that cannot be
loaded are reported in the kernel's log (the terminal or the Jupyter server's log; the browser's console), as
ipykernel reports them, and the kernel starts.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING, Any

from IPython.core.application import BaseIPythonApplication, base_aliases, base_flags
from IPython.core.profiledir import ProfileDir
from IPython.core.shellapp import InteractiveShellApp, shell_aliases, shell_flags
from traitlets import Any as AnyTrait
from traitlets import Bool, Unicode, default

from .._loops import IS_PYODIDE

if TYPE_CHECKING:
    from .._kernel import Kernel

log = logging.getLogger("concurrent_kernel")

INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
#: In the browser: an IPython profile kept in the site's files (or written there by a notebook) is used.
SITE_IPYTHON_DIR = "/drive/.ipython"


class IPKernelApp(BaseIPythonApplication, InteractiveShellApp):
    """IPython's kernel application for this kernel (see the module's docstring for the name)."""

    name = "ipython-kernel"  # config files: ipython_config.py, then ipython_kernel_config.py
    description = "concurrent-kernel: the IPython shell's profile, config, startup files and extensions"
    aliases = {**base_aliases, **shell_aliases, "f": "IPKernelApp.connection_file"}
    flags = {**base_flags, **shell_flags}
    classes = [ProfileDir]

    kernel: Any = AnyTrait(None, allow_none=True, help="The running kernel (concurrent_kernel.Kernel).")
    connection_file = Unicode("", config=True, help="The connection file of a ZMQ kernel (none in the browser).")
    capture_fd_output = Bool(
        True, config=True, help="Send what the process writes to fd 1/2 (C code, child processes) to the cells."
    )

    @default("log")
    def _log_default(self) -> logging.Logger:
        # The kernel's own log (stderr of the process, set up by the launcher), not a second handler on stderr.
        return log

    def parse_command_line(self, argv: list[str] | None = None) -> None:
        """With no arguments (the browser; a kernelspec that passes none) there is nothing to parse: traitlets would
        still build an argparse parser of every alias and flag: 1.3-3.9 ms on CPython, several times that in a browser
        kernel started on a reload (its wasm not yet compiled past the baseline tier)."""
        if argv is not None and not argv:
            self.argv = []
            self.extra_args = []
            return
        super().parse_command_line(argv)

    def init_crash_handler(self) -> None:
        """IPython's crash handler replaces sys.excepthook to write crash reports for a terminal; a kernel reports
        its errors itself."""

    def init_gui_pylab(self) -> None:
        """matplotlib's default backend is the inline one (as ipykernel makes it), unless MPLBACKEND says otherwise;
        then --gui / --matplotlib / --pylab as IPython's app does."""
        os.environ.setdefault("MPLBACKEND", INLINE_BACKEND)
        super().init_gui_pylab()

    def init_shell(self) -> None:
        """The shell is made by the kernel (services/shell.py) with this app as its parent."""

    def start_shell(self, kernel: Kernel) -> None:
        """Once the kernel made its shell: --gui/--matplotlib, extensions, startup files and exec_lines, with their
        tracebacks sent to the log (there is no cell to show them in yet)."""
        self.kernel = kernel
        shell = self.shell = kernel.shell
        shell.configurables.append(self)

        def to_log(etype: type[BaseException], evalue: BaseException, stb: list[str]) -> None:
            log.error("while starting the shell:\n%s", shell.InteractiveTB.stb2text(stb))

        shell._showtraceback = to_log  # type: ignore[method-assign]
        try:
            for step in (self.init_gui_pylab, self.init_extensions, self.init_code):
                try:
                    step()
                except Exception:
                    log.exception("%s failed", step.__name__)
        finally:
            del shell._showtraceback
        sys.stdout.flush()
        sys.stderr.flush()


def make_app(argv: list[str] | None = None, config: Any = None, site_profile: bool | None = None) -> IPKernelApp:
    """The app, initialised from `argv` (`--profile`, `--ipython-dir`, `--Class.trait=value`, `-c`, `--matplotlib`,
    ...) and the profile's config files. What cannot be used is logged and left out: an argument IPython does not
    know is dropped on its own; a profile that does not exist falls back to the default one.

    `site_profile` (browser): whether the site's files hold a profile at SITE_IPYTHON_DIR, as the page found it while
    Python loaded; None: look here. Looking here is a synchronous request to the page, whose thread is busy starting
    the app then: 20-25 ms of a reload's first result."""
    args = known_arguments(list(argv or []))
    if IS_PYODIDE and "IPYTHONDIR" not in os.environ:
        if site_profile is None:
            # One lookup in the notebook's files (JupyterLite's contents, mounted by the worker before the kernel)
            site_profile = os.path.isdir(SITE_IPYTHON_DIR)
        if site_profile:
            os.environ["IPYTHONDIR"] = SITE_IPYTHON_DIR
    app = _initialized(args, config)
    if app is None:
        log.error("the IPython settings %s could not be used; starting with the default profile", args)
        app = _initialized([a for a in args if _is_trait(a)], config) or _initialized([], config)
    assert app is not None
    if "IPKernelApp" not in app.config:
        # tqdm (and others) tell a kernel from a terminal by this section, which ipykernel always has (-f)
        app.config.IPKernelApp.connection_file = app.connection_file
    return app


def _initialized(argv: list[str], config: Any) -> IPKernelApp | None:
    if IPKernelApp.initialized():
        IPKernelApp.clear_instance()
    app = IPKernelApp.instance()
    if config is not None:
        app.update_config(config)
    try:
        app.initialize(argv)
    except SystemExit:  # traitlets and IPython exit on what they cannot use (a missing profile), after saying why
        return None
    except Exception:
        log.exception("the IPython application failed to start with %s", argv)
        return None
    return app if app.profile_dir is not None else None


def _is_trait(arg: str) -> bool:
    name = arg.lstrip("-").partition("=")[0]
    return arg.startswith("--") and "." in name


def known_arguments(argv: list[str]) -> list[str]:
    """`argv` without the options IPython's kernel app does not know (each logged): one stray flag in a kernelspec
    must not cost the others."""
    kept: list[str] = []
    args = iter(argv)
    for arg in args:
        if not arg.startswith("-") or _is_trait(arg):
            kept.append(arg)
            continue
        name, has_value, _ = arg.lstrip("-").partition("=")
        if name in IPKernelApp.flags and not has_value:
            kept.append(arg)
        elif name in IPKernelApp.aliases:
            kept.append(arg)
            if not has_value:  # `--profile foo`: the value is the next argument
                kept.extend(value for value in [next(args, None)] if value is not None)
        else:
            log.warning("ignoring the unknown argument %r", arg)
    return kept
