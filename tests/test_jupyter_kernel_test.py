"""jupyter_kernel_test's conformance suite (PyPI) on both backends, with every optional sample filled in."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import jupyter_kernel_test as jkt
import pytest

from e2e_helpers import spec_name, start_kernel, write_kernelspecs

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


class _KernelspecInTempDir:
    """Start the kernel from a kernelspec written to a temp dir (one per backend), not from the user's specs."""

    backend: ClassVar[str] = "asyncio"
    _spec_root: ClassVar[Path]

    @classmethod
    def _start(cls) -> Any:
        cls._spec_root = Path(tempfile.mkdtemp(prefix="ck-jkt-"))
        return start_kernel(write_kernelspecs(cls._spec_root), spec_name(cls.backend))

    @classmethod
    def _cleanup(cls) -> None:
        shutil.rmtree(cls._spec_root, ignore_errors=True)


class _ConcurrentKernelTests(_KernelspecInTempDir, jkt.KernelTests):
    __test__ = False

    @classmethod
    def setUpClass(cls) -> None:
        cls.km, cls.kc = cls._start()

    @classmethod
    def tearDownClass(cls) -> None:
        try:
            super().tearDownClass()
        finally:
            cls._cleanup()

    language_name = "python"
    file_extension = ".py"

    code_hello_world = "print('hello, world')"
    code_stderr = "import sys; print('test', file=sys.stderr)"

    completion_samples: ClassVar[list[dict[str, Any]]] = [
        {"text": "zi", "matches": {"zip"}},
        {"text": "import collections; collections.OrderedD", "matches": {"OrderedDict"}},
    ]
    complete_code_samples: ClassVar[list[str]] = ["1", "print('hello, world')", "def f(x):\n  return x*2\n\n\n"]
    incomplete_code_samples: ClassVar[list[str]] = ["print('''hello", "def f(x):\n  x*2", "for i in range(3):"]
    invalid_code_samples: ClassVar[list[str]] = ["import = 7q", "x = )"]

    code_page_something = "zip?"
    code_generate_error = "raise ValueError('expected')"

    code_execute_result: ClassVar[list[dict[str, str]]] = [
        {"code": "1+2+3", "result": "6"},
        {"code": "[n*n for n in range(4)]", "result": "[0, 1, 4, 9]"},
        {"code": "from IPython.display import HTML; HTML('<b>x</b>')", "mime": "text/html", "result": "<b>x</b>"},
    ]
    code_display_data: ClassVar[list[dict[str, str]]] = [
        {"code": "from IPython.display import HTML, display; display(HTML('<b>test</b>'))", "mime": "text/html"},
        {"code": "from IPython.display import Math, display; display(Math(r'\\frac{1}{2}'))", "mime": "text/latex"},
    ]
    code_history_pattern = "1?2*"
    supported_history_operations = ("tail", "range", "search")
    code_inspect_sample = "zip"
    code_clear_output = "from IPython.display import clear_output; print('x'); clear_output()"


class TestAsyncioKernel(_ConcurrentKernelTests):
    __test__ = True
    backend = "asyncio"


class TestTrioKernel(_ConcurrentKernelTests):
    __test__ = True
    backend = "trio"


class _IopubWelcome(_KernelspecInTempDir, jkt.IopubWelcomeTests):
    __test__ = False
    support_iopub_welcome = True

    @classmethod
    def setUpClass(cls) -> None:
        # IopubWelcomeTests starts the channels itself, in the test, to catch the first message.
        cls._spec_root = Path(tempfile.mkdtemp(prefix="ck-jkt-"))
        from jupyter_client.kernelspec import KernelSpecManager
        from jupyter_client.manager import KernelManager

        ksm = KernelSpecManager(kernel_dirs=[str(write_kernelspecs(cls._spec_root))], ensure_native_kernel=False)
        cls.km = KernelManager(kernel_name=spec_name(cls.backend), kernel_spec_manager=ksm)
        cls.km.start_kernel()
        cls.kc = cls.km.client()

    @classmethod
    def tearDownClass(cls) -> None:
        try:
            super().tearDownClass()
        finally:
            cls._cleanup()


class TestAsyncioIopubWelcome(_IopubWelcome):
    __test__ = True
    backend = "asyncio"


class TestTrioIopubWelcome(_IopubWelcome):
    __test__ = True
    backend = "trio"
