"""One method per request msg_type, named after it. Each returns the reply content (None: no reply)."""

from __future__ import annotations

import logging
import sys
import threading
from typing import TYPE_CHECKING, Any

import anyio

from . import _execution
from ._context import current_execution
from ._dispatcher import Incoming, Lane
from ._execution import Execution
from ._kernel_info import kernel_info
from ._loops import current_call_soon_threadsafe
from ._protocol import MsgType, ReplyStatus, RunMode
from .services.stdin import StdinBroker

if TYPE_CHECKING:
    from ._kernel import Kernel

log = logging.getLogger("concurrent_kernel")


class RequestError(Exception):
    """A request we answer with `status: error` (bad content, unknown type, unavailable feature)."""

    def __init__(self, ename: str, evalue: str) -> None:
        super().__init__(evalue)
        self.ename = ename
        self.evalue = evalue

    @classmethod
    def from_exception(cls, exc: BaseException) -> RequestError:
        return cls(type(exc).__name__, str(exc))

    def output(self) -> dict[str, Any]:
        """As an iopub `error` message."""
        traceback = [f"\x1b[31m{self.ename}\x1b[39m: {self.evalue}"]
        return {"ename": self.ename, "evalue": self.evalue, "traceback": traceback}

    def content(self) -> dict[str, Any]:
        """As the reply."""
        return {"status": ReplyStatus.ERROR, **self.output()}


# Required and optional content fields with their types; checked before a handler runs.
_INT = (int,)
_SCHEMA: dict[str, tuple[dict[str, tuple[type, ...]], dict[str, tuple[type, ...]]]] = {
    MsgType.EXECUTE_REQUEST: (
        {"code": (str,)},
        {
            "silent": (bool,),
            "store_history": (bool,),
            "user_expressions": (dict,),
            "allow_stdin": (bool,),
            "stop_on_error": (bool,),
        },
    ),
    MsgType.COMPLETE_REQUEST: ({"code": (str,), "cursor_pos": _INT}, {}),
    MsgType.INSPECT_REQUEST: ({"code": (str,), "cursor_pos": _INT}, {"detail_level": _INT}),
    MsgType.IS_COMPLETE_REQUEST: ({"code": (str,)}, {}),
    MsgType.HISTORY_REQUEST: (
        {"hist_access_type": (str,)},
        {"output": (bool,), "raw": (bool,), "n": _INT, "session": _INT, "start": _INT, "stop": _INT,
         "pattern": (str,), "unique": (bool,), "include_latest": (bool,)},
    ),
    MsgType.COMM_INFO_REQUEST: ({}, {"target_name": (str, type(None))}),
    MsgType.SHUTDOWN_REQUEST: ({}, {"restart": (bool,)}),
    MsgType.COMM_OPEN: ({"comm_id": (str,), "target_name": (str,)}, {"data": (dict,)}),
    MsgType.COMM_MSG: ({"comm_id": (str,)}, {"data": (dict,)}),
    MsgType.COMM_CLOSE: ({"comm_id": (str,)}, {"data": (dict,)}),
    MsgType.DELETE_SUBSHELL_REQUEST: ({"subshell_id": (str,)}, {}),
}


def validate(msg_type: str, content: dict[str, Any]) -> None:
    if "__invalid__" in content:
        raise RequestError("InvalidMessage", f"{msg_type} content must be a JSON object")
    required, optional = _SCHEMA.get(msg_type, ({}, {}))
    for key, types in required.items():
        if key not in content:
            raise RequestError("InvalidMessage", f"{msg_type} content is missing the required field {key!r}")
        _check_type(msg_type, key, content[key], types)
    for key, types in optional.items():
        if key in content and content[key] is not None:
            _check_type(msg_type, key, content[key], types)


def _check_type(msg_type: str, key: str, value: Any, types: tuple[type, ...]) -> None:
    if isinstance(value, bool) and bool not in types:  # bool is an int in Python, not in JSON
        ok = False
    else:
        ok = isinstance(value, types)
    if not ok:
        names = " or ".join(t.__name__ for t in types)
        raise RequestError("InvalidMessage", f"{msg_type} field {key!r} must be {names}, got {type(value).__name__}")


