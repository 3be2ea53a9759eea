"""Jupyter's wire format for the ZMQ transport: `[idents..., <IDS|MSG>, HMAC, header, parent_header, metadata,
content, buffers...]`, signed and checked as jupyter_client's Session does (HMAC over the four JSON parts, replayed
signatures refused), packed as Session packs.

Why not Session.serialize / deserialize: measured with a profiler over 1,000 `pass` executes, every message went
through ~17 traitlets attribute reads (pack, auth, digest_mod...), and deserialize parsed each header's date into a
datetime (dateutil) that the kernel never reads and turns back into text when it echoes the header as a parent:
together about a third of the I/O thread's time per execute. The wire bytes are the same.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import json
import numbers
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson

DELIM = b"<IDS|MSG>"
#: Signatures remembered to refuse a replayed message (jupyter_client's default size; the oldest tenth is dropped).
HISTORY = 1 << 16


class WireError(ValueError):
    """A message that is not in the wire format, or whose signature does not check."""


def _default(obj: Any) -> Any:
    """Values JSON has no type for, turned into JSON as jupyter_client's Session turns them."""
    if isinstance(obj, datetime):
        if obj.tzinfo is None:
            obj = obj.replace(tzinfo=UTC)
        return obj.isoformat().replace("+00:00", "Z")
    if isinstance(obj, bytes | bytearray | memoryview):
        return binascii.b2a_base64(obj, newline=False).decode("ascii")
    if isinstance(obj, numbers.Integral):
        return int(obj)
    if isinstance(obj, numbers.Real):
        return float(obj)
    if isinstance(obj, Iterable):
        return list(obj)
    raise TypeError(f"{obj!r} is not JSON serializable")


def pack(obj: Any) -> bytes:
    """JSON bytes, as jupyter_client's Session packs them (orjson when it can, else the standard library's json with
    what Session does for NaN and odd values). Not imported from jupyter_client: that package's import brings its
    clients, managers and tornado into the kernel (measured: ~7 MB of RSS)."""
    try:
        data = orjson.dumps(obj, default=_default, option=orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z)
    except Exception:  # NaN, infinities, keys that are not strings...: Session's own fallback handles those
        from jupyter_client.session import json_packer

        data = json_packer(obj)
    # orjson hands back each part in a 4 KiB buffer, even "{}"; queued messages then cost ~32 KiB each (measured:
    # RSS +65 MB after 1,000 pipelined cells). A right-sized copy of a few bytes avoids that.
    return bytes(memoryview(data))


def unpack(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data.decode("utf-8", "replace"))


class Wire:
    def __init__(self, key: bytes, signature_scheme: str = "hmac-sha256") -> None:
        scheme, _, digest = signature_scheme.partition("-")
        if scheme != "hmac" or not hasattr(hashlib, digest):
            raise WireError(f"unsupported signature scheme {signature_scheme!r}")
        self._auth = hmac.new(key, digestmod=getattr(hashlib, digest)) if key else None
        self.pack, self.unpack = pack, unpack
        self._seen: dict[bytes, None] = {}

    def sign(self, parts: list[bytes]) -> bytes:
        if self._auth is None:
            return b""
        h = self._auth.copy()
        for part in parts:
            h.update(part)
        return h.hexdigest().encode()

    def serialize(self, msg: dict[str, Any], ident: list[bytes]) -> list[bytes]:
        pack = self.pack
        parts = [pack(msg["header"]), pack(msg["parent_header"]), pack(msg["metadata"]), pack(msg["content"])]
        return [*ident, DELIM, self.sign(parts), *parts]

    def deserialize(self, frames: list[bytes]) -> tuple[list[bytes], dict[str, Any]]:
        """(idents, message); raises WireError for a malformed, unsigned, badly signed or replayed message."""
        try:
            at = frames.index(DELIM)
        except ValueError:
            raise WireError("no <IDS|MSG> delimiter") from None
        idents, signature, parts = frames[:at], frames[at + 1] if len(frames) > at + 1 else b"", frames[at + 2:]
        if len(parts) < 4:
            raise WireError(f"a message has at least 4 parts after the signature, this one {len(parts)}")
        if self._auth is not None:
            if not signature:
                raise WireError("unsigned message")
            if not hmac.compare_digest(signature, self.sign(parts[:4])):
                raise WireError("invalid signature")
            self._remember(signature)
        unpack = self.unpack
        header = unpack(parts[0])
        if not isinstance(header, dict):
            raise WireError("the header is not a JSON object")
        msg = {
            "header": header,
            "msg_id": header.get("msg_id"),
            "msg_type": header.get("msg_type"),
            "parent_header": unpack(parts[1]),
            "metadata": unpack(parts[2]),
            "content": unpack(parts[3]),
            "buffers": [memoryview(b) for b in parts[4:]],
        }
        return idents, msg

    def _remember(self, signature: bytes) -> None:
        seen = self._seen
        if signature in seen:
            raise WireError("duplicate signature (a replayed message)")
        seen[signature] = None
        if len(seen) > HISTORY:
            for old in list(seen)[: HISTORY // 10]:  # dicts keep insertion order: the oldest first
                del seen[old]
