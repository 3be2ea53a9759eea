"""Stack frames, scopes, variables and evaluation for a stopped thread, in the shapes of the Debug Adapter Protocol.

Presented as debugpy presents them, since that is what JupyterLab's panel and ipykernel's tests know: a scope's
dunder names go in a "special variables" group, functions in "function variables", classes in "class variables";
`evaluate` in a frame answers the value's repr (in full for the "clipboard" context, which the rich variable
viewer uses), without a frame it runs in the user namespace and answers its str, as debugpy does.

References (frames, scopes, expandable values) are numbered from `FIRST_REFERENCE` up and never reused, so they
cannot be confused with the numbers the kernel hands out for variables inspected without a stop (counted from 1);
a thread's references are dropped when it resumes.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import types
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any

from . import MAX_ITEMS, MAX_REPR, safe_repr

FIRST_REFERENCE = 1 << 20

GROUPS = ("special variables", "function variables", "class variables")


class EvaluationError(Exception):
    """An expression failed; the message is what the front end shows."""


def _group_of(name: str, value: Any) -> str | None:
    if name.startswith("__") and name.endswith("__"):
        return "special variables"
    if isinstance(value, type):
        return "class variables"
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType, types.MethodType,
                          types.BuiltinMethodType, types.MethodWrapperType, types.WrapperDescriptorType,
                          types.MethodDescriptorType, types.ClassMethodDescriptorType)):
        return "function variables"
    return None


def _expandable(value: Any) -> bool:
    if isinstance(value, (dict, list, tuple, set, frozenset)):
        return len(value) > 0
    if isinstance(value, (str, bytes, bytearray, int, float, complex, bool, type(None))):
        return False
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
        return False
    return bool(getattr(value, "__dict__", None)) or isinstance(value, (type, types.ModuleType)) or \
        bool(getattr(type(value), "__slots__", None))


class Presenter:
    """Numbers frames, scopes and values for one debug session; `thread_id` owns what it numbers."""

    def __init__(self, is_user_frame: Callable[[FrameType], bool], user_namespace: Callable[[], dict[str, Any]]):
        self._is_user_frame = is_user_frame
        self._user_namespace = user_namespace
        self._ids = itertools.count(FIRST_REFERENCE)
        #: reference -> (thread id, kind, payload)
        self._refs: dict[int, tuple[int, str, Any]] = {}

    def _ref(self, thread_id: int, kind: str, payload: Any) -> int:
        reference = next(self._ids)
        self._refs[reference] = (thread_id, kind, payload)
        return reference

    def forget_thread(self, thread_id: int) -> None:
        for reference in [r for r, (owner, _, _) in self._refs.items() if owner == thread_id]:
            del self._refs[reference]

    def forget_all(self) -> None:
        self._refs.clear()

    def frame(self, frame_id: Any) -> FrameType | None:
        entry = self._refs.get(frame_id) if isinstance(frame_id, int) else None
        return entry[2] if entry is not None and entry[1] == "frame" else None

    def owner(self, reference: Any) -> int | None:
        entry = self._refs.get(reference) if isinstance(reference, int) else None
        return entry[0] if entry is not None else None

    # ------------------------------------------------------------ stack and scopes

    def stack(self, thread_id: int, top: FrameType | list[FrameType], start: int = 0,
              levels: int = 0) -> tuple[list[dict[str, Any]], int]:
        """The user's frames from `top` outwards (the kernel's and libraries' frames between them left out), or
        the frames given (a post-mortem stop: the frames an exception passed through)."""
        frames: list[FrameType] = []
        if isinstance(top, list):
            frames = list(top)
        else:
            frame: FrameType | None = top
            while frame is not None:
                if frame is top or self._is_user_frame(frame):
                    frames.append(frame)
                frame = frame.f_back
        total = len(frames)
        chosen = frames[start : start + levels] if levels else frames[start:]
        out = []
        for f in chosen:
            path = f.f_code.co_filename
            out.append({
                "id": self._ref(thread_id, "frame", f),
                "name": f.f_code.co_name,
                "source": {"path": path, "name": path.rsplit("/", 1)[-1]},
                "line": f.f_lineno or f.f_code.co_firstlineno,
                "column": 1,
            })
        return out, total

    def scopes(self, frame_id: Any) -> list[dict[str, Any]] | None:
        entry = self._refs.get(frame_id) if isinstance(frame_id, int) else None
        if entry is None or entry[1] != "frame":
            return None
        thread_id, _, frame = entry
        return [
            {"name": "Locals", "variablesReference": self._ref(thread_id, "locals", frame), "expensive": False},
            {"name": "Globals", "variablesReference": self._ref(thread_id, "globals", frame), "expensive": False},
        ]

    # ------------------------------------------------------------ variables

    def variables(self, reference: Any, start: int = 0, count: int = 0) -> list[dict[str, Any]] | None:
        entry = self._refs.get(reference) if isinstance(reference, int) else None
        if entry is None:
            return None
        thread_id, kind, payload = entry
        if kind == "frame":
            return None
        items = list(self._children(thread_id, kind, payload))
        if start or count:
            items = items[start : start + count] if count else items[start:]
        return items

    def _children(self, thread_id: int, kind: str, payload: Any) -> Iterable[dict[str, Any]]:
        if kind in ("locals", "globals"):
            frame: FrameType = payload
            scope = frame.f_locals if kind == "locals" else frame.f_globals
            return self._scope(thread_id, list(scope.items()), lambda name: name)
        if kind == "group":
            return [self._describe(thread_id, name, value, expr) for name, value, expr in payload]
        value, expression = payload
        return self._value_children(thread_id, value, expression)

    def _scope(self, thread_id: int, pairs: list[tuple[str, Any]], expr: Callable[[str], str]) -> list[dict[str, Any]]:
        groups: dict[str, list[tuple[str, Any, str]]] = {group: [] for group in GROUPS}
        plain: list[tuple[str, Any, str]] = []
        for name, value in pairs:
            group = _group_of(str(name), value)
            (groups[group] if group else plain).append((str(name), value, expr(str(name))))
        out = []
        for group, members in groups.items():
            if members:
                members.sort(key=lambda m: m[0].lower())
                out.append({"name": group, "value": "", "type": "", "evaluateName": "",
                            "variablesReference": self._ref(thread_id, "group", members),
                            "presentationHint": {"kind": "class" if group == "class variables" else "method"}})
        plain.sort(key=lambda m: m[0].lower())
        out.extend(self._describe(thread_id, name, value, expression) for name, value, expression in plain)
        return out

    def _value_children(self, thread_id: int, value: Any, expression: str) -> list[dict[str, Any]]:
        if isinstance(value, dict):
            return [self._describe(thread_id, safe_repr(k, 200), v, f"{expression}[{k!r}]")
                    for k, v in itertools.islice(list(value.items()), MAX_ITEMS)]
        if isinstance(value, (list, tuple)):
            out = [self._describe(thread_id, str(i), v, f"{expression}[{i}]")
                   for i, v in enumerate(value[:MAX_ITEMS])]
            out.append(self._len_entry(value))
            return out
        if isinstance(value, (set, frozenset)):
            return [self._describe(thread_id, str(i), v, "") for i, v in enumerate(itertools.islice(value, MAX_ITEMS))]
        pairs: list[tuple[str, Any]] = []
        for name in dir(value):
            try:
                pairs.append((name, inspect.getattr_static(value, name) if name == "__dict__" else
                              getattr(value, name)))
            except Exception as exc:
                pairs.append((name, _Unreadable(exc)))
        return self._scope(thread_id, pairs, lambda name: f"{expression}.{name}")

    @staticmethod
    def _len_entry(value: Any) -> dict[str, Any]:
        return {"name": "len()", "value": str(len(value)), "type": "int", "evaluateName": "",
                "variablesReference": 0, "presentationHint": {"attributes": ["readOnly"]}}

    def _describe(self, thread_id: int, name: str, value: Any, expression: str) -> dict[str, Any]:
        reference = self._ref(thread_id, "value", (value, expression)) if _expandable(value) else 0
        return {"name": name, "value": safe_repr(value), "type": type(value).__name__, "evaluateName": expression,
                "variablesReference": reference}

    # ------------------------------------------------------------ evaluation

    def _namespaces(self, frame: FrameType | None) -> tuple[dict[str, Any], Any]:
        if frame is None:
            ns = self._user_namespace()
            return ns, ns
        return frame.f_globals, frame.f_locals

    def evaluate(self, expression: str, frame: FrameType | None, context: str | None,
                 thread_id: int) -> dict[str, Any]:
        """The `evaluate` response body; raises EvaluationError with the message to show."""
        g, loc = self._namespaces(frame)
        try:
            try:
                code = compile(expression, "<debugger>", "eval")
            except SyntaxError:
                if context != "repl" and frame is not None:
                    raise
                exec(compile(expression, "<debugger>", "exec"), g, loc)
                return {"result": "", "variablesReference": 0}
            value = eval(code, g, loc)
        except Exception as exc:
            raise EvaluationError(f"{type(exc).__name__}: {exc}") from exc
        if frame is None:  # debugpy's answer without a frame: the value's str, nothing to expand
            return {"result": "" if value is None else str(value), "variablesReference": 0}
        if context == "repl" and value is None:
            return {"result": "", "variablesReference": 0}
        limit = None if context == "clipboard" else MAX_REPR
        reference = self._ref(thread_id, "value", (value, expression)) if _expandable(value) else 0
        return {"result": safe_repr(value, limit), "type": type(value).__name__, "variablesReference": reference}

    def assign(self, target: str, value_expression: str, frame: FrameType | None) -> Any:
        """`target = value_expression`, evaluated in the frame: a name (the frame's locals write through), an
        attribute or an item. Returns the value assigned."""
        g, loc = self._namespaces(frame)
        try:
            node = ast.parse(target, mode="eval").body
            value = eval(compile(value_expression, "<debugger>", "eval"), g, loc)
            if isinstance(node, ast.Name):
                loc[node.id] = value
            elif isinstance(node, ast.Attribute):
                setattr(eval(compile(ast.Expression(node.value), "<debugger>", "eval"), g, loc), node.attr, value)
            elif isinstance(node, ast.Subscript):
                container = eval(compile(ast.Expression(node.value), "<debugger>", "eval"), g, loc)
                container[eval(compile(ast.Expression(node.slice), "<debugger>", "eval"), g, loc)] = value
            else:
                raise EvaluationError(f"cannot assign to {target!r}")
        except EvaluationError:
            raise
        except Exception as exc:
            raise EvaluationError(f"{type(exc).__name__}: {exc}") from exc
        return value

    def set_variable(self, reference: Any, name: str, value_expression: str) -> dict[str, Any]:
        """`setVariable`: assign in a scope or a container the panel expanded; the new value's description."""
        entry = self._refs.get(reference) if isinstance(reference, int) else None
        if entry is None:
            raise EvaluationError("no such variablesReference (the thread has resumed?)")
        thread_id, kind, payload = entry
        if kind in ("locals", "globals"):
            frame: FrameType = payload
            target = name if kind == "locals" else f"globals()[{name!r}]"
            value = self.assign(target, value_expression, frame)
        elif kind == "value":
            value = self._set_in(payload[0], name, value_expression)
        else:
            raise EvaluationError(f"{name!r} cannot be set here")
        return {k: v for k, v in self._describe(thread_id, name, value, name).items() if k != "name"}

    def _set_in(self, container: Any, name: str, value_expression: str) -> Any:
        ns = self._user_namespace()
        try:
            value = eval(compile(value_expression, "<debugger>", "eval"), ns, ns)
            if isinstance(container, dict):
                key = next((k for k in container if safe_repr(k, 200) == name), None)
                if key is None:
                    raise KeyError(name)
                container[key] = value
            elif isinstance(container, list):
                container[int(name)] = value
            else:
                setattr(container, name, value)
        except Exception as exc:
            raise EvaluationError(f"{type(exc).__name__}: {exc}") from exc
        return value


class _Unreadable:
    """An attribute whose getattr raised: shown with the error instead of failing the whole listing."""

    def __init__(self, exc: BaseException) -> None:
        self._text = f"<unreadable: {type(exc).__name__}: {exc}>"

    def __repr__(self) -> str:
        return self._text
