"""The kernel starts from the build-time memory snapshot (ts/scripts/make_snapshot.mjs), or without it."""

from __future__ import annotations

import gzip
import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from lite import dump, new_notebook, open_lab, output_text

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

_TIMINGS = "return window.concurrentKernels.get(kernel.id).timings;"


def _background_fails(seen: list[str]) -> Callable[[Any], None]:
    """A route that fails the worker's background load (a fetch) and lets Python's synchronous one (an XHR) through,
    noting each request's resource type in SEEN."""

    def route(route: Any) -> None:
        seen.append(route.request.resource_type)
        if route.request.resource_type == "fetch":
            route.abort()  # what the test does next must not depend on the background load
        else:
            route.continue_()

    return route


@contextmanager
def _lab_with_routes(
    browser: Any, base_url: str, routes: dict[str, Callable[[Any], None]]
) -> Iterator[tuple[Any, list[str]]]:
    """A lab page whose requests (its workers' too) go through ROUTES, and the lines of its console."""
    context = browser.new_context(service_workers="block")  # so context.route sees the worker's requests
    for pattern, handler in routes.items():
        context.route(pattern, handler)
    logs: list[str] = []
    try:
        page = context.new_page()
        page.on("console", lambda msg: logs.append(msg.text))
        open_lab(page, base_url)
        yield page, logs
    finally:
        context.close()


def test_restored_kernel_has_its_files(page: Any, base_url: str) -> None:
    """A snapshot carries memory only: what reads installed files (lazy imports, metadata, jedi) must still work."""
    open_lab(page, base_url)
    nb = new_notebook(
        page,
        "snapshot-test.ipynb",
        [
            "import sys\nfresh = 'pygments.lexers.rust' not in sys.modules\nimport pygments.lexers.rust\n"
            "print(fresh, pygments.lexers.rust.RustLexer.name)",
            "import importlib.metadata\nimportlib.metadata.version('ipython')",
            "import sys\nsys.path.count(''), sys.executable",
            # The snapshot's objects are out of the cyclic GC's reach: the page's first collection walked them all.
            "import gc\ngc.get_freeze_count() > 10_000",
        ],
    )
    assert "snapshot" in nb.js(_TIMINGS), nb.js(_TIMINGS)
    out = nb.run_and_wait(0)
    assert "True Rust" in output_text(out), dump(out)
    out = nb.run_and_wait(1)
    assert out and out[0]["data"]["text/plain"].startswith("'9."), dump(out)
    out = nb.run_and_wait(2)
    assert out and out[0]["data"]["text/plain"] == "(1, '')", dump(out)
    out = nb.run_and_wait(3)
    assert out and out[0]["data"]["text/plain"] == "True", dump(out)
    # Completion goes through jedi, which reads the type stubs shipped in its package.
    reply = nb.js("return (await kernel.requestComplete({code: 'import jso', cursor_pos: 10})).content;")
    assert reply["status"] == "ok" and "json" in reply["matches"], reply


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_kernel_starts_without_a_usable_snapshot(browser: Any, base_url: str, damage: str) -> None:
    """The snapshot is an optimisation: without it the worker installs the wheels and says why."""
    served: list[str] = []

    def damaged(route: Any) -> None:
        served.append(route.request.url)
        if damage == "missing":
            route.fulfill(status=404, body="missing on purpose")
        else:  # inflates fine, then Pyodide refuses it (bad magic number) inside loadPyodide
            route.fulfill(status=200, body=gzip.compress(b"not a snapshot" * 4096))

    # .br, and .gz it falls back to
    with _lab_with_routes(browser, base_url, {"**/pyodide/ck-snapshot.bin.*": damaged}) as (page, logs):
        nb = new_notebook(page, "no-snapshot-test.ipynb", ["import IPython\n1+1"])
        out = nb.run_and_wait(0, 120)
        assert out and out[0]["data"]["text/plain"] == "2", dump(out)
        timings = nb.js(_TIMINGS)
        assert served, "the snapshot was never requested"
        assert "loadPackages" in timings and "snapshot" not in timings, timings
        assert any("snapshot not used" in line for line in logs), logs


