"""Record which JavaScript chunks each JupyterLite app of a built site loads before it is in use.

The site build packs those chunks into one gzipped file per app (`concurrent_kernel.lite_app_pack`), so a host
that does not compress sends 1.6 MB instead of 6.4 MB of app JavaScript. Which chunks an app loads at start-up is
decided by its bundle's runtime; this script asks a real browser. Re-run it when jupyterlite-core or
jupyterlab_widgets change (chunk names carry content hashes: a stale list only makes the pack smaller, pages still
load every chunk they need):

    .venv/bin/python scripts/record-app-chunks.py lite-site/_output
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import shutil
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "py"))
sys.path.insert(0, str(ROOT / "tests" / "browser"))

from concurrent_kernel.lite_app_pack import CHUNK_LIST, OWN_EXTENSION, PACK_GLOB, is_chunk  # noqa: E402


def _scenarios(url: str) -> dict[str, tuple[str, Any]]:
    from lite import new_notebook

    def repl(page: Any) -> None:
        page.locator(".jp-OutputArea-output", has_text="42").first.wait_for(timeout=120_000)

    def lab(page: Any) -> None:
        page.wait_for_function("() => window.jupyterapp !== undefined", timeout=60_000)
        nb = new_notebook(page, "record.ipynb", ["6*7"])
        nb.run(0)
        nb.wait_done(0)

    def cells(page: Any) -> None:
        page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=60_000)

    def listing(page: Any) -> None:
        page.locator(".jp-DirListing-item").first.wait_for(timeout=60_000)

    query = urllib.parse.urlencode({"kernel": "concurrent", "code": "print(6*7)", "execute": "1"})
    return {
        "repl": (f"{url}repl/index.html?{query}", repl),
        "lab": (f"{url}lab/index.html", lab),
        "notebooks": (f"{url}notebooks/index.html?path=basics.ipynb", cells),
        "tree": (f"{url}tree/index.html", listing),
    }


def record(site: Path, quiet_s: float = 2.0) -> dict[str, list[str]]:
    """Per app, the chunk files (site-relative) requested until the page was in use and then quiet."""
    from playwright.sync_api import sync_playwright

    import conftest

    serve = conftest.serve_module()
    found: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "site"
        # Without the packs, so that the page asks for each chunk.
        shutil.copytree(site, copy, ignore=shutil.ignore_patterns(PACK_GLOB), symlinks=True)
        server, url = serve.serve_in_thread(copy, 0, True, None)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=str(conftest.CHROMIUM), args=conftest.CHROMIUM_ARGS)
                for app, (page_url, ready) in _scenarios(url).items():
                    context = browser.new_context()
                    seen: list[str] = []
                    last = [time.monotonic()]

                    def on_request(request: Any, seen: list[str] = seen, last: list[float] = last) -> None:
                        path = urllib.parse.urlsplit(request.url).path.removeprefix(urllib.parse.urlsplit(url).path)
                        # (this kernel's own chunks are packed whatever their names: they change with every build)
                        if path.endswith(".js") and path not in seen and not path.startswith(OWN_EXTENSION) \
                                and is_chunk(copy / path):
                            seen.append(path)
                            last[0] = time.monotonic()

                    context.on("request", on_request)
                    page = context.new_page()
                    page.goto(page_url)
                    ready(page)
                    while time.monotonic() - last[0] < quiet_s:
                        page.wait_for_timeout(200)
                    context.close()
                    found[app] = seen
                    print(f"[record] {app}: {len(seen)} chunks, "
                          f"{sum((copy / s).stat().st_size for s in seen) / 1e6:.2f} MB")
                browser.close()
        finally:
            server.shutdown()
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("site", type=Path, help="a site built by scripts/build-site.sh")
    parser.add_argument("--out", type=Path, default=CHUNK_LIST)
    args = parser.parse_args(argv)
    apps = record(args.site.resolve())
    data = {
        "about": "written by scripts/record-app-chunks.py: chunks each app loads at start-up, packed at build time",
        "jupyterlite-core": importlib.metadata.version("jupyterlite-core"),
        "apps": apps,
    }
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    print(f"[record] wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
