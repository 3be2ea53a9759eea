"""Adapt a library module right after it is imported, before any user code sees it.

Why not patch at start-up: the libraries concerned (matplotlib-inline, ipykernel) are optional and slow to import;
a kernel that never plots must not pay for them. One finder sits on `sys.meta_path` and answers only for the
module names registered here (a dict lookup per import for every other module).
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Callable, Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

log = logging.getLogger("concurrent_kernel")

Adapter = Callable[[ModuleType], None]


class _AfterImport(MetaPathFinder):
    def __init__(self) -> None:
        self.adapters: dict[str, list[Adapter]] = {}
        self.preparers: dict[str, list[Callable[[], None]]] = {}
        self._finding: set[str] = set()

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> Any:
        for prepare in self.preparers.pop(fullname, ()):
            try:
                prepare()
            except Exception:
                log.warning("could not prepare the import of %s for this kernel", fullname, exc_info=True)
        if fullname not in self.adapters or fullname in self._finding:
            return None
        self._finding.add(fullname)
        try:
            spec = importlib.util.find_spec(fullname)  # the real finders (this one steps aside meanwhile)
        finally:
            self._finding.discard(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        self._wrap(spec)
        return spec

    def _wrap(self, spec: ModuleSpec) -> None:
        loader: Any = spec.loader
        exec_module = loader.exec_module
        name = spec.name

        def exec_then_adapt(module: ModuleType) -> None:
            exec_module(module)
            loader.__dict__.pop("exec_module", None)  # the loader object may serve a later re-import
            _run_adapters(module, self.adapters.pop(name, []))

        loader.exec_module = exec_then_adapt


_finder = _AfterImport()


def _run_adapters(module: ModuleType, adapters: list[Adapter]) -> None:
    for adapt in adapters:
        try:
            adapt(module)
        except Exception:  # a library we do not control changed shape: it keeps working as it is
            log.warning("could not adapt %s for this kernel", module.__name__, exc_info=True)


def when_imported(name: str, adapt: Adapter) -> None:
    """Call `adapt(module)` once `name` is imported (at once if it already is)."""
    module = sys.modules.get(name)
    if module is not None:
        _run_adapters(module, [adapt])
        return
    _finder.adapters.setdefault(name, []).append(adapt)
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)


def before_import(name: str, prepare: Callable[[], None]) -> None:
    """Call `prepare()` once, just before `name` is first imported (not at all if it already is)."""
    if name in sys.modules:
        return
    _finder.preparers.setdefault(name, []).append(prepare)
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)