def _snapshot_start_with_route(browser: Any, base_url: str, pattern: str, handler: Any, path: str) -> list[str]:
    """Run a first cell on a page whose requests for PATTERN go to HANDLER; the snapshot must still be used. Returns
    the page's console lines."""
    with _lab_with_routes(browser, base_url, {pattern: handler}) as (page, logs):
        nb = new_notebook(page, path, ["import IPython\n1+1"])
        out = nb.run_and_wait(0, 120)
        assert out and out[0]["data"]["text/plain"] == "2", dump(out)
        assert "snapshot" in nb.js(_TIMINGS), nb.js(_TIMINGS)
    return logs


def test_gzip_files_when_brotli_is_not_usable(browser: Any, base_url: str) -> None:
    """The memory and files come as brotli data, decoded in the worker; if that fails (here: the decoder cannot be
    fetched, and the memory is not brotli), the worker says so and takes the gzip files: the snapshot is still used."""
    logs = _snapshot_start_with_route(
        browser,
        base_url,
        "**/pyodide/brotli-dec.wasm.gz",
        lambda route: route.fulfill(status=404, body="missing on purpose"),
        "no-brotli-test.ipynb",
    )
    assert any("ck-snapshot.bin.br not used" in line for line in logs), logs
    assert any("ck-site-packages.bin.br not used" in line for line in logs), logs
    assert any("pyodide.asm.wasm.br not used" in line for line in logs), logs
    logs = _snapshot_start_with_route(
        browser,
        base_url,
        "**/pyodide/ck-snapshot.bin.br",
        lambda route: route.fulfill(status=200, body=b"not brotli" * 999),
        "bad-brotli-test.ipynb",
    )
    assert any("ck-snapshot.bin.br not used" in line for line in logs), logs


def test_next_notebook_gets_a_warmed_spare(page: Any, base_url: str) -> None:
    """Once the first kernel is quiet, the pool prepares a spare (snapshot restored, JIT warm-up run) for the next."""
    open_lab(page, base_url)
    first = new_notebook(page, "first-test.ipynb", ["1+1"])
    assert first.run_and_wait(0)[0]["data"]["text/plain"] == "2"
    page.wait_for_function("() => window.concurrentKernelPool.spareWarmed", timeout=120_000)
    second = new_notebook(page, "second-test.ipynb", ["1+1"])
    timings = second.js(_TIMINGS)
    assert timings["warmUpCells"] > 0 and timings["warmUp"] <= timings["init"], timings
    out = second.run_and_wait(0)
    assert out[0]["data"]["text/plain"] == "2" and out[0]["execution_count"] == 1, dump(out)


def test_later_files_come_when_an_import_needs_them(browser: Any, base_url: str) -> None:
    """The files a first result does not need load in the background, after the first cell; an import of one of
    their modules before they arrive fetches them at once; completions (jedi's stubs) wait for them."""
    requests: list[str] = []
    routes = {"**/pyodide/ck-site-packages-later.bin.gz": _background_fails(requests)}
    with _lab_with_routes(browser, base_url, routes) as (page, logs):
        nb = new_notebook(
            page,
            "later-files-test.ipynb",
            [
                "import sys\nfresh = 'pygments.lexers.rust' not in sys.modules\nimport pygments.lexers.rust\n"
                "print(fresh, pygments.lexers.rust.RustLexer.name)"
            ],
        )
        assert "snapshot" in nb.js(_TIMINGS), nb.js(_TIMINGS)
        out = nb.run_and_wait(0, 120)
        assert "True Rust" in output_text(out), dump(out)
        assert "xhr" in requests, requests
        assert any("importing pygments" in line and "fetching the later files" in line for line in logs), logs
        reply = nb.js("return (await kernel.requestComplete({code: 'import jso', cursor_pos: 10})).content;")
        assert reply["status"] == "ok" and "json" in reply["matches"], reply