class Handlers:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.stdin = StdinBroker(kernel)

    async def dispatch(self, incoming: Incoming, lane: Lane | None, mode: RunMode) -> dict[str, Any] | None:
        msg_type = incoming.msg_type
        handler = getattr(self, msg_type, None) if msg_type in MsgType._value2member_map_ else None
        if handler is None or msg_type.endswith("_reply") or msg_type in _NOT_REQUESTS:
            if msg_type.endswith("_request"):
                raise RequestError("UnknownMessageType", f"concurrent-kernel does not handle {msg_type!r}")
            log.warning("ignoring message of unknown type %r on %s", msg_type, incoming.channel)
            return None
        validate(msg_type, incoming.msg["content"])
        if msg_type not in _WITHOUT_SHELL and not self.kernel.shell_ready.is_set():
            await self.kernel.shell_ready
        if msg_type == MsgType.EXECUTE_REQUEST:
            return await self.execute_request(incoming, lane, mode)
        return await handler(incoming)

    # ------------------------------------------------------------ execution

    async def execute_request(self, incoming: Incoming, lane: Lane | None, mode: RunMode) -> dict[str, Any]:
        kernel = self.kernel
        shell = kernel.shell
        content = incoming.msg["content"]
        code: str = content["code"]
        silent = bool(content.get("silent", False))
        store_history = bool(content.get("store_history", not silent))
        stop_on_error = bool(content.get("stop_on_error", True))
        execution = Execution(
            request=incoming.msg,
            execution_count=shell.execution_count,
            run_mode=mode,
            thread_id=threading.get_ident(),
            call_soon=current_call_soon_threadsafe(),
            reply_to=incoming.reply_to,
        )
        token = current_execution.set(execution)
        kernel.executions.add(execution)
        result = None
        try:
            if not silent:
                kernel.publish(MsgType.EXECUTE_INPUT, {"code": code, "execution_count": execution.execution_count})
            try:
                with anyio.CancelScope() as scope:
                    execution.cancel_scope = scope
                    cell = self._run_cell(code, silent, store_history, incoming.msg)
                    result = await _execution.stepper(cell, execution)
            except KeyboardInterrupt as exc:  # landed outside the user's code, in IPython's bookkeeping
                shell.showtraceback((KeyboardInterrupt, exc, exc.__traceback__))
            # The result decides success, not whether a traceback was shown: code may show one and carry on. But a
            # display formatter that raised (a result's or display()'s __repr__, _repr_html_...) fails the cell, so
            # stop_on_error and nbclient see it.
            failed = (
                result is None or not result.success or execution.failed_elsewhere or execution.display_failed
            )
            user_expressions = {}
            if not failed and content.get("user_expressions"):
                user_expressions = shell.user_expressions(content["user_expressions"])
        finally:
            kernel.executions.discard(execution)
            current_execution.reset(token)
        if failed:
            if stop_on_error and lane is not None:
                lane.abort_pending()
            error = execution.error or _error_content(result)
            return {"status": ReplyStatus.ERROR, "execution_count": execution.execution_count, **error}
        return {
            "status": ReplyStatus.OK,
            "execution_count": execution.execution_count,
            "payload": execution.payloads,
            "user_expressions": user_expressions,
        }

    async def _run_cell(self, code: str, silent: bool, store_history: bool, msg: dict[str, Any]) -> Any:
        shell = self.kernel.shell
        exc_tuple = None
        try:
            transformed = shell.transform_cell(code)
        except Exception:
            transformed, exc_tuple = code, sys.exc_info()
        metadata = msg.get("metadata") or {}
        result = None
        try:
            result = await shell.run_cell_async(
                code,
                store_history=store_history,
                silent=silent,
                transformed_cell=transformed,
                preprocessing_exc_tuple=exc_tuple,
                cell_id=metadata.get("cellId"),
                cell_meta=metadata,  # the request's metadata, as ipykernel gives it (ExecutionInfo.cell_meta)
            )
        finally:
            # IPython fires these in its synchronous run_cell only; awaiting run_cell_async, the kernel fires them
            # (as ipykernel does), in the cell's own context: matplotlib-inline's figure flush, extensions' hooks.
            shell.events.trigger("post_execute")
            if not silent:
                shell.events.trigger("post_run_cell", result)
        return result

    # ------------------------------------------------------------ introspection

    async def kernel_info_request(self, incoming: Incoming) -> dict[str, Any]:
        return kernel_info(debugger=self.kernel.debugger_enabled)

    async def complete_request(self, incoming: Incoming) -> dict[str, Any]:
        from IPython.core.completer import provisionalcompleter, rectify_completions

        code, cursor_pos = self._code_and_cursor(incoming)
        with provisionalcompleter():
            completions = list(rectify_completions(code, self.kernel.shell.Completer.completions(code, cursor_pos)))
        start = completions[0].start if completions else cursor_pos
        end = completions[0].end if completions else cursor_pos
        return {
            "status": ReplyStatus.OK,
            "matches": [c.text for c in completions],
            "cursor_start": start,
            "cursor_end": end,
            "metadata": {
                "_jupyter_types_experimental": [
                    {"start": c.start, "end": c.end, "text": c.text, "type": c.type, "signature": c.signature}
                    for c in completions
                ]
            },
        }

    async def inspect_request(self, incoming: Incoming) -> dict[str, Any]:
        from IPython.utils.tokenutil import token_at_cursor

        code, cursor_pos = self._code_and_cursor(incoming)
        detail_level = int(incoming.msg["content"].get("detail_level") or 0)
        name = token_at_cursor(code, cursor_pos)
        data: dict[str, Any] = {}
        found = False
        if name:
            try:
                data = self.kernel.shell.object_inspect_mime(name, detail_level=detail_level)
                found = True
            except KeyError:
                found = False
        return {"status": ReplyStatus.OK, "found": found, "data": data, "metadata": {}}

    async def is_complete_request(self, incoming: Incoming) -> dict[str, Any]:
        status, indent = self.kernel.shell.input_transformer_manager.check_complete(incoming.msg["content"]["code"])
        reply: dict[str, Any] = {"status": status}
        if status == "incomplete":
            reply["indent"] = " " * (indent or 0)
        return reply

    async def history_request(self, incoming: Incoming) -> dict[str, Any]:
        content = incoming.msg["content"]
        history = self.kernel.shell.history_manager
        access = content["hist_access_type"]
        raw = bool(content.get("raw", True))
        output = bool(content.get("output", False))
        if access == "tail":
            n = int(content.get("n") or 10)
            # A history_request is not itself a cell, so the latest cell belongs in the tail unless asked otherwise.
            include_latest = content.get("include_latest")
            include_latest = True if include_latest is None else bool(include_latest)
            items = history.get_tail(n, raw=raw, output=output, include_latest=include_latest)
        elif access == "range":
            items = history.get_range(
                int(content.get("session") or 0), int(content.get("start") or 1), content.get("stop"),
                raw=raw, output=output,
            )
        elif access == "search":
            items = history.search(
                content.get("pattern") or "*", raw=raw, output=output, n=content.get("n"),
                unique=bool(content.get("unique")),
            )
        else:
            raise RequestError("InvalidMessage", f"hist_access_type must be tail, range or search, not {access!r}")
        # IPython numbers the current session 0 when it reads from memory; clients need the real number.
        current = history.session_number
        return {
            "status": ReplyStatus.OK,
            "history": [[current if session == 0 else session, *rest] for session, *rest in items],
        }

    async def comm_info_request(self, incoming: Incoming) -> dict[str, Any]:
        target = incoming.msg["content"].get("target_name")
        comms = {
            comm_id: {"target_name": comm.target_name}
            for comm_id, comm in list(self.kernel.comm_manager.comms.items())
            if target is None or comm.target_name == target
        }
        return {"status": ReplyStatus.OK, "comms": comms}

    async def connect_request(self, incoming: Incoming) -> dict[str, Any]:
        info = self.kernel.transport.connection_info
        ports = {k: v for k, v in info.items() if k.endswith("_port")}
        return {"status": ReplyStatus.OK, **ports}

    def _code_and_cursor(self, incoming: Incoming) -> tuple[str, int]:
        content = incoming.msg["content"]
        code: str = content["code"]
        cursor_pos: int = content["cursor_pos"]
        if cursor_pos < 0:
            raise RequestError("InvalidMessage", f"cursor_pos {cursor_pos} is outside the code (length {len(code)})")
        # JupyterLab 4.6's inspector was seen asking with a cursor past the end of the code it sent (its editor had
        # moved on): answer for the end of the code, as ipykernel does, rather than refuse.
        return code, min(cursor_pos, len(code))

    # ------------------------------------------------------------ comms (no reply)

    async def comm_open(self, incoming: Incoming) -> None:
        self.kernel.comm_manager.comm_open(None, None, incoming.msg)

    async def comm_msg(self, incoming: Incoming) -> None:
        self.kernel.comm_manager.comm_msg(None, None, incoming.msg)

    async def comm_close(self, incoming: Incoming) -> None:
        self.kernel.comm_manager.comm_close(None, None, incoming.msg)

    # ------------------------------------------------------------ control

    async def shutdown_request(self, incoming: Incoming) -> dict[str, Any]:
        restart = bool(incoming.msg["content"].get("restart", False))
        content = {"status": ReplyStatus.OK, "restart": restart}
        self.kernel.publish(MsgType.SHUTDOWN_REPLY, content)
        incoming.after_reply = self.kernel.stop
        return content

    async def interrupt_request(self, incoming: Incoming) -> dict[str, Any]:
        # The interrupt itself was triggered on receipt (Kernel.feed); this only answers.
        return {"status": ReplyStatus.OK}

    async def debug_request(self, incoming: Incoming) -> dict[str, Any]:
        """A DAP request in, its DAP response out (services/debugger); events go out as iopub debug_event."""
        debugger = self.kernel.debugger
        if debugger is None:
            why = "it is switched off (--no-debugger)" if not self.kernel.debugger_enabled else \
                "this platform has none (debugpy is missing, or Pyodide)"
            raise RequestError("DebuggerUnavailable", f"this kernel has no debugger: {why}")
        content = incoming.msg["content"]
        return dict(await debugger.handle(content, incoming.msg))

    async def create_subshell_request(self, incoming: Incoming) -> dict[str, Any]:
        return {"status": ReplyStatus.OK, "subshell_id": await self.kernel.create_subshell()}

    async def delete_subshell_request(self, incoming: Incoming) -> dict[str, Any]:
        subshell_id = incoming.msg["content"]["subshell_id"]
        if not self.kernel.delete_subshell(subshell_id):
            raise RequestError("UnknownSubshellError", f"Unknown subshell_id {subshell_id!r}")
        return {"status": ReplyStatus.OK}

    async def list_subshell_request(self, incoming: Incoming) -> dict[str, Any]:
        return {"status": ReplyStatus.OK, "subshell_id": list(self.kernel.subshells)}


