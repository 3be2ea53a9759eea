"""Packages in the browser kernel (Pyodide only): `%pip`, micropip, and Pyodide's packages loaded on import.

Sources, in order: wheels the site ships (piplite `all.json` indexes written by `jupyter lite build`), the Pyodide
distribution (entries of the site's Pyodide lock; the worker points those the site does not ship at the
distribution's base URL), then a package index (PyPI by default) when the page is online and the site allows it.
Nothing here runs at start-up beyond installing two transformers: micropip is loaded on first use, after the
snapshot restore, so a kernel start stays as fast as without it.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import sys
from typing import Any
from urllib.parse import urljoin

#: The matplotlib backend the CPython kernel selects too (concurrent_kernel._app).
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"

#: Where a site author puts wheels so that they install with no network (jupyterlite-pyodide-kernel's piplite addon).
HOW_TO_SHIP = (
    "To ship it with the site, put its wheel in the site's pypi/ folder or list it in "
    '`{"PipliteAddon": {"piplite_urls": [...]}}` of jupyter_lite_config.json, then run `jupyter lite build` again.'
)

#: PyPI's Simple API, written with micropip's placeholder: the same index, but not micropip's default list, so its
#: resolver asks the index (the site's wheels, via _query) before the Pyodide lock.
#: Where a site author puts Pyodide's own packages (compiled ones such as numpy) so that they load with no network.
HOW_TO_SHIP_DIST = (
    "To use it offline, serve a copy of the Pyodide distribution (or just the packages you need, with their "
    'pyodide-lock.json entries) with the site and set `"pyodideDistUrl"` under '
    '`litePluginSettings["concurrent-kernel:plugin"]` in jupyter-lite.json to its URL.'
)

PYPI_SIMPLE = "https://pypi.org/simple/{package_name}/"

_settings: dict[str, Any] = {
    "pipliteUrls": [],
    "disablePyPIFallback": False,
    "distributionUrl": "",
    "indexUrls": None,
    "driveNotice": None,
}
_indexes: dict[str, dict[str, Any]] = {}
_micropip_patched = False


class PackageNotAvailable(ValueError):
    """The package is neither shipped with the site nor reachable (offline, or the site allows no index).

    A ValueError because micropip's resolver treats that as "not found here, try the next source".
    """


def setup(kernel: Any, settings_json: str) -> None:
    """Called by the worker once the kernel is scheduled: settings, and the shell's transformers once it exists."""
    _settings.update(json.loads(settings_json or "{}"))
    os.environ.setdefault("MPLBACKEND", INLINE_BACKEND)
    import asyncio

    async def when_shell_ready() -> None:
        await kernel.shell_ready
        install_into(kernel.shell)

    asyncio.get_event_loop().create_task(when_shell_ready())


def install_into(shell: Any) -> None:
    """`%pip` lines become an awaited install; a cell importing a Pyodide package not yet loaded loads it first."""
    if pip_lines not in shell.input_transformers_cleanup:
        shell.input_transformers_cleanup.append(pip_lines)
    if not any(isinstance(t, LoadOnImport) for t in shell.ast_transformers):
        shell.ast_transformers.append(LoadOnImport())
    notice = _settings.get("driveNotice")
    if notice:

        def tell_once(*_: Any) -> None:
            shell.events.unregister("pre_run_cell", tell_once)
            print(notice, file=sys.stderr)

        shell.events.register("pre_run_cell", tell_once)


# ---------------------------------------------------------------------------------------------------- %pip

_PIP_LINE = re.compile(r"^(\s*)%pip(?:\s+(.*?))?\s*$")
_CALL = "await __import__('concurrent_kernel.services.packages', fromlist=['pip']).pip({args!r})\n"


def pip_lines(lines: list[str]) -> list[str]:
    """Rewrite `%pip ARGS` into an awaited call (a line magic cannot await; the cell can)."""
    out = []
    for line in lines:
        match = _PIP_LINE.match(line)
        out.append(match[1] + _CALL.format(args=match[2] or "") if match else line)
    return out


async def pip(args: str) -> None:
    """The browser's `%pip`: install, uninstall, list, show (what micropip can do)."""
    try:
        argv = shlex.split(args)
    except ValueError as exc:
        raise ValueError(f"%pip: {exc}") from None
    if not argv:
        print("usage: %pip install [-U] [--pre] [--no-deps] [-i URL] NAME ... | uninstall NAME ... | list")
        return
    command, rest = argv[0], argv[1:]
    if command == "install":
        await _pip_install(rest)
    elif command == "uninstall":
        micropip = await load_micropip()
        names = [a for a in rest if not a.startswith("-")]
        micropip.uninstall(names)
        print("Uninstalled " + ", ".join(names))
    elif command in ("list", "freeze"):
        micropip = await load_micropip()
        if command == "freeze":
            print("\n".join(f"{p.name}=={p.version}" for p in micropip.list().values()))
        else:
            print(micropip.list())
    else:
        raise ValueError(f"%pip {command}: not available in the browser (install, uninstall, list, freeze are)")


