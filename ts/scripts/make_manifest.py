"""Write the kernel's load manifest (ck-manifest.json) next to the Pyodide lock that lists its wheels.

Usage: make_manifest.py OUT_DIR WHEEL [WHEEL ...]

OUT_DIR is the directory that holds the Pyodide core, the wheels and ``pyodide-lock.json`` (written by
``pyodide lockfile add-wheels``). The manifest names the packages the worker loads (their dependencies come
from the lock) and the modules whose import proves the kernel can start. Every wheel must be in the lock,
with the same file and sha256: a stale lock would make ``loadPackage`` fetch the wrong files, quietly.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from packaging.utils import canonicalize_name, parse_wheel_filename

#: Distributions that only carry Jupyter front-end assets (ipywidgets requires them; never imported): shipped so
#: the lock resolves, but not asked for by name.
DATA_ONLY = {"widgetsnbextension", "jupyterlab-widgets"}

#: Shipped for on-demand use only (`%pip`, `import micropip`): not loaded at start, not in the snapshot.
LAZY = {"micropip"}

#: Modules whose import proves the kernel can start. The snapshot imports them too: services.packages (the
#: `%pip` and import-loading hooks the worker installs at every kernel start) is there so that a start does not
#: compile it (measured: ~60 ms more from Python ready to kernel started without it).
REQUIRED_IMPORTS = ["concurrent_kernel", "IPython", "anyio", "aiologic", "comm", "traitlets",
                    "concurrent_kernel.services.packages"]


def main(argv: list[str]) -> int:
    out_dir, *wheels = argv
    out = Path(out_dir)
    packages = json.loads((out / "pyodide-lock.json").read_text())["packages"]
    names = []
    for wheel in map(Path, wheels):
        name = canonicalize_name(parse_wheel_filename(wheel.name)[0])
        entry = packages.get(name)
        if entry is None or Path(entry["file_name"]).name != wheel.name:
            found = entry and entry["file_name"]
            raise SystemExit(f"{wheel.name} is not in {out / 'pyodide-lock.json'} (found {found})")
        if entry["sha256"] != hashlib.sha256(wheel.read_bytes()).hexdigest():
            raise SystemExit(f"{wheel.name}: sha256 differs from the lock's")
        if name not in DATA_ONLY and name not in LAZY:
            names.append(name)
    # "shipped": the lock's other entries are the Pyodide distribution's (the worker points them at its URL).
    manifest = {
        "packages": sorted(names),
        "imports": REQUIRED_IMPORTS,
        "data_only": sorted(DATA_ONLY),
        "shipped": sorted(Path(w).name for w in wheels),
    }
    (out / "ck-manifest.json").write_text(json.dumps(manifest, indent=1))
    print(f"manifest: {len(names)} packages to load, {len(wheels) - len(names)} data-only")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