def _error_content(result: Any) -> dict[str, Any]:
    """Reply fields for a failure whose traceback was never shown."""
    exc = None if result is None else (result.error_before_exec or result.error_in_exec)
    if exc is None:
        return {"ename": "KeyboardInterrupt", "evalue": "", "traceback": []}
    return {"ename": type(exc).__name__, "evalue": str(exc), "traceback": []}


# Requests answered without IPython, so they are served while the shell is still starting.
_WITHOUT_SHELL = frozenset(
    {MsgType.KERNEL_INFO_REQUEST, MsgType.CONNECT_REQUEST, MsgType.SHUTDOWN_REQUEST, MsgType.INTERRUPT_REQUEST,
     MsgType.CREATE_SUBSHELL_REQUEST, MsgType.DELETE_SUBSHELL_REQUEST,
     MsgType.LIST_SUBSHELL_REQUEST}
)


_NOT_REQUESTS = frozenset(
    {MsgType.STATUS, MsgType.EXECUTE_INPUT, MsgType.STREAM, MsgType.DISPLAY_DATA, MsgType.UPDATE_DISPLAY_DATA,
     MsgType.EXECUTE_RESULT, MsgType.ERROR, MsgType.CLEAR_OUTPUT, MsgType.IOPUB_WELCOME, MsgType.INPUT_REQUEST,
     MsgType.INPUT_REPLY}
)

