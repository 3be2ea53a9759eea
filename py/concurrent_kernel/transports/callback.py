"""The callback transport: a host (JupyterLite's Web Worker) calls in once per message, we call out once per message.

The host owns the event loop (Pyodide's WebLoop); `start` schedules the kernel on it and returns at once.
Messages cross as JSON text with a "channel" key; binary buffers travel beside them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

from .. import _execution
from .._kernel import Kernel
from .._loops import IS_PYODIDE
from .._messages import EncodedList, Message, MessageFactory
from .._protocol import Channel, MsgType
from ..services import suspend
from .base import early_kernel_info

log = logging.getLogger("concurrent_kernel")

SendCallback = Callable[[str, list[Any]], None]
InputCallback = Callable[[str], str]
SleepCallback = Callable[[float], bool]

#: The page's and the kernel's channel for the debugger session kept across a page reload (never a Jupyter one).
DEBUGGER_STATE_CHANNEL = "ck-debugger-state"


class CallbackTransport:
    connection_info: dict[str, Any] = {}

    def __init__(
        self,
        send: SendCallback,
        input_request: InputCallback | None = None,
        exit_callback: Callable[[bool], None] | None = None,
    ) -> None:
        self._send = send
        #: Told when the kernel ends itself (`kernel.do_shutdown(restart)`, `exit` in a cell): the host restarts the
        #: kernel (True) or shuts it down (False), as a kernel manager does for a ZMQ kernel whose process ended.
        self._exit_callback = exit_callback
        self._feed: Callable[[str, Message, Any], None] | None = None
        self._early: list[tuple[str, Message]] = []
        self._early_info: tuple[MessageFactory, Callable[[], dict[str, Any]]] | None = None
        self.starting_sent = False
        # In Pyodide input() can always wait by suspending its stack, which needs no help from the host.
        self.blocking_input = self._blocking_input if input_request is not None or IS_PYODIDE else None
        self._input_request = input_request
        #: input_request msg_id -> the future a suspended input() waits on for its input_reply.
        self._inputs: dict[str, asyncio.Future[Message]] = {}
        #: The debugger session the page kept from before a reload, until the debugger takes it.
        self.debugger_state: dict[str, Any] | None = None
        self.on_debugger_state: Callable[[dict[str, Any]], None] | None = None

    def persist_debugger_state(self, state: dict[str, Any]) -> None:
        """Give the page the debugger's session to keep for a reload (the kernel dies with the page)."""
        self._send(json.dumps({"channel": DEBUGGER_STATE_CHANNEL, "state": state}, default=str), [])

    def kernel_ended(self, restart: bool) -> None:
        if self._exit_callback is not None:
            self._exit_callback(restart)
        else:
            log.warning("the kernel ended itself, and its host gave no callback to restart or close it")

    def send(self, channel: str, msg: Message, reply_to: Any = None) -> None:
        buffers = [bytes(b) for b in msg.get("buffers") or []]
        body = {key: value for key, value in msg.items() if key != "buffers"}
        body["channel"] = channel
        self._send(to_json(body), buffers)

    def _blocking_input(self, msg: Message) -> Message:
        if suspend.can_suspend():
            return self._suspended_input(msg)
        if self._input_request is None:
            raise RuntimeError(
                "input() cannot wait here: this Python code was called synchronously from JavaScript, and the page "
                "is neither cross-origin isolated nor served with an active service worker"
            )
        body = {**{k: v for k, v in msg.items() if k != "buffers"}, "channel": "stdin"}
        return json.loads(self._input_request(json.dumps(body, default=str)))

    def _suspended_input(self, msg: Message) -> Message:
        """Send the input_request like any message and suspend this stack until its input_reply comes back (the
        worker stays free: comm messages, other cells and interrupts are handled meanwhile)."""
        msg_id = str(msg["header"]["msg_id"])
        reply: asyncio.Future[Message] = asyncio.get_event_loop().create_future()
        self._inputs[msg_id] = reply
        try:
            self.send(Channel.STDIN, msg)
            return suspend.block_on(reply)
        finally:
            self._inputs.pop(msg_id, None)

    def start_early(self, messages: MessageFactory, kernel_info: Callable[[], dict[str, Any]]) -> None:
        """Answer kernel_info_request as it arrives, before the kernel runs (as the ZMQ transport does): the page
        sends its first cell only once answered, and then builds its part meanwhile instead of after the shell."""
        self._early_info = (messages, kernel_info)

    def send_starting(self, msg: Message) -> None:
        """The kernel's `status: starting`, unless an early kernel_info reply went out after one already."""
        if not self.starting_sent:
            self.starting_sent = True
            self.send(Channel.IOPUB, msg)

    def _answer_early(self, msg: Message) -> bool:
        header = msg.get("header")
        if self._early_info is None or not isinstance(header, dict):
            return False
        if header.get("msg_type") != MsgType.KERNEL_INFO_REQUEST:
            return False
        messages, kernel_info = self._early_info
        starting, self.starting_sent = not self.starting_sent, True
        for channel, out in early_kernel_info(messages, msg, kernel_info, starting):
            self.send(channel, out)
        return True

    async def start(self, feed: Callable[[str, Message, Any], None]) -> None:
        self._early_info = None  # the kernel answers from now on
        self._feed = feed
        early, self._early = self._early, []
        for channel, msg in early:
            feed(channel, msg, None)

    def receive(self, msg_json: str, buffers: list[Any] | None = None) -> None:
        try:
            msg = json.loads(msg_json)
            if not isinstance(msg, dict):
                raise ValueError("a message must be a JSON object")
        except ValueError as exc:
            log.error("dropping a malformed message from the page: %s", exc)
            return
        channel = str(msg.pop("channel", "shell"))
        if channel == DEBUGGER_STATE_CHANNEL:  # the page hands back the session it kept (see kernel.ts)
            state = msg.get("state")
            if isinstance(state, dict):
                if self.on_debugger_state is not None:
                    self.on_debugger_state(state)
                else:
                    self.debugger_state = state
            return
        if channel == Channel.STDIN and self._inputs and self._resolve_input(msg):
            return
        msg["buffers"] = [memoryview(bytes(b)) for b in (buffers or [])]
        if self._feed is None:
            if not self._answer_early(msg):
                self._early.append((channel, msg))
        else:
            self._feed(channel, msg, None)

    def _resolve_input(self, msg: Message) -> bool:
        """Hand an input_reply to the suspended input() waiting for it (a reply without a parent: the oldest)."""
        parent = msg.get("parent_header")
        parent_id = parent.get("msg_id") if isinstance(parent, dict) else None
        waiting = self._inputs.get(parent_id) if isinstance(parent_id, str) else None
        if waiting is None and not parent_id:
            waiting = next(iter(self._inputs.values()), None)
        if waiting is None or waiting.done():
            return False
        waiting.set_result(msg)
        return True

    def close(self) -> None:
        self._feed = None


