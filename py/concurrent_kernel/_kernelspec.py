"""Install, remove and list the kernelspec that starts this kernel."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from ._protocol import (
    ENCRYPTION_CURVE,
    KERNEL_DISPLAY_NAME,
    KERNEL_SPEC_NAME,
    KERNELSPEC_DEBUGGER,
    KERNELSPEC_SUPPORTED_ENCRYPTION,
)

BACKENDS = ("asyncio", "trio")


def kernelspec_dict(
    display_name: str = KERNEL_DISPLAY_NAME, backend: str = "asyncio", debugger: bool = True
) -> dict[str, object]:
    argv = [sys.executable, "-m", "concurrent_kernel", "-f", "{connection_file}"]
    if backend != "asyncio":
        argv += ["--backend", backend]
    if not debugger:
        argv.append("--no-debugger")
    return {
        "argv": argv,
        "display_name": display_name,
        "language": "python",
        "interrupt_mode": "message",
        "metadata": {
            KERNELSPEC_DEBUGGER: debugger,
            **({KERNELSPEC_SUPPORTED_ENCRYPTION: [ENCRYPTION_CURVE]} if _has_curve() else {}),
            "concurrent_kernel": {"backend": backend},
        },
    }


def _has_curve() -> bool:
    """Declare CurveZMQ only when this pyzmq can do it: jupyter_server's `auto` mode then provisions keys, and a
    kernel whose libzmq lacks CURVE would have to refuse them."""
    try:
        import zmq
    except ImportError:
        return False
    return bool(zmq.has("curve"))


def install(
    *,
    name: str = KERNEL_SPEC_NAME,
    display_name: str = KERNEL_DISPLAY_NAME,
    backend: str = "asyncio",
    user: bool = False,
    prefix: str | None = None,
    debugger: bool = True,
) -> str:
    from jupyter_client.kernelspec import KernelSpecManager

    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    with tempfile.TemporaryDirectory() as tmp:
        spec_dir = Path(tmp) / name
        spec_dir.mkdir()
        (spec_dir / "kernel.json").write_text(json.dumps(kernelspec_dict(display_name, backend, debugger), indent=1))
        _copy_logos(spec_dir)
        return KernelSpecManager().install_kernel_spec(str(spec_dir), name, user=user, prefix=prefix)


def _copy_logos(spec_dir: Path) -> None:
    """Reuse IPython's logos where the installed IPython ships them; the spec works without."""
    try:
        import IPython

        for logo in Path(IPython.__file__).parent.glob("**/logo-*.png"):
            shutil.copy(logo, spec_dir / logo.name)
    except Exception:
        pass


def uninstall(name: str) -> None:
    from jupyter_client.kernelspec import KernelSpecManager

    KernelSpecManager().remove_kernel_spec(name)


def list_specs() -> dict[str, str]:
    from jupyter_client.kernelspec import KernelSpecManager

    return KernelSpecManager().find_kernel_specs()