LATER_BUNDLE = "ck-site-packages-later.bin.gz"

# A request that asks for input and, once answered, says whether a later file is on disk, imports a module of the
# later files, and says it again.
_ASK_THEN_IMPORT = """
const future = kernel.requestExecute({code: arg, allow_stdin: true});
const out = (window.__ckQuietOut = []);
future.onIOPub = msg => { if (msg.header.msg_type === 'stream') out.push(msg.content.text); };
window.__ckQuietAsked = new Promise(resolve => { future.onStdin = resolve; });
window.__ckQuietDone = future.done.then(reply => reply.content.status);
"""
_ANSWER = """
const asked = await window.__ckQuietAsked;
kernel.sendInputReply({status: 'ok', value: 'go'}, asked.header);
return [await window.__ckQuietDone, window.__ckQuietOut.join('')];
"""


def _a_later_file(site_dir: Path) -> str:
    """The path of a file in the later bundle, written only with all the others (not a RECORD file: those are on disk
    from the start, empty until opened)."""
    bundle = gzip.decompress((site_dir / "extensions/concurrent-kernel/static/pyodide" / LATER_BUNDLE).read_bytes())
    header = int.from_bytes(bundle[:4], "little")
    return next(path for path, _ in json.loads(bundle[4 : 4 + header]) if not path.endswith("/RECORD"))


def test_later_files_are_written_when_the_kernel_is_quiet(browser: Any, base_url: str, site_dir: Path) -> None:
    """The later files are fetched after the first cell but written (~6,000 files: a few hundred ms of the worker's
    thread) only once no request runs and no message has come or gone for a moment, so the next cells of a Run All
    do not wait for them. A request running when they arrive finds them unwritten, and an import that needs them
    then writes the copy that arrived (no second download); a quiet kernel writes them by itself."""
    later_file = _a_later_file(site_dir)
    check = f"import os\nLATER = {later_file!r}\nprint(os.path.exists(LATER))"
    # The later bundle's requests wait until the test lets them through: a kernel fetches it 3 s after it started
    # even when no cell has answered by then, so it could otherwise arrive before the first cell.
    held: list[Any] = []
    arrived: list[str] = []

    def release() -> None:
        while held:
            held.pop().continue_()

    routes = {f"**/pyodide/{LATER_BUNDLE}": lambda route: held.append(route)}
    with _lab_with_routes(browser, base_url, routes) as (page, logs):
        page.context.on("requestfinished", lambda r: arrived.append(r.resource_type) if LATER_BUNDLE in r.url else None)

        def wait_arrived(count: int) -> None:
            deadline = time.monotonic() + 60
            while len(arrived) < count and time.monotonic() < deadline:
                release()
                page.wait_for_timeout(100)
            assert len(arrived) >= count, arrived  # (a spare the pool made meanwhile fetches its own)

        busy = new_notebook(page, "later-busy-test.ipynb", [check])
        assert output_text(busy.run_and_wait(0)).strip() == "False"
        busy.js(
            _ASK_THEN_IMPORT,
            "input()\nprint(os.path.exists(LATER))\nimport pygments.lexers.rust\nprint(os.path.exists(LATER))",
        )
        wait_arrived(1)
        page.wait_for_timeout(1500)  # quiet, but a request runs: nothing is written
        assert busy.js(_ANSWER) == ["ok", "False\nTrue\n"]
        assert arrived == ["fetch"], arrived
        assert not [line for line in logs if "fetching the later files" in line], logs

        quiet = new_notebook(page, "later-quiet-test.ipynb", [check, "print(os.path.exists(LATER))"])
        assert output_text(quiet.run_and_wait(0)).strip() == "False"
        wait_arrived(2)
        page.wait_for_timeout(1500)
        assert output_text(quiet.run_and_wait(1)).strip() == "True"