async def _pip_install(argv: list[str]) -> None:
    options: dict[str, Any] = {}
    requirements: list[str] = []
    index_urls: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg in ("-U", "--upgrade", "--force-reinstall"):
            options["reinstall"] = True
        elif arg == "--pre":
            options["pre"] = True
        elif arg == "--no-deps":
            options["deps"] = False
        elif arg in ("-q", "--quiet", "-v", "--verbose"):
            options["verbose"] = arg in ("-v", "--verbose")
        elif arg in ("-i", "--index-url", "--extra-index-url"):
            index_urls.append(next(it, ""))
        elif arg.startswith(("--index-url=", "--extra-index-url=")):
            index_urls.append(arg.split("=", 1)[1])
        elif arg.startswith("-"):
            raise ValueError(f"%pip install {arg}: option not available in the browser")
        else:
            requirements.append(arg)
    if not requirements:
        raise ValueError("%pip install: name at least one package")
    await load_micropip()  # not in the summary: it is the installer
    before = _installed_versions()
    await install(requirements, index_urls=index_urls or None, **options)
    after = _installed_versions()
    for req in requirements:
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req)
        name = canonical(match[1]) if match and not req.endswith(".whl") and "://" not in req else ""
        if name and before.get(name) is not None and before.get(name) == after.get(name):
            print(f"Requirement already satisfied: {match[1] if match else req} in {_site_packages()} ({after[name]})")
    changed = [f"{name}-{version}" for name, version in after.items() if before.get(name) != version]
    if changed:
        print("Successfully installed " + " ".join(changed))


async def install(requirements: str | list[str], index_urls: list[str] | None = None, **options: Any) -> None:
    """micropip.install with the site's sources first; raises PackageNotAvailable with what to do."""
    micropip = await load_micropip()
    if isinstance(requirements, str):
        requirements = [requirements]
    if _why_no_index() == "the page is offline":
        # Not even tried: a distribution package would be fetched from the Pyodide CDN, and fail.
        lock = _lock_packages()
        for req in requirements:
            match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req)
            name = canonical(match[1]) if match else ""
            if name in lock and "://" in str(lock[name].file_name):
                raise PackageNotAvailable(
                    f"{name} is a Pyodide distribution package and the page is offline. {HOW_TO_SHIP_DIST}"
                )
    urls = [*(index_urls or [])] or None
    try:
        await micropip.install(requirements, index_urls=urls, **options)
    except PackageNotAvailable:
        raise
    except ValueError as exc:
        raise PackageNotAvailable(f"{exc}".strip()) from None
    _check_loaded(requirements)


def _installed_versions() -> dict[str, str]:
    """Canonical name -> version of every installed distribution (what pip's summary lines compare)."""
    import importlib.metadata

    versions: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            versions.setdefault(canonical(name), dist.version)
    return versions


def _site_packages() -> str:
    import sysconfig

    return sysconfig.get_paths()["purelib"]


def canonical(name: str) -> str:
    """PEP 503 normalised name (micropip's vendored packaging is private: not imported for this)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _check_loaded(requirements: list[str]) -> None:
    """loadPackage reports a failed download in the console and returns: make it the cell's error."""
    import importlib.metadata

    for req in requirements:
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req)
        if req.endswith(".whl") or "://" in req or not match:
            continue
        name = match[1]
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            where = _settings.get("distributionUrl") or "the Pyodide distribution"
            raise PackageNotAvailable(
                f"{name!r} could not be downloaded from {where} (is the page offline?). {HOW_TO_SHIP}"
            ) from None


# ---------------------------------------------------------------------------------------------------- micropip


async def load_micropip() -> Any:
    """Load micropip (shipped with the site, beside the lock) on first use, and route its lookups."""
    if "micropip" not in sys.modules:
        await load_lock_packages(["micropip"], announce=False)
    import micropip

    _patch_micropip()
    return micropip


def _patch_micropip() -> None:
    """Every micropip lookup, the user's own `micropip.install` included, tries the site's wheels first."""
    global _micropip_patched
    if _micropip_patched:
        return
    import micropip
    from micropip import package_index

    original = package_index.query_package

    async def query_package(name: str, index_urls: list[str] | str, **kwargs: Any) -> Any:
        return await _query(name, index_urls, original, **kwargs)

    package_index.query_package = query_package
    # Not micropip's default index list: its resolver then asks the index (us) before the lock, so the site's
    # wheels win over the distribution's; _query hands distribution packages back to the lock.
    micropip.set_index_urls([*(_settings.get("indexUrls") or [PYPI_SIMPLE])])
    _micropip_patched = True


async def _query(name: str, index_urls: list[str] | str, original: Any, **kwargs: Any) -> Any:
    from micropip.package_index import ProjectInfo

    key = canonical(name)
    for url in _settings.get("pipliteUrls") or []:
        index = await _piplite_index(url)
        entry = index.get(key)
        if entry:
            releases = {
                version: [{**f, "url": urljoin(url, f["url"])} for f in files]
                for version, files in entry.get("releases", {}).items()
            }
            return ProjectInfo.from_json_api({"info": {"name": name}, "releases": releases})
    if key in _lock_packages():
        raise PackageNotAvailable(f"{name} is a Pyodide distribution package")  # micropip takes it from the lock
    reason = _why_no_index()
    if reason:
        raise PackageNotAvailable(f"{name!r} is not shipped with this site, and {reason}. {HOW_TO_SHIP}")
    return await original(name, index_urls, **kwargs)


