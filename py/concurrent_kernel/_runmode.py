"""Choose a cell's run mode without evaluating any of its text."""

from __future__ import annotations

import re
from typing import Any

from ._protocol import HEADER_RUN_MODE, METADATA_RUN_MODE, METADATA_TAGS, RunMode

_FIRST_LINE = re.compile(r"^\s*#\s*(queue|task|thread)\b", re.IGNORECASE)


class RunModeError(ValueError):
    pass


def _coerce(value: Any, where: str) -> RunMode:
    try:
        return RunMode(str(value).strip().lower())
    except ValueError:
        choices = ", ".join(m.value for m in RunMode)
        raise RunModeError(f"unknown run mode {value!r} in {where}; choose one of: {choices}") from None


def run_mode_of(msg: dict[str, Any]) -> RunMode:
    """Header field, then cell metadata, then a cell tag, then a first-line comment such as `# task`."""
    header = msg.get("header") or {}
    if header.get(HEADER_RUN_MODE) is not None:
        return _coerce(header[HEADER_RUN_MODE], "message header")
    metadata = msg.get("metadata") or {}
    if isinstance(metadata, dict):
        if metadata.get(METADATA_RUN_MODE) is not None:
            return _coerce(metadata[METADATA_RUN_MODE], "cell metadata")
        tags = metadata.get(METADATA_TAGS)
        if isinstance(tags, list):
            for tag in tags:
                if isinstance(tag, str) and tag.lower() in RunMode._value2member_map_:
                    return RunMode(tag.lower())
    code = (msg.get("content") or {}).get("code")
    if isinstance(code, str):
        match = _FIRST_LINE.match(code.split("\n", 1)[0])
        if match:
            return RunMode(match.group(1).lower())
    return RunMode.QUEUE
