#!/usr/bin/env python3
"""Serve the built JupyterLite site (lite-site/_output) on 127.0.0.1.

By default the responses carry COOP/COEP headers so the page is cross-origin
isolated (SharedArrayBuffer: interrupt buffer and stdin via Atomics). Prints the
URL, then serves until interrupted.

    python3 scripts/serve-site.py [--port 8765] [--dir lite-site/_output] [--no-isolation]
                                  [--mbit 40 --delay-ms 20]

--mbit/--delay-ms throttle what is served (one bandwidth cap shared by every connection, a delay before each
response), so a page and its workers load as over a slow link; bench/browser_bench.py uses the same server.
--etag sends an ETag on every file and answers a matching If-None-Match with 304 (If-Modified-Since is answered
either way), as hosts that make every file revalidate do (with the default `Cache-Control: no-cache`).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import stat
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ROOT / "lite-site" / "_output"

EXTRA_TYPES = {
    ".wasm": "application/wasm",
    ".mjs": "text/javascript",
    ".js": "text/javascript",
    ".json": "application/json",
    ".whl": "application/zip",
    ".ipynb": "application/json",
    ".gz": "application/gzip",  # served as is: the kernel's worker inflates its snapshot files itself
}


class Throttle:
    """A link shared by every connection: ``mbit`` megabits per second, ``delay_ms`` before each response.

    Each chunk reserves the next free slot on the link, so parallel downloads share the bandwidth as they would
    on one real connection to a host (workers' fetches included, since they reach the same server).
    """

    CHUNK = 16 * 1024

    def __init__(self, mbit: float = 0.0, delay_ms: float = 0.0) -> None:
        self.bytes_per_s = mbit * 1e6 / 8 if mbit > 0 else 0.0
        self.delay_s = delay_ms / 1000
        self._lock = threading.Lock()
        self._free_at = 0.0

    def wait_link(self, nbytes: int) -> None:
        if not self.bytes_per_s:
            return
        with self._lock:
            start = max(time.perf_counter(), self._free_at)
            self._free_at = start + nbytes / self.bytes_per_s
            until = self._free_at
        pause = until - time.perf_counter()
        if pause > 0:
            time.sleep(pause)


class Served:
    """One response: path, status, body bytes, start and end (time.time())."""

    def __init__(self, path: str, start: float) -> None:
        self.path = path
        self.status = 0
        self.nbytes = 0
        self.start = start
        self.end = 0.0


class ServeLog:
    """What a server sent (for the benchmark's byte counts and timelines)."""

    def __init__(self) -> None:
        self.entries: list[Served] = []
        self.lock = threading.Lock()
        self.total = 0  # body bytes sent so far, all responses

    def sent(self, nbytes: int) -> None:
        with self.lock:
            self.total += nbytes

    def since(self, t0: float) -> list[Served]:
        with self.lock:
            return [e for e in self.entries if e.start >= t0]


class SiteHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with isolation headers and quiet logging."""

    isolation = True
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **EXTRA_TYPES}
    throttle: Throttle | None = None
    served: ServeLog | None = None
    #: "no-cache" makes a browser revalidate everything (a rebuilt site is never stale while developing); None
    #: sends no Cache-Control, like a plain static host (Last-Modified only: the browser's heuristics decide).
    cache_control: str | None = "no-cache"
    #: Send an ETag (mtime and size, as nginx does) and answer a matching If-None-Match with 304.
    etag: bool = False
    _entry: Served | None = None
    _etag: str | None = None

    def send_head(self):  # type: ignore[no-untyped-def]
        if self.throttle and self.throttle.delay_s:
            time.sleep(self.throttle.delay_s)  # the request's round trip
        self._entry = Served(self.path.split("?")[0], time.time())
        if self.served is not None:
            with self.served.lock:
                self.served.entries.append(self._entry)
        self._etag = None
        if self.etag and self._not_modified():
            self._entry.end = time.time()
            return None
        return super().send_head()

    def _not_modified(self) -> bool:
        """Note the file's ETag; answer 304 (True) when the request's If-None-Match names it."""
        path = self.translate_path(self.path)
        if os.path.isdir(path) and self.path.split("?")[0].endswith("/"):
            path = os.path.join(path, "index.html")
        try:
            st = os.stat(path)
        except OSError:
            return False
        if not stat.S_ISREG(st.st_mode):
            return False
        self._etag = f'"{st.st_mtime_ns:x}-{st.st_size:x}"'
        wanted = [t.strip() for t in self.headers.get("If-None-Match", "").split(",")]
        if self._etag not in wanted and "*" not in wanted:
            return False
        self.send_response(http.HTTPStatus.NOT_MODIFIED)
        self.end_headers()
        return True

    def send_response(self, code: int, message: str | None = None) -> None:
        if self._entry is not None:
            self._entry.status = code
        super().send_response(code, message)

    def copyfile(self, source, outputfile) -> None:  # type: ignore[no-untyped-def]
        chunk = Throttle.CHUNK
        while data := source.read(chunk):
            if self.throttle:
                self.throttle.wait_link(len(data))
            outputfile.write(data)
            if self._entry is not None:
                self._entry.nbytes += len(data)
            if self.served is not None:
                self.served.sent(len(data))
        if self._entry is not None:
            self._entry.end = time.time()

    def end_headers(self) -> None:
        if self.isolation:
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
            self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        if self.cache_control:
            self.send_header("Cache-Control", self.cache_control)
        if self._etag:
            self.send_header("ETag", self._etag)
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: object, client_address: object) -> None:
        # A page closed during a download (e.g. a test's browser context) is not a server error.
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


def make_server(
    directory: Path,
    port: int = 0,
    isolation: bool = True,
    throttle: Throttle | None = None,
    served: ServeLog | None = None,
    cache_control: str | None = "no-cache",
    etag: bool = False,
) -> Server:
    """Create (not start) a server for DIRECTORY on 127.0.0.1:PORT (0 = any free port)."""
    if not (directory / "index.html").exists():
        raise FileNotFoundError(f"{directory} has no index.html: run `npm run lite:build` first")
    handler = type(
        "Handler",
        (SiteHandler,),
        {
            "isolation": isolation,
            "throttle": throttle,
            "served": served,
            "cache_control": cache_control,
            "etag": etag,
        },
    )
    return Server(("127.0.0.1", port), functools.partial(handler, directory=str(directory)))


def serve_in_thread(
    directory: Path,
    port: int = 0,
    isolation: bool = True,
    throttle: Throttle | None = None,
    served: ServeLog | None = None,
    cache_control: str | None = "no-cache",
    etag: bool = False,
) -> tuple[Server, str]:
    """Start a server in a daemon thread; return it and its base URL."""
    server = make_server(directory, port, isolation, throttle, served, cache_control, etag)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--no-isolation", action="store_true", help="omit COOP/COEP headers")
    parser.add_argument("--mbit", type=float, default=0.0, help="bandwidth cap shared by all requests (0: none)")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="delay before each response")
    parser.add_argument("--etag", action="store_true", help="send ETags and answer If-None-Match with 304")
    args = parser.parse_args(argv)
    throttle = Throttle(args.mbit, args.delay_ms) if args.mbit or args.delay_ms else None
    server = make_server(args.dir, args.port, not args.no_isolation, throttle, etag=args.etag)
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    print(f"Serving {args.dir} at {url}", flush=True)
    if args.dir.resolve() == DEFAULT_DIR.resolve():
        print(f"  notebook: {url}lab/index.html?path=concurrency-demo.ipynb", flush=True)
        print(f"  embed:    {url}embed.html", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