def _why_no_index() -> str | None:
    if _settings.get("disablePyPIFallback"):
        return "this site does not fetch packages from PyPI (disablePyPIFallback)"
    try:
        import js

        if not js.navigator.onLine:
            return "the page is offline"
    except (ImportError, AttributeError):
        pass
    return None


async def _piplite_index(url: str) -> dict[str, Any]:
    if url not in _indexes:
        from pyodide.http import pyfetch

        try:
            response = await pyfetch(url)
            data = await response.json() if response.ok else {}
        except Exception as exc:
            print(f"could not read the site's wheel index {url}: {exc}", file=sys.stderr)
            data = {}
        _indexes[url] = {canonical(k): v for k, v in data.items()} if isinstance(data, dict) else {}
    return _indexes[url]


# ---------------------------------------------------------------------------------------------------- on import


def _lock_packages() -> Any:
    """The loaded Pyodide lock's packages, as a mapping (`in`, `[]`), read live: the worker may repoint entries."""
    import pyodide_js

    packages = pyodide_js._api.lockfile_packages
    # as_py_json in Pyodide 314 (as_object_map there warns that it is deprecated, in the cell that ran %pip).
    as_mapping = getattr(packages, "as_py_json", None) or packages.as_object_map
    return as_mapping()


def _package_for_import(module: str) -> str | None:
    import pyodide_js

    name = pyodide_js._api._import_name_to_package_name.get(module)
    return str(name) if name else None


#: Line magics that import a package themselves (IPython's `%matplotlib` and `%pylab` import matplotlib).
_MAGIC_IMPORTS = {"matplotlib": "matplotlib", "pylab": "matplotlib"}


def imported_modules(tree: ast.AST) -> list[str]:
    """Top-level modules a cell imports: its import statements, and the magics that import (after IPython's
    transforms, `%matplotlib inline` is a `run_line_magic('matplotlib', ...)` call)."""
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            modules = [node.module]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "run_line_magic"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and node.args[0].value in _MAGIC_IMPORTS
        ):
            modules = [_MAGIC_IMPORTS[node.args[0].value]]
        else:
            continue
        for module in modules:
            top = module.split(".")[0]
            if top not in found:
                found.append(top)
    return found


def packages_to_load(tree: ast.AST) -> list[str]:
    """Lock packages providing the cell's imports that cannot be imported yet."""
    import importlib.util

    wanted: list[str] = []
    for top in imported_modules(tree):
        if top in sys.modules:
            continue
        package = _package_for_import(top)
        if package and package not in wanted and importlib.util.find_spec(top) is None:
            wanted.append(package)
    return wanted


class LoadOnImport(ast.NodeTransformer):
    """Prepend `await load_lock_packages([...])` to a cell importing Pyodide packages not loaded yet."""

    def visit_Module(self, node: ast.Module) -> ast.Module:
        try:
            wanted = packages_to_load(node)
        except Exception:  # a failing transformer is dropped by IPython: never fail here
            return node
        if wanted:
            call = ast.parse(
                "await __import__('concurrent_kernel.services.packages', fromlist=['_'])"
                f".load_lock_packages({wanted!r})"
            ).body[0]
            node.body.insert(0, call)
        return node


async def load_lock_packages(names: list[str], announce: bool = True) -> None:
    """pyodide.loadPackage, saying in the cell what it loads and from where; what cannot be loaded is printed.

    A distribution package is not fetched while the page is offline: the line says so at once.
    """
    import pyodide_js
    from pyodide.ffi import create_proxy, to_js

    lock = _lock_packages()
    offline = _why_no_index() == "the page is offline"
    wanted: list[str] = []
    for name in names:
        file_name = str(lock[name].file_name) if name in lock else ""
        remote = "://" in file_name
        if remote and offline:
            print(
                f"{name} is a Pyodide distribution package and the page is offline. {HOW_TO_SHIP_DIST}", file=sys.stderr
            )
            continue
        if announce:
            print(
                f"Loading {name} from "
                + (f"the Pyodide distribution ({file_name.rsplit('/', 1)[0]}/)" if remote else "this site")
            )
        wanted.append(name)
    if not wanted:
        return
    errors: list[str] = []
    on_message = create_proxy(lambda _msg: None)
    on_error = create_proxy(errors.append)
    try:
        await pyodide_js.loadPackage(to_js(wanted), messageCallback=on_message, errorCallback=on_error)
    finally:
        on_message.destroy()
        on_error.destroy()
    if errors:
        print("\n".join(errors) + f"\n{', '.join(wanted)} could not be loaded. {HOW_TO_SHIP_DIST}", file=sys.stderr)
    elif "micropip" in wanted:
        _patch_micropip()  # `import micropip` in a cell: its installs use the site's sources too
