"""The build addon that packs each JupyterLite app's start-up chunks (concurrent_kernel.lite_app_pack)."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from concurrent_kernel import lite_app_pack

CONFIG_UTILS = """async function main() {
  const bundle = document.createElement('script');
  bundle.src = preloader.href;
  document.head.appendChild(bundle);
}
"""
PAGE = """<html><head>
    <script id="jupyter-config-data" type="application/json">{}</script>
    <script>
      (async function () {
        await import('../config-utils.js');
      }.call(this));
    </script>
</head></html>
"""


def _chunk(name: str, ident: int) -> str:
    return (f'"use strict";(self.rspackChunk_{name}=self.rspackChunk_{name}||[]).push([[{ident}],{{}}]);\n'
            f"//# sourceMappingURL={ident}.js.map")


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "repl").mkdir()
    (tmp_path / "repl" / "index.html").write_text(PAGE)
    (tmp_path / "config-utils.js").write_text(CONFIG_UTILS)
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "1.a.js").write_text(_chunk("CORE", 1))
    (tmp_path / "build" / "2.b.js").write_text(_chunk("CORE", 2))
    (tmp_path / "build" / "notachunk.js").write_text("console.log('a worker script');")
    own = tmp_path / lite_app_pack.OWN_EXTENSION
    own.mkdir(parents=True)
    (own / "383.f00.js").write_text(_chunk("concurrent_kernel", 383))
    (own / "ck-lazy-debugger.d00.js").write_text(_chunk("concurrent_kernel", 777))
    (own / "remoteEntry.abc.js").write_text("var _JUPYTERLAB;")
    return tmp_path


def test_pack_holds_the_listed_chunks_and_the_kernels_own(site: Path) -> None:
    chunks = ["build/2.b.js", "build/1.a.js", "build/gone.c.js", "build/notachunk.js"]
    pack = lite_app_pack.pack_app(site, "repl", chunks)
    assert pack is not None and pack.parent == site / "build" and pack.name.startswith("ck-app-repl.")
    source = gzip.decompress(pack.read_bytes()).decode()
    # Listed order, missing and non-chunk files left out, this kernel's chunks added (not those it loads only when
    # needed: the debugger panel's), source map comments gone.
    assert source.index("push([[2]") < source.index("push([[1]") < source.index("push([[383]")
    assert "push([[777]" not in source
    assert "a worker script" not in source and "sourceMappingURL" not in source
    html = (site / "repl" / "index.html").read_text()
    assert f"'../build/{pack.name}'" in html
    # The loader runs each chunk as a script of its own (one large script made the app slower afterwards): it is
    # given the chunks' lengths, which cut the inflated pack exactly at the chunks' starts.
    [sizes] = re.findall(r"const sizes = (\[[\d, ]*\]);", html)
    data = gzip.decompress(pack.read_bytes())
    starts = [sum(json.loads(sizes)[:i]) for i in range(len(json.loads(sizes)))]
    assert sum(json.loads(sizes)) == len(data) and len(starts) == 3
    assert all(lite_app_pack._CHUNK_START.match(data[at:]) for at in starts)
    assert html.index(lite_app_pack.LOADER_MARK) < html.index("config-utils.js")
    utils = (site / "config-utils.js").read_text()
    assert "globalThis.ckConfigReady?.();\n  await globalThis.ckAppPack;\n  document.head.appendChild(bundle);" in utils
    assert "src: null," in html  # no ck-early.js in this site: nothing to start sooner


def test_loader_starts_the_kernel_worker_sooner_when_the_site_has_the_early_script(site: Path) -> None:
    (site / lite_app_pack.EARLY_SCRIPT).write_text("/* early start */")
    lite_app_pack.pack_app(site, "repl", ["build/1.a.js"])
    html = (site / "repl" / "index.html").read_text()
    assert 'src: "../extensions/concurrent-kernel/static/ck-early.js",' in html
    assert f"size >= {lite_app_pack.PROBE_BYTES}" in html and f"< {lite_app_pack.FAST_LINK}" in html


def test_packing_again_replaces_the_pack_and_the_loader(site: Path) -> None:
    first = lite_app_pack.pack_app(site, "repl", ["build/1.a.js"])
    second = lite_app_pack.pack_app(site, "repl", ["build/1.a.js", "build/2.b.js"])
    assert first is not None and second is not None and first != second
    assert not first.exists() and second.exists()
    html = (site / "repl" / "index.html").read_text()
    assert html.count(lite_app_pack.LOADER_MARK) == 1 and second.name in html
    assert (site / "config-utils.js").read_text().count("ckAppPack") == 1


def test_unexpected_config_utils_leaves_the_site_as_it_was(site: Path) -> None:
    (site / "config-utils.js").write_text("main();\n")
    assert lite_app_pack.pack_app(site, "repl", ["build/1.a.js"]) is None
    assert (site / "repl" / "index.html").read_text() == PAGE
    assert not list((site / "build").glob(lite_app_pack.PACK_GLOB))


def test_unexpected_page_leaves_the_site_as_it_was(site: Path) -> None:
    (site / "repl" / "index.html").write_text("<html><script src='app.js'></script></html>")
    assert lite_app_pack.pack_app(site, "repl", ["build/1.a.js"]) is None
    assert not list((site / "build").glob(lite_app_pack.PACK_GLOB))
    assert (site / "config-utils.js").read_text() == CONFIG_UTILS


def test_no_chunk_there_leaves_the_site_as_it_was(site: Path) -> None:
    for chunk in [*(site / "build").glob("*.js"), *(site / lite_app_pack.OWN_EXTENSION).glob("*.js")]:
        chunk.unlink()
    assert lite_app_pack.pack_app(site, "repl", ["build/1.a.js"]) is None
    assert (site / "repl" / "index.html").read_text() == PAGE
    assert (site / "config-utils.js").read_text() == CONFIG_UTILS


def test_recorded_lists_name_apps_and_site_files() -> None:
    data = json.loads(lite_app_pack.CHUNK_LIST.read_text())
    apps = lite_app_pack.chunk_lists()
    assert data["jupyterlite-core"] and {"repl", "lab", "notebooks"} <= set(apps)
    for chunks in apps.values():
        assert chunks
        assert all(c.endswith(".js") and not c.startswith(("/", lite_app_pack.OWN_EXTENSION)) for c in chunks)


def test_bad_list_file_packs_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "chunks.json"
    bad.write_text("{not json")
    assert lite_app_pack.chunk_lists(bad) == {}


def test_loader_fetches_the_apps_start_up_json_once_for_the_page(site: Path) -> None:
    """The settings schemas and translations, listed whether the build wrote them yet or not (other
    addons' post_build may run after this one); the page's own requests for them are answered with copies."""
    lite_app_pack.pack_app(site, "repl", ["build/1.a.js"])
    html = (site / "repl" / "index.html").read_text()
    [listed] = re.findall(r"const shared = new Map\((\[[^]]*\])", html)
    assert json.loads(listed) == list(lite_app_pack.SHARED_FILES)
    assert "build/schemas/all.json" in listed and "api/contents/all.json" not in listed
    assert "globalThis.fetch = function (input, init)" in html