#: Marks where an EncodedList goes in json.dumps' text: NUL bytes are written escaped, and the process's random
#: part keeps a user's string from reading the same.
_SPLICE = f"ck-{uuid.uuid4().hex}-"


def to_json(body: dict[str, Any]) -> str:
    """json.dumps, with each EncodedList's JSON spliced in where a placeholder string was written for it."""
    spliced: list[str] = []

    def default(obj: Any) -> Any:
        if isinstance(obj, EncodedList):
            spliced.append(obj.text)
            return f"\0{_SPLICE}{len(spliced) - 1}\0"
        return str(obj)

    text = json.dumps(body, default=default)
    for index, part in enumerate(spliced):
        mark = f'"\\u0000{_SPLICE}{index}\\u0000"'
        if text.count(mark) != 1:  # the message's own data reads like a mark: encode it the slow way
            return json.dumps(body, default=lambda obj: list(obj) if isinstance(obj, EncodedList) else str(obj))
        text = text.replace(mark, part)
    return text


def _log_to_host() -> None:
    """The kernel's own log lines go to the host's stderr (in the browser the worker's console, which the page
    repeats), as the ZMQ kernel's go to the terminal (_app.py). Without this, logging's last-resort handler writes
    them to the current sys.stderr: the kernel's stream, published to iopub under no request, which no front end
    shows. User code's logging keeps reaching the cell's stderr."""
    if any(getattr(h, "_ck_host", False) for h in log.handlers):
        return
    handler = logging.StreamHandler(sys.__stderr__)
    handler.setFormatter(logging.Formatter("[concurrent-kernel %(levelname)s] %(message)s"))
    handler._ck_host = True  # type: ignore[attr-defined]
    log.addHandler(handler)
    if log.level == logging.NOTSET:
        log.setLevel(logging.WARNING)
    log.propagate = False


class Handle:
    """What the host keeps: deliver messages, interrupt, shut down."""

    def __init__(self, kernel: Kernel, transport: CallbackTransport, task: asyncio.Task[None]) -> None:
        self.kernel = kernel
        self.transport = transport
        self.task = task

    def receive(self, msg_json: str, buffers: list[Any] | None = None) -> None:
        if hasattr(buffers, "to_py"):
            buffers = buffers.to_py()  # type: ignore[union-attr]
        self.transport.receive(msg_json, buffers)

    def interrupt(self) -> None:
        suspend.interrupt_waiting()  # a suspended time.sleep / input() raises KeyboardInterrupt
        self.kernel.interrupt()

    async def shutdown(self) -> None:
        self.kernel.stop()
        await self.task


