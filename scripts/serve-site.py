#!/usr/bin/env python3
"""Serve the built JupyterLite site (lite-site/_output) on 127.0.0.1.

By default the responses carry COOP/COEP headers so the page is cross-origin
isolated (SharedArrayBuffer: interrupt buffer and stdin via Atomics). Prints the
URL, then serves until interrupted.

    python3 scripts/serve-site.py [--port 8765] [--dir lite-site/_output] [--no-isolation]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import sys
import threading
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


class SiteHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with isolation headers and quiet logging."""

    isolation = True
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **EXTRA_TYPES}

    def end_headers(self) -> None:
        if self.isolation:
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
            self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("Cache-Control", "no-cache")
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


def make_server(directory: Path, port: int = 0, isolation: bool = True) -> Server:
    """Create (not start) a server for DIRECTORY on 127.0.0.1:PORT (0 = any free port)."""
    if not (directory / "index.html").exists():
        raise FileNotFoundError(f"{directory} has no index.html: run `npm run lite:build` first")
    handler = type("Handler", (SiteHandler,), {"isolation": isolation})
    return Server(("127.0.0.1", port), functools.partial(handler, directory=str(directory)))


def serve_in_thread(directory: Path, port: int = 0, isolation: bool = True) -> tuple[Server, str]:
    """Start a server in a daemon thread; return it and its base URL."""
    server = make_server(directory, port, isolation)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--no-isolation", action="store_true", help="omit COOP/COEP headers")
    args = parser.parse_args(argv)
    server = make_server(args.dir, args.port, not args.no_isolation)
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    print(f"Serving {args.dir} at {url}", flush=True)
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
