"""`jupyter lite build` addon: the site's piplite wheels, for sites built without jupyterlite-pyodide-kernel.

Site authors ship wheels for the stock kernel's `%pip` with a `pypi/` folder beside `jupyter_lite_config.json` or
`{"PipliteAddon": {"piplite_urls": [...]}}` in it; that build addon belongs to jupyterlite-pyodide-kernel. When it
is installed, it indexes them and this kernel reads its index. When it is not (a site with only this kernel),
this addon reads the same settings, copies the wheels into the site's `pypi/`, writes the same Warehouse-like
`pypi/all.json` and points the kernel at it, so the author's build settings work unchanged.
"""

from __future__ import annotations

import email.parser
import hashlib
import json
import re
import shutil
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jupyterlite_core.addons.base import BaseAddon

PLUGIN_ID = "concurrent-kernel:plugin"
WHEEL_DIR = "pypi"
INDEX = "all.json"


class PipliteWheelsAddon(BaseAddon):
    """Index the site's wheels into pypi/all.json when jupyterlite-pyodide-kernel's piplite addon is absent."""

    __all__ = ["post_build"]

    def post_build(self, manager: Any) -> Iterator[dict[str, Any]]:
        if any(type(addon).__name__ == "PipliteAddon" for addon in manager._addons.values()):
            return  # jupyterlite-pyodide-kernel's addon indexes them; the kernel reads its pipliteUrls
        sources = self._sources(manager)
        if not sources:
            return
        out = manager.output_dir / WHEEL_DIR
        lite_json = manager.output_dir / "jupyter-lite.json"
        yield self.task(
            name="index",
            doc=f"copy and index {len(sources)} wheel source(s) into {out / INDEX}",
            actions=[(self._index, [sources, out, lite_json])],
            file_dep=[p for p in map(Path, sources) if p.exists() and p.is_file()] + [lite_json],
            targets=[out / INDEX],
        )

    def _sources(self, manager: Any) -> list[str]:
        """The lite dir's pypi/ wheels, then PipliteAddon.piplite_urls (files, folders or URLs)."""
        local = sorted(str(p) for p in (manager.lite_dir / WHEEL_DIR).glob("*.whl"))
        urls = list(self.config.get("PipliteAddon", {}).get("piplite_urls", []))
        resolved = [u if urlsplit(u).scheme in ("http", "https") else str((manager.lite_dir / u).resolve())
                    for u in urls]
        return local + resolved

    def _index(self, sources: list[str], out: Path, lite_json: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        wheels: list[Path] = []
        for source in sources:
            if urlsplit(source).scheme in ("http", "https"):
                dest = out / Path(urlsplit(source).path).name
                if not dest.exists():
                    with urllib.request.urlopen(source) as response:
                        dest.write_bytes(response.read())
                wheels.append(dest)
                continue
            path = Path(source)
            for wheel in sorted(path.glob("*.whl")) if path.is_dir() else [path]:
                if not wheel.exists():
                    raise FileNotFoundError(f"piplite_urls: {wheel} does not exist")
                dest = out / wheel.name
                if wheel.resolve() != dest.resolve():
                    shutil.copy2(wheel, dest)
                wheels.append(dest)
        index: dict[str, Any] = {}
        for wheel in wheels:
            name, version, release = _release(wheel)
            index.setdefault(name, {"releases": {}})["releases"].setdefault(version, []).append(release)
        body = json.dumps(index, indent=1, sort_keys=True)
        (out / INDEX).write_text(body, encoding="utf-8")
        digest = hashlib.sha256(body.encode()).hexdigest()
        config = json.loads(lite_json.read_text(encoding="utf-8"))
        data = config.setdefault("jupyter-config-data", {})
        settings = data.setdefault("litePluginSettings", {}).setdefault(PLUGIN_ID, {})
        settings["pipliteUrls"] = [f"./{WHEEL_DIR}/{INDEX}?sha256={digest}"]
        lite_json.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def _release(wheel: Path) -> tuple[str, str, dict[str, Any]]:
    """A wheel's (normalised name, version, JSON API file entry), from its METADATA."""
    with zipfile.ZipFile(wheel) as zf:
        meta_name = next(n for n in zf.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n))
        meta = email.parser.Parser().parsestr(zf.read(meta_name).decode("utf-8"))
    data = wheel.read_bytes()
    release = {
        "filename": wheel.name,
        "url": f"./{wheel.name}",
        "digests": {"sha256": hashlib.sha256(data).hexdigest(), "md5": hashlib.md5(data).hexdigest()},
        "size": len(data),
        "packagetype": "bdist_wheel",
        "python_version": "py3",
        "requires_python": meta.get("Requires-Python"),
        "yanked": False,
        "yanked_reason": None,
    }
    return re.sub(r"[-_.]+", "-", meta["Name"]).lower(), meta["Version"], release
