"""Add pure-Python wheels to Pyodide's lock file and write the kernel's load manifest.

Usage: make_pyodide_lock.py NPM_LOCK OUT_DIR WHEEL [WHEEL ...]

The wheels are copied next to the written ``pyodide-lock.json`` in OUT_DIR (the
directory that also holds the Pyodide core, i.e. ``indexURL``), entries of the
same name in the npm lock are replaced, and ``ck-manifest.json`` lists the
packages the worker must load and the modules it must be able to import.

This does what ``pyodide lockfile add-wheels`` does; that command is not usable
here (pyodide-build >= 0.26 needs Python >= 3.12, and the older CLIs crash on
import), so the few lines are kept in the project.
"""

from __future__ import annotations

import email.parser
import hashlib
import json
import shutil
import sys
import zipfile
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

#: Marker environment of Pyodide 314 (CPython 3.14 on wasm32 emscripten).
PYODIDE_ENV: dict[str, str] = {
    **default_environment(),
    "implementation_name": "cpython",
    "platform_machine": "wasm32",
    "platform_system": "Emscripten",
    "sys_platform": "emscripten",
    "os_name": "posix",
    "python_version": "3.14",
    "python_full_version": "3.14.2",
    "implementation_version": "3.14.2",
    "platform_python_implementation": "CPython",
    "extra": "",
}

#: Distributions that only carry Jupyter front-end assets (required by ipywidgets' metadata, never imported):
#: not shipped to Pyodide, and dropped from every ``depends``.
DATA_ONLY = {"widgetsnbextension", "jupyterlab-widgets"}

#: Modules whose import proves the kernel can start.
REQUIRED_IMPORTS = ["concurrent_kernel", "IPython", "anyio", "aiologic", "comm", "traitlets"]


def wheel_info(path: Path) -> dict:
    """Return name, version, requirements and top-level imports of a wheel."""
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = email.parser.Parser().parsestr(zf.read(meta_name).decode())
        tops: set[str] = set()
        for n in names:
            first = n.split("/", 1)[0]
            if first.endswith((".dist-info", ".data")):
                continue
            if "/" in n:
                tops.add(first)
            elif n.endswith(".py"):
                tops.add(n[:-3])
    reqs = []
    for line in meta.get_all("Requires-Dist") or []:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate(PYODIDE_ENV):
            reqs.append(canonicalize_name(req.name))
    return {
        "name": canonicalize_name(meta["Name"]),
        "version": meta["Version"],
        "requires": reqs,
        "imports": sorted(t for t in tops if t.isidentifier()),
    }


def main(argv: list[str]) -> int:
    npm_lock, out_dir, *wheels = argv
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lock = json.loads(Path(npm_lock).read_text())
    infos = {}
    for w in map(Path, wheels):
        info = wheel_info(w)
        if info["name"] in DATA_ONLY:
            continue
        info["path"] = w
        infos[info["name"]] = info
    packages = lock["packages"]
    for name, info in infos.items():
        packages.pop(name, None)
        dest = out / info["path"].name
        if dest.resolve() != info["path"].resolve():
            shutil.copyfile(info["path"], dest)
        packages[name] = {
            "name": name,
            "version": info["version"],
            "file_name": dest.name,
            "install_dir": "site",
            "sha256": hashlib.sha256(dest.read_bytes()).hexdigest(),
            "package_type": "package",
            "imports": info["imports"],
            # Only dependencies we ship: anything else would make loadPackage fetch a missing file.
            "depends": sorted(r for r in info["requires"] if r in infos),
            "unvendored_tests": False,
            "shared_library": False,
        }
    (out / "pyodide-lock.json").write_text(json.dumps(lock, indent=1, sort_keys=True))
    missing = sorted({r for i in infos.values() for r in i["requires"] if r not in infos and r not in DATA_ONLY})
    manifest = {
        "packages": sorted(infos),
        "imports": REQUIRED_IMPORTS,
        "unresolved": missing,
    }
    (out / "ck-manifest.json").write_text(json.dumps(manifest, indent=1))
    print(f"lock: {len(infos)} wheels added; requirements not shipped: {missing or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
