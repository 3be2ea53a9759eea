"""A kernel client for ipykernel's own tests that talks to the browser kernel through a JupyterLite page.

ipykernel's tests/test_debugger.py (from its 7.4 sdist) import `TIMEOUT`, `get_reply`, `get_replies` and
`new_kernel` from their `utils`; this module is that `utils` when tests/browser/test_debugger_ipykernel.py runs
them. `new_kernel()` starts a kernel in a JupyterLite lab page (headless Chromium, the site at CK_RELAY_BASE_URL)
with the app's own service manager, and the client relays what the tests send: a request goes out through the
page's kernel connection (`requestDebug`, `requestExecute`, `requestKernelInfo`, as JupyterLab sends them) and every
message the page receives from the kernel comes back, its parent's id mapped back to the id the test made.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from queue import Empty
from typing import Any

from jupyter_client.session import Session

TIMEOUT = 60

_CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]

_START = """
async (name) => {
  const app = window.jupyterapp;
  await app.started; await app.restored;
  await app.serviceManager.kernelspecs.ready;
  const kernel = await app.serviceManager.kernels.startNew({name});
  for (let i = 0; i < 600 && kernel.connectionStatus !== 'connected'; i++) {
    await new Promise(r => setTimeout(r, 50));
  }
  const rec = {kernel, received: []};
  kernel.anyMessage.connect((_, args) => {
    if (args.direction === 'recv') {
      const m = args.msg;
      rec.received.push({channel: m.channel, header: m.header, parent_header: m.parent_header,
                         metadata: m.metadata, content: m.content});
    }
  });
  await kernel.info;
  window.__relay = window.__relay || {};
  window.__relay[kernel.id] = rec;
  return kernel.id;
}
"""

_SEND = """
({id, channel, msgType, content}) => {
  const kernel = window.__relay[id].kernel;
  let future;
  if (msgType === 'debug_request') {
    future = kernel.requestDebug(content);
  } else if (msgType === 'execute_request') {
    future = kernel.requestExecute(content);
  } else if (msgType === 'kernel_info_request') {
    future = kernel.requestKernelInfo();
    return null;  // a promise, not a future: its id is the reply's parent id, seen when it arrives
  } else {
    throw new Error('the relay does not send ' + msgType);
  }
  future.done.catch(() => undefined);
  return future.msg.header.msg_id;
}
"""

_RECEIVED = "({id, start}) => window.__relay[id].received.slice(start)"


class _Page:
    """One Chromium page with the lab app open, shared by the kernels of a test run."""

    _instance: _Page | None = None

    def __init__(self) -> None:
        from playwright.sync_api import sync_playwright

        url = os.environ["CK_RELAY_BASE_URL"]
        self._playwright = sync_playwright().start()
        self.browser = self._playwright.chromium.launch(executable_path="/usr/bin/chromium", args=_CHROMIUM_ARGS)
        self.page = self.browser.new_page()
        self.page.set_default_timeout(120_000)
        self.page.goto(url + "lab/index.html")
        self.page.wait_for_function("() => window.jupyterapp !== undefined", timeout=120_000)

    @classmethod
    def get(cls) -> _Page:
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance


class _Channel:
    def __init__(self, client: PageKernelClient, name: str) -> None:
        self._client = client
        self._name = name

    def send(self, msg: dict[str, Any]) -> None:
        self._client.send(self._name, msg)


class PageKernelClient:
    """What ipykernel's tests use of jupyter_client's BlockingKernelClient, relayed through the page."""

    def __init__(self, page: _Page, kernel_id: str) -> None:
        self._page = page.page
        self.kernel_id = kernel_id
        self.session = Session(key=b"", username="relay")
        self.control_channel = _Channel(self, "control")
        self.shell_channel = _Channel(self, "shell")
        self._ids: dict[str, str] = {}  # the page's msg_id -> the test's
        self._queues: dict[str, list[dict[str, Any]]] = {"shell": [], "control": [], "iopub": [], "stdin": []}
        self._seen = 0
        self._pending_kernel_info: list[str] = []

    # ------------------------------------------------------------ sending

    def send(self, channel: str, msg: dict[str, Any]) -> str:
        test_id = msg["header"]["msg_id"]
        page_id = self._page.evaluate(_SEND, {"id": self.kernel_id, "channel": channel,
                                              "msgType": msg["header"]["msg_type"], "content": msg["content"]})
        if page_id is None:
            self._pending_kernel_info.append(test_id)
        else:
            self._ids[page_id] = test_id
        return test_id

    def execute(self, code: str, **content: Any) -> str:
        msg = self.session.msg("execute_request", {"code": code, "silent": False, "store_history": True,
                                                   "user_expressions": {}, "allow_stdin": False, **content})
        return self.send("shell", msg)

    def kernel_info(self) -> str:
        return self.send("shell", self.session.msg("kernel_info_request", {}))

    # ------------------------------------------------------------ receiving

    def _pump(self) -> None:
        for msg in self._page.evaluate(_RECEIVED, {"id": self.kernel_id, "start": self._seen}):
            self._seen += 1
            parent = msg.get("parent_header") or {}
            page_id = parent.get("msg_id")
            if page_id in self._ids:
                parent["msg_id"] = self._ids[page_id]
            elif msg["header"]["msg_type"] == "kernel_info_reply" and self._pending_kernel_info:
                self._ids[page_id] = parent["msg_id"] = self._pending_kernel_info.pop(0)
            msg["msg_id"] = msg["header"]["msg_id"]
            msg["msg_type"] = msg["header"]["msg_type"]
            self._queues.setdefault(msg["channel"], []).append(msg)

    def _get(self, channel: str, timeout: float | None) -> dict[str, Any]:
        deadline = time.monotonic() + (TIMEOUT if timeout is None else timeout)
        while True:
            self._pump()
            queue = self._queues[channel]
            if queue:
                return queue.pop(0)
            if time.monotonic() > deadline:
                raise Empty
            time.sleep(0.02)

    def get_iopub_msg(self, timeout: float | None = None) -> dict[str, Any]:
        return self._get("iopub", timeout)

    def get_shell_msg(self, timeout: float | None = None) -> dict[str, Any]:
        return self._get("shell", timeout)

    def get_control_msg(self, timeout: float | None = None) -> dict[str, Any]:
        return self._get("control", timeout)

    def shutdown(self) -> None:
        self._page.evaluate("(id) => window.__relay[id].kernel.shutdown()", self.kernel_id)


def get_reply(kc: PageKernelClient, msg_id: str, timeout: float = TIMEOUT, channel: str = "shell") -> dict[str, Any]:
    """The reply to `msg_id` on `channel`, other replies before it dropped (as ipykernel's utils.get_reply)."""
    deadline = time.monotonic() + timeout
    while True:
        reply = kc._get(channel, max(deadline - time.monotonic(), 0))
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply


def get_replies(kc: PageKernelClient, msg_ids: list[str], timeout: float = TIMEOUT,
                channel: str = "shell") -> list[dict[str, Any]]:
    """The replies to `msg_ids`, in that order."""
    deadline = time.monotonic() + timeout
    replies: dict[str, dict[str, Any]] = {}
    while len(replies) < len(msg_ids):
        reply = kc._get(channel, max(deadline - time.monotonic(), 0))
        if reply["parent_header"].get("msg_id") in msg_ids:
            replies[reply["parent_header"]["msg_id"]] = reply
    return [replies[msg_id] for msg_id in msg_ids]


@contextmanager
def new_kernel(argv: Any = None) -> Iterator[PageKernelClient]:
    """A new browser kernel, in the shared page; shut down on exit."""
    page = _Page.get()
    kernel_id = page.page.evaluate(_START, os.environ.get("CK_RELAY_KERNEL", "concurrent"))
    client = PageKernelClient(page, kernel_id)
    try:
        yield client
    finally:
        client.shutdown()


__all__ = ["TIMEOUT", "get_replies", "get_reply", "new_kernel"]
