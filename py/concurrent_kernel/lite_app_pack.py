"""`jupyter lite build` addon: each app's start-up JavaScript in one gzipped file.

A JupyterLite page loads ~60 chunks (5.8 MB for the REPL) before the app runs, and a host that does not compress
sends them as they are: at 40 Mbit/s that is more than a second of a reader's wait, a third of the bytes to a first
result. This addon packs the chunks an app loads at start-up (recorded by `scripts/record-app-chunks.py` in
`lite_app_chunks.json`) into `build/ck-app-<app>.<hash>.js.gz` (1.5 MB) and adds a loader to the app's page: it
fetches the pack while `config-utils.js` reads the site's settings, inflates it (`DecompressionStream`) and runs it
before the app's bundle, so the bundle's runtime finds those chunks already pushed and asks for none of them. Any
failure (no pack, no `DecompressionStream`, a host that inflated it already is handled) leaves the page loading
its chunks one by one, as without this addon; a chunk missing from a stale list is simply loaded on its own.

Once the pack has downloaded, the loader also fetches (once per page) the site's static JSON that the app reads at
start-up (`SHARED_FILES`: settings schemas and translations) and answers the app's own requests
for them with copies. The app asks for its schemas a dozen times, one after another as its plugins activate: from a host
that makes every file revalidate (`Cache-Control: no-cache`, ETag) each of those is a round trip on a reload's
critical path. Each file is still fetched (revalidated) once per page load, so a rebuilt site is never stale.

The pack's first bytes also time the link: over a slow one the loader runs the kernel's early start
(`ck-early.js`, ts/src/early.ts) as soon as the page's config is merged, so the worker's downloads share the link
from the start instead of waiting for the app's remoteEntry scripts.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jupyterlite_core.addons.base import BaseAddon

CHUNK_LIST = Path(__file__).with_name("lite_app_chunks.json")
PACK_GLOB = "ck-app-*.js.gz"
OWN_EXTENSION = "extensions/concurrent-kernel/static"
LOADER_MARK = "data-ck-app-pack"
# In config-utils.js's main(): the config is merged here, and the app's bundle added once the pack has run.
BUNDLE_ANCHOR = "  document.head.appendChild(bundle);\n"
BUNDLE_GATED = "  globalThis.ckConfigReady?.();\n  await globalThis.ckAppPack;\n" + BUNDLE_ANCHOR
EARLY_SCRIPT = f"{OWN_EXTENSION}/ck-early.js"
# The extension's chunks loaded only when needed (the debugger panel, ts/src/debugger.ts): never in a pack.
LAZY_PREFIX = "ck-lazy-"
# Link speed test on the pack's first bytes: as ts/src/early.ts FAST_LINK (bytes/s), on its first 256 KB.
FAST_LINK = 8_000_000
PROBE_BYTES = 256 * 1024
# The site's static JSON the app reads at start-up, asked for whether there or not (JupyterLite 0.8's settings and
# translations; a 404 is kept for the page too). Not the contents listing (api/contents/all.json, read once): with it
# here, the stock kernel's first file access through its synchronous channel to the page failed ("Bad control
# character in string literal in JSON", a Pyodide fatal error) in 2 of 2 full runs of test_page_load (0 of 3 alone).
SHARED_FILES = (
    "build/schemas/all.json",
    "build/schemas/all_federated.json",
    "api/translations/all.json",
    "api/translations/en.json",
)
_CHUNK_START = re.compile(rb'^(?:"use strict";)?\s*\(self\.(?:rspack|webpack)Chunk\w*\s*=')
_CONFIG_IMPORT = re.compile(r"<script>\s*\(async function \(\) \{")

_LOADER = """<script {mark}>
      // concurrent-kernel: the app's start-up chunks in one gzipped file (concurrent_kernel/lite_app_pack.py).
      (() => {{
        // The site's static JSON read at start-up: fetched once per page, each of the app's requests answered with a
        // copy (of a response never read itself).
        const shared = new Map({shared}.map((path) => [new URL('../' + path, location.href).href, null]));
        const fetchOnce = globalThis.fetch;
        const keep = (url) => {{
          let kept = shared.get(url);
          if (!kept) {{
            kept = fetchOnce(url);
            shared.set(url, kept);
            kept.catch(() => shared.set(url, null)); // a network failure: asked again
          }}
          return kept;
        }};
        globalThis.fetch = function (input, init) {{
          const url = typeof input === 'string' ? new URL(input, location.href).href : null;
          const plain = !init || ((init.method ?? 'GET').toUpperCase() === 'GET' && !init.body && !init.signal);
          if (url && plain && shared.has(url)) return keep(url).then((r) => r.clone());
          return fetchOnce.apply(globalThis, arguments);
        }};
        // Once the pack has downloaded (the app reads them only after running it): not beside its first bytes, which
        // time the link, and not in the few connections a host gets while the page's scripts download.
        let prefetched = false;
        const prefetchShared = () => {{
          if (!prefetched) {{
            prefetched = true;
            shared.forEach((kept, url) => kept || keep(url));
          }}
        }};
        const early = {{ src: {early}, slow: null, configured: false, started: false }};
        // Over a slow link the kernel's worker starts as soon as the page's config is merged (ck-early.js).
        const startEarly = () => {{
          if (early.src && early.slow && early.configured && !early.started) {{
            early.started = true;
            globalThis.__concurrentKernelSlowLink = true; // SLOW_LINK_KEY in ts/src/spare.ts, read by early.ts
            const script = document.createElement('script');
            script.src = early.src;
            document.head.appendChild(script);
          }}
        }};
        globalThis.ckConfigReady = () => {{
          early.configured = true;
          startEarly();
        }};
        globalThis.ckAppPack = (async (src) => {{
          try {{
            const response = await fetch(src);
            if (!response.ok) return false;
            const reader = response.body.getReader();
            const chunks = [];
            const start = performance.now();
            let size = 0;
            for (;;) {{
              const {{ done, value }} = await reader.read();
              if (done) {{
                prefetchShared();
                break;
              }}
              chunks.push(value);
              size += value.byteLength;
              if (early.slow === null && size >= {probe}) {{
                early.slow = (size / Math.max(performance.now() - start, 1)) * 1000 < {fast_link};
                startEarly();
              }}
            }}
            let bytes = await new Blob(chunks).arrayBuffer();
            const head = new Uint8Array(bytes, 0, 2);
            if (head[0] === 0x1f && head[1] === 0x8b) {{
              const inflated = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
              bytes = await new Response(inflated).arrayBuffer();
            }}
            // One script per chunk, as the chunks were, each from its own blob URL: as one 6 MB script, or as inline
            // scripts, the app ran slower afterwards (a new notebook's first result ~30-40 ms later). In any order:
            // chunks only register their modules, and the app's bundle starts once all have run.
            const sizes = {sizes};
            let at = 0;
            const parts = sizes.reduce((a, b) => a + b, 0) === bytes.byteLength
              ? sizes.map((size) => new Uint8Array(bytes, (at += size) - size, size))
              : [bytes];
            await Promise.all(parts.map((part) => new Promise((done) => {{
              const script = document.createElement('script');
              script.src = URL.createObjectURL(new Blob([part], {{ type: 'text/javascript' }}));
              script.onload = script.onerror = () => {{
                URL.revokeObjectURL(script.src);
                done();
              }};
              document.head.appendChild(script);
            }})));
            return true;
          }} catch (error) {{
            console.warn('[concurrent-kernel] app chunks load one by one:', error);
            return false;
          }} finally {{
            prefetchShared(); // a pack that failed: they are still asked for once
          }}
        }})('../build/{pack}');
      }})();
    </script>
    """


def is_chunk(path: Path) -> bool:
    """A webpack/rspack JSONP chunk: pushing it before its runtime starts is how the runtime expects it."""
    try:
        with path.open("rb") as f:
            return bool(_CHUNK_START.match(f.read(200)))
    except OSError:
        return False


def chunk_lists(path: Path = CHUNK_LIST) -> dict[str, list[str]]:
    try:
        return dict(json.loads(path.read_text())["apps"])
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def pack_app(site: Path, app: str, chunks: list[str]) -> Path | None:
    """Write the app's pack and its page's loader; None (nothing written) when the page or config-utils.js is not
    as expected, or none of the chunks is there."""
    page = site / app / "index.html"
    config_utils = site / "config-utils.js"
    if not page.is_file() or not config_utils.is_file():
        return None
    html = re.sub(rf"<script {LOADER_MARK}>.*?</script>\s*", "", page.read_text(), flags=re.S)
    found = _CONFIG_IMPORT.search(html)
    utils = config_utils.read_text()
    if not found or (BUNDLE_GATED not in utils and BUNDLE_ANCHOR not in utils):
        return None
    own = sorted(p.relative_to(site).as_posix() for p in (site / OWN_EXTENSION).glob("*.js")
                 if is_chunk(p) and not p.name.startswith(LAZY_PREFIX))
    files = [site / c for c in dict.fromkeys([*chunks, *own]) if is_chunk(site / c)]
    if not files:
        return None
    parts = [_strip_source_map(f.read_bytes()) + b"\n;\n" for f in files]
    packed = gzip.compress(b"".join(parts), 9, mtime=0)
    for old in (site / "build").glob(f"ck-app-{app}.*.js.gz"):
        old.unlink()
    pack = site / "build" / f"ck-app-{app}.{hashlib.sha256(packed).hexdigest()[:12]}.js.gz"
    pack.write_bytes(packed)
    if BUNDLE_GATED not in utils:
        config_utils.write_text(utils.replace(BUNDLE_ANCHOR, BUNDLE_GATED, 1))
    early = json.dumps(f"../{EARLY_SCRIPT}") if (site / EARLY_SCRIPT).is_file() else "null"
    sizes = json.dumps([len(part) for part in parts])
    shared = json.dumps(SHARED_FILES)  # not all written yet: other addons' post_build may run after this one
    loader = _LOADER.format(
        mark=LOADER_MARK,
        pack=pack.name,
        early=early,
        probe=PROBE_BYTES,
        fast_link=FAST_LINK,
        sizes=sizes,
        shared=shared,
    )
    page.write_text(html[: found.start()] + loader + html[found.start() :])
    return pack


def _strip_source_map(code: bytes) -> bytes:
    return re.sub(rb"\n//# sourceMappingURL=\S+\s*$", b"\n", code)


class AppPackAddon(BaseAddon):
    """Pack each app's start-up chunks so that a host without compression sends a quarter of the bytes."""

    __all__ = ["post_build"]

    def post_build(self, manager: Any) -> Iterator[dict[str, Any]]:
        for app, chunks in chunk_lists().items():
            if (manager.output_dir / app / "index.html").is_file():
                yield self.task(
                    name=f"pack:{app}",
                    doc=f"pack the start-up chunks of {app}/ into one gzipped file",
                    actions=[(self._pack, [manager.output_dir, app, chunks])],
                    uptodate=[False],  # the pages it edits are written again by every build
                )

    def _pack(self, site: Path, app: str, chunks: list[str]) -> None:
        pack = pack_app(site, app, chunks)
        if pack is None:
            self.log.warning(f"[concurrent-kernel] {app}/: page not as expected, its chunks load one by one")
        else:
            self.log.info(f"[concurrent-kernel] {app}/: start-up chunks in {pack.name} ({pack.stat().st_size} B)")
