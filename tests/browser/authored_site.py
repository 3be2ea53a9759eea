"""A JupyterLite site as a site author builds it, for the files and packages tests.

Built with `jupyter lite build` from a lite dir with `contents/` files and `PipliteAddon.piplite_urls` wheels
(built here from tiny source dirs), plus local stand-ins served by the same test server: a package index (PyPI's
Simple API) and a Pyodide distribution (a lock entry the site does not ship, its wheel under a base URL).
Built once per test process.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from conftest import ROOT

LABEXT = ROOT / ".venv" / "share" / "jupyter" / "labextensions"

#: Data files shipped in the site's contents/ (the notebook's folder is data/).
CSV = "name,score\nada,3\ngrace,5\n"

#: Wheels: shipped through piplite_urls (one depends on the other), served by the index stand-in, or by the
#: distribution stand-in.
SHIPPED = "ck-shipped-demo"
SHIPPED_DEP = "ck-shipped-dep"
INDEX_ONLY = "ck-index-demo"
DIST_ONLY = "ck-dist-demo"
#: Shipped too: a package written against ipykernel, as older widget libraries are (tests/browser/test_stock_api.py).
NEEDS_IPYKERNEL = "ck-ipykernel-widget"
NEEDS_IPYKERNEL_SOURCE = '''"""A test package that requires ipykernel and opens comms with ipykernel.comm.Comm."""
from ipykernel.comm import Comm

VALUE = "widget"


def open_comm(data):
    received = []
    comm = Comm(target_name="ck-stock-demo", data=data)
    comm.on_msg(lambda msg: received.append(msg["content"]["data"]))
    return comm, received
'''

#: jupyterlite-pyodide-kernel's piplite addon (its entry point name), disabled to build as if it were not installed.
STOCK_PIPLITE = "jupyterlite-pyodide-kernel-piplite"

_built: dict[bool, Path] = {}


def _wheel(
    src: Path, out: Path, name: str, value: str, requires: list[str] | None = None, source: str | None = None
) -> Path:
    module = name.replace("-", "_")
    pkg = src / name
    (pkg / module).mkdir(parents=True)
    (pkg / module / "__init__.py").write_text(source or f'"""A test package."""\nVALUE = {value!r}\n')
    deps = ", ".join(json.dumps(r) for r in requires or [])
    (pkg / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [build-system]
            requires = ["hatchling"]
            build-backend = "hatchling.build"
            [project]
            name = "{name}"
            version = "0.1.0"
            dependencies = [{deps}]
            [tool.hatch.build.targets.wheel]
            packages = ["{module}"]
            """
        )
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "--no-deps",
         "--no-build-isolation", str(pkg), "-w", str(out)],
        check=True,
    )
    (whl,) = out.glob(f"{module}-*.whl")
    return whl


def build(stock_piplite: bool = True) -> Path:
    """The built site's directory (cached for the process).

    `stock_piplite=False` builds as if jupyterlite-pyodide-kernel were not installed (its piplite addon disabled):
    this package's own addon (concurrent_kernel.lite_addon) then indexes the same wheels.
    """
    if stock_piplite in _built:
        return _built[stock_piplite]
    work = Path(tempfile.mkdtemp(prefix="ck-authored-site-"))
    src, wheels = work / "src", work / "wheels"
    shipped_dep = _wheel(src, wheels / "dep", SHIPPED_DEP, "dep")
    shipped = _wheel(src, wheels / "shipped", SHIPPED, "shipped", [SHIPPED_DEP])
    index_only = _wheel(src, wheels / "index", INDEX_ONLY, "from the index")
    dist_only = _wheel(src, wheels / "dist", DIST_ONLY, "from the distribution")
    needs_ipykernel = _wheel(src, wheels / "widget", NEEDS_IPYKERNEL, "widget", ["ipykernel>=6.0", "comm>=0.1"],
                             NEEDS_IPYKERNEL_SOURCE)

    lite = work / "lite"
    (lite / "pypi").mkdir(parents=True)  # the other way to ship a wheel: the lite dir's pypi/ folder
    (lite / "pypi" / shipped_dep.name).write_bytes(shipped_dep.read_bytes())
    (lite / "contents" / "data").mkdir(parents=True)
    (lite / "contents" / "data" / "table.csv").write_text(CSV)
    (lite / "contents" / "top.txt").write_text("at the root\n")
    exts = [str(ROOT / "ts" / "labextension"), str(LABEXT / "@jupyter-widgets" / "jupyterlab-manager")]
    (lite / "jupyter_lite_config.json").write_text(json.dumps({
        "LiteBuildConfig": {"federated_extensions": exts, "ignore_sys_prefix": True, "contents": ["contents"],
                            "no_sourcemaps": True, "disable_addons": [] if stock_piplite else [STOCK_PIPLITE]},
        "PipliteAddon": {"piplite_urls": [str(shipped), str(needs_ipykernel)]},
    }))
    (lite / "jupyter-lite.json").write_text(json.dumps({
        "jupyter-lite-schema-version": 0,
        "jupyter-config-data": {
            "exposeAppInBrowser": "true",
            "litePluginSettings": {"concurrent-kernel:plugin": {
                "pyodideDistUrl": "./ck-test-dist/",
                "indexUrls": ["./ck-test-index"],
            }},
        },
    }))
    site = work / "site"
    jupyter = Path(sys.executable).parent / "jupyter"
    done = subprocess.run([str(jupyter), "lite", "build", "--output-dir", str(site)], cwd=lite,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    # The package index stand-in (PEP 503 Simple API, as PyPI serves it).
    files = site / "ck-test-files"
    files.mkdir()
    (files / index_only.name).write_bytes(index_only.read_bytes())
    digest = hashlib.sha256(index_only.read_bytes()).hexdigest()
    project = site / "ck-test-index" / INDEX_ONLY
    project.mkdir(parents=True)
    (project / "index.html").write_text(
        f'<html><body><a href="../../ck-test-files/{index_only.name}#sha256={digest}">{index_only.name}</a>'
        "</body></html>"
    )

    # The Pyodide distribution stand-in: an entry in the site's lock whose wheel the site does not ship.
    dist = site / "ck-test-dist"
    dist.mkdir()
    (dist / dist_only.name).write_bytes(dist_only.read_bytes())
    lock_path = site / "extensions" / "concurrent-kernel" / "static" / "pyodide" / "pyodide-lock.json"
    lock = json.loads(lock_path.read_text())
    lock["packages"][DIST_ONLY] = {
        "name": DIST_ONLY, "version": "0.1.0", "file_name": dist_only.name, "install_dir": "site",
        "sha256": hashlib.sha256(dist_only.read_bytes()).hexdigest(), "package_type": "package",
        "imports": [DIST_ONLY.replace("-", "_")], "depends": [], "unvendored_tests": False,
    }
    lock_path.write_text(json.dumps(lock))
    _built[stock_piplite] = site
    return site