def test_package_records_come_when_python_opens_one(browser: Any, base_url: str) -> None:
    """RECORD files come with the later files; one opened before they arrive (importlib.metadata.files, what
    %pip uninstall reads) has them fetched at once. A failed fetch is an OSError, and the next open tries again:
    never an empty RECORD, which would read as a package without files."""
    syncs: list[str] = []

    def first_sync_fails(route: Any) -> None:
        syncs.append(route.request.resource_type)
        if len(syncs) == 1:
            route.abort()
        else:
            route.continue_()

    routes = {
        "**/pyodide/ck-site-packages-later.bin.gz": _background_fails([]),
        "**/pyodide/ck-records.bin": first_sync_fails,
    }
    with _lab_with_routes(browser, base_url, routes) as (page, logs):
        files = "import importlib.metadata as md\ntry:\n    files = md.files('anyio')\nexcept OSError as e:\n"
        nb = new_notebook(
            page,
            "records-test.ipynb",
            [
                # No traceback: showing one would import modules of the later files, and write the records too.
                files + "    print('failed:', e)",
                files + "    raise\nprint(len(files) > 20, any(str(f) == 'anyio/__init__.py' for f in files))",
            ],
        )
        assert "snapshot" in nb.js(_TIMINGS), nb.js(_TIMINGS)
        out = nb.run_and_wait(0, 120)
        assert "failed: [Errno 29] I/O error" in output_text(out), dump(out)
        out = nb.run_and_wait(1)
        assert "True True" in output_text(out), dump(out)
        assert syncs == ["xhr", "xhr"], (syncs, [line for line in logs if "fetching" in line])
        assert any("RECORD opened: fetching the package records now" in line for line in logs), logs


def test_standard_library_comes_when_python_opens_it(browser: Any, base_url: str) -> None:
    """Behind a snapshot the standard library zip loads after the first result; a module of it that the snapshot did
    not import, or a traceback through one, has Python open the zip first: it is fetched then, synchronously."""
    requests: list[str] = []
    routes = {"**/pyodide/python_stdlib.zip": _background_fails(requests)}
    with _lab_with_routes(browser, base_url, routes) as (page, logs):
        nb = new_notebook(
            page,
            "stdlib-test.ipynb",
            [
                "import sys\nfresh = 'tomllib' not in sys.modules\n"
                "import tomllib\nprint(fresh, tomllib.loads('a = 1'))",
                "import json\njson.loads('{')",
            ],
        )
        assert "snapshot" in nb.js(_TIMINGS), nb.js(_TIMINGS)
        out = nb.run_and_wait(0, 120)
        assert "True {'a': 1}" in output_text(out), dump(out)
        assert requests.count("xhr") == 1, requests
        assert any("standard library zip: fetching it now" in line for line in logs), logs
        out = nb.run_and_wait(1)
        tb = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(out[0].get("traceback", []))) if out else ""
        # Source lines of the frames in json/: read from the zip (linecache through zipimport).
        assert "return _default_decoder.decode(s)" in tb, dump(out)


def test_a_first_cell_waits_for_nothing_loaded_later(page: Any, base_url: str) -> None:
    """Starting a kernel and running a first cell reads neither the later files nor the standard library zip (they
    load in the background after it): none of them is fetched synchronously."""
    logs: list[str] = []
    page.on("console", lambda msg: logs.append(msg.text))
    open_lab(page, base_url)
    nb = new_notebook(page, "first-cell-test.ipynb", ["print(2**20)"])
    assert "snapshot" in nb.js(_TIMINGS), nb.js(_TIMINGS)
    out = nb.run_and_wait(0)
    assert "1048576" in output_text(out), dump(out)
    fetched = ("fetching the later files", "library zip: fetching", "fetching the package records")
    assert not [line for line in logs if any(f in line for f in fetched)], logs