def start(
    send: SendCallback,
    input_request: InputCallback | None = None,
    *,
    backend: str = "asyncio",
    blocking_sleep: SleepCallback | None = None,
    exit_callback: Callable[[bool], None] | None = None,
    debugger: bool = False,
    busy_flag: Callable[[int], int] | None = None,
    site_profile: bool | None = None,
) -> Handle:
    """Schedule a kernel on the running asyncio loop (never anyio.run: in Pyodide a loop always runs).

    `blocking_sleep`: the host's wait for a time.sleep that cannot suspend its stack (services/suspend.py).
    `exit_callback(restart)`: the host restarts the kernel or shuts it down when it ends itself (do_shutdown, exit).
    `debugger`: offer JupyterLab's debugger (services/debugger/monitoring.py). Only the host knows whether it can
    work: a stopped cell suspends its stack, which needs JSPI.
    `busy_flag`: the host's "a cell's step is on the CPU" flag (_execution.use_busy_flag), for fast interrupts.
    `site_profile`: whether the site's files hold an IPython profile (services/ipython_app.py make_app), if the host
    knows.
    """
    from traitlets.config import Config

    from .._kernel_info import debugger_available, kernel_info
    from ..services.ipython_app import make_app

    if backend != "asyncio":
        raise ValueError("the callback transport runs on the host's asyncio loop; backend must be 'asyncio'")
    suspend.install(blocking_sleep)
    _execution.use_busy_flag(busy_flag)
    if IS_PYODIDE:  # elsewhere the embedding host configures logging
        _log_to_host()
    config = Config()
    config.HistoryManager.hist_file = ":memory:"  # no history thread: Pyodide has no threads
    debugger = debugger and debugger_available()
    messages = MessageFactory()
    transport = CallbackTransport(send, input_request, exit_callback)
    transport.start_early(messages, partial(kernel_info, debugger=debugger))
    # The app, as the ZMQ kernel's launcher makes it (_app.py): its profile, config files and startup code.
    app = make_app(config=config, site_profile=site_profile)
    kernel = Kernel(
        transport, backend=backend, config=app.config, app=app, session=messages.session, use_threads=False,
        debugger=debugger,
    )
    task = asyncio.get_event_loop().create_task(kernel.serve())
    return Handle(kernel, transport, task)


async def warm_up(cells: int = 60, keep_going: Callable[[], bool] = lambda: True) -> int:
    """Run a throwaway kernel through up to `cells` executions, shut it down, and return how many ran.

    Why: Pyodide restored from a memory snapshot has run none of the kernel's code in this page, so the browser
    still runs it with its baseline wasm compiler (measured: the first 50 round trips ~17 ms p50, the next ones
    ~8 ms). A spare worker calls this before a notebook takes it; `keep_going` lets it stop early.

    The first cell is interrupted (it raises KeyboardInterrupt): a process's first traceback imports stack_data and
    pygments' formatters, reads pygments' default style and compiles regexes, which made the first interrupt of a
    kernel in the page cost 0.4-1.8 s instead of ~10 ms. The snapshot's build runs this too, so those modules come
    in the snapshot.
    """
    if not keep_going():
        return 0
    replies: asyncio.Queue[str] = asyncio.Queue()

    def send(msg_json: str, buffers: list[Any]) -> None:
        msg_type = json.loads(msg_json)["header"]["msg_type"]
        if msg_type in (MsgType.KERNEL_INFO_REPLY, MsgType.EXECUTE_REPLY):
            replies.put_nowait(msg_type)

    # As a kernel that offers the debugger starts (the site's default): its core comes in the memory snapshot this
    # warm-up decides (ts/scripts/make_snapshot.mjs), and its compile path is warmed. Nothing attaches.
    handle = start(send, debugger=True)
    factory = MessageFactory(session="warm-up")

    async def request(msg_type: MsgType, content: dict[str, Any]) -> None:
        handle.receive(json.dumps({**factory.make(msg_type, content), "channel": Channel.SHELL}))
        await asyncio.wait_for(replies.get(), 30)

    ran = 0
    try:
        await request(MsgType.KERNEL_INFO_REQUEST, {})  # what a notebook sends first
        while ran < cells and keep_going():
            code = "raise KeyboardInterrupt" if ran == 0 else "1+1" if ran % 2 else f"print({ran})"
            await request(MsgType.EXECUTE_REQUEST, {"code": code, "silent": False, "store_history": True,
                                                    "user_expressions": {}, "allow_stdin": False,
                                                    "stop_on_error": False})
            ran += 1
    finally:
        await handle.shutdown()
        # IPython keeps the last error for `%debug` and `sys.last_value` readers: not the warm-up's (its frames
        # would also keep the throwaway kernel alive, in the snapshot too).
        for name in ("last_type", "last_value", "last_traceback", "last_exc"):
            if hasattr(sys, name):
                delattr(sys, name)
    return ran
