"""The ZMQ transport (CPython only): Jupyter's five sockets, messages in Jupyter's wire format (wire.py).

ZMQ sockets are not thread-safe, so one I/O thread owns them all. Any thread sends by serialising (and signing)
the message itself and appending the frames to an outbox deque; a byte on a pipe wakes the I/O thread when the
outbox was idle. (Measured: an inproc PUSH socket per thread cost ~70 us per message, mostly per-frame overhead.)
Received messages are verified and handed to the kernel's `feed`, which is thread-safe.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import zmq

from .._messages import Message, MessageFactory
from .._protocol import (
    CONNECTION_CURVE_PUBLICKEY,
    CONNECTION_CURVE_SECRETKEY,
    Channel,
    MsgType,
)
from .base import early_kernel_info
from .wire import Wire, WireError

log = logging.getLogger("concurrent_kernel")

_ROUTED = (Channel.SHELL, Channel.CONTROL, Channel.STDIN)
# pyzmq's Cython socket methods, called with plain int flags: its Python layer ORs enum flags and type-checks each
# frame (measured: a third of the I/O thread's sending time for 4 messages an execute).
_send = zmq.backend.Socket.send
_recv = zmq.backend.Socket.recv
_get = zmq.backend.Socket.get
_SNDMORE = int(zmq.SNDMORE)
_NOBLOCK = int(zmq.NOBLOCK)
_RCVMORE = int(zmq.RCVMORE)
#: The sockets of a connection file, by the prefix of their `*_port` key.
SOCKET_NAMES = (Channel.SHELL, Channel.IOPUB, Channel.STDIN, Channel.CONTROL, "hb")
_Z85_ALPHABET = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#")


class ConnectionFileError(ValueError):
    """The connection file cannot be used as given (for example malformed CurveZMQ keys): the kernel must exit
    with this message rather than start without the encryption its client expects and leave the client waiting."""


def curve_keys(connection_info: dict[str, Any]) -> tuple[bytes, bytes] | None:
    """The kernel's CurveZMQ (public, secret) key pair from a connection file, or None when it carries none.

    jupyter_client (transport_encryption `auto`/`required`) writes both as 40-character Z85 strings; the client
    connects with that public key as its server key. Half a pair, a wrong length or alphabet, a public key that
    is not the secret key's, or a libzmq without CURVE raise ConnectionFileError: a kernel that quietly started
    unencrypted would never complete the client's handshake.
    """
    names = (CONNECTION_CURVE_PUBLICKEY, CONNECTION_CURVE_SECRETKEY)
    values = [connection_info.get(name) for name in names]
    if all(v is None for v in values):
        return None
    missing = [name for name, v in zip(names, values, strict=True) if v is None]
    if missing:
        raise ConnectionFileError(f"the connection file has {' and '.join(n for n in names if n not in missing)} "
                                  f"but no {missing[0]}: CurveZMQ needs both keys")
    keys: list[bytes] = []
    for name, value in zip(names, values, strict=True):
        if not isinstance(value, str):
            raise ConnectionFileError(f"{name} must be a Z85 string, not {type(value).__name__}")
        if len(value) != 40 or not _Z85_ALPHABET.issuperset(value):
            raise ConnectionFileError(  # the length, never the value: it may be a secret
                f"{name} must be 40 Z85 characters (a 32-byte CurveZMQ key), got {len(value)} characters"
                + ("" if _Z85_ALPHABET.issuperset(value) else " with some outside the Z85 alphabet")
            )
        keys.append(value.encode("ascii"))
    if not zmq.has("curve"):
        raise ConnectionFileError("the connection file asks for CurveZMQ encryption, but this pyzmq's libzmq "
                                  "was built without CURVE (libsodium)")
    public, secret = keys
    try:
        derived = zmq.curve_public(secret)
    except zmq.ZMQError as exc:
        raise ConnectionFileError(f"{CONNECTION_CURVE_SECRETKEY} is not a valid CurveZMQ key: {exc}") from None
    if derived != public:
        raise ConnectionFileError(f"{CONNECTION_CURVE_PUBLICKEY} is not the public key of {CONNECTION_CURVE_SECRETKEY}")
    return public, secret


class ZMQTransport:
    blocking_input = None
    #: `status: starting` went out (once: before the first early kernel_info reply, or from the kernel).
    starting_sent = False

    def __init__(self, connection_info: dict[str, Any]) -> None:
        self.connection_info = dict(connection_info)
        #: (public, secret) Z85 keys: every socket is a CurveZMQ server (encrypted, server-authenticated).
        self.curve = curve_keys(self.connection_info)  # before any socket exists: a bad file binds nothing
        self.context = zmq.Context()
        self._outbox: deque[tuple[str, list[bytes]]] = deque()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        self._wake_pending = False
        self._feed: Callable[[str, Message, Any], None] | None = None
        self._closing = False
        self._threads_started = False
        self._io_thread: threading.Thread | None = None
        self._feed_lock = threading.Lock()
        self._held: list[tuple[str, Message, Any]] = []
        self._early: tuple[MessageFactory, Callable[[], dict[str, Any]]] | None = None
        self.sockets: dict[str, zmq.Socket[Any]] = {}
        # Bind before importing jupyter_client (the packer): clients connect (and queue their first
        # kernel_info_request) while the rest of the kernel is still importing.
        self._bind_all()
        try:
            self.wire = Wire(
                str(connection_info.get("key", "")).encode(), connection_info.get("signature_scheme", "hmac-sha256")
            )
        except WireError as exc:
            raise ConnectionFileError(str(exc)) from None
        #: Builds the messages the transport sends on its own (iopub_welcome); the kernel's factory once known.
        self._messages = MessageFactory()
        #: Checks the I/O thread runs about once a second (the launcher's parent watch): no thread of their own.
        self.every_second: list[Callable[[], None]] = []

    # ------------------------------------------------------------ setup

    def _bind_all(self) -> None:
        ctx = self.context
        kinds = {
            Channel.SHELL: zmq.ROUTER,
            Channel.CONTROL: zmq.ROUTER,
            Channel.STDIN: zmq.ROUTER,
            Channel.IOPUB: zmq.XPUB,
            "hb": zmq.ROUTER,
        }
        for name, kind in kinds.items():
            sock = ctx.socket(kind)
            sock.linger = 0
            if self.curve is not None:  # set before bind: the options apply to connections made after
                sock.curve_publickey, sock.curve_secretkey = self.curve
                sock.curve_server = True
            # No send high-water mark: ROUTER and XPUB silently drop past it, and a burst of 1,000 pipelined
            # cells makes 4,000 messages; a lost reply or idle leaves the client waiting forever.
            sock.sndhwm = 0
            if kind == zmq.ROUTER and name != "hb":
                sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
            if kind == zmq.XPUB:
                sock.setsockopt(zmq.XPUB_VERBOSE, 1)
            self.connection_info[f"{name}_port"] = self._bind(sock, self.connection_info.get(f"{name}_port", 0))
            self.sockets[name] = sock

    def _bind(self, sock: zmq.Socket[Any], port: int) -> int:
        transport = self.connection_info.get("transport", "tcp")
        ip = self.connection_info.get("ip", "127.0.0.1")
        if transport == "ipc":
            path = f"{ip}-{port}"
            sock.bind(f"ipc://{path}")
            return int(port)
        if not port:
            return sock.bind_to_random_port(f"tcp://{ip}")
        sock.bind(f"tcp://{ip}:{port}")
        return int(port)

    # ------------------------------------------------------------ transport API

    def start_early(self, messages: MessageFactory, kernel_info: Callable[[], dict[str, Any]]) -> None:
        """Start the I/O thread before the kernel exists: it answers kernel_info_request itself (so clients see
        a live kernel while IPython imports) and keeps every other message for the kernel, in order."""
        self._early = (messages, kernel_info)
        self._messages = messages
        self._start_threads()

    def send_starting(self, msg: Message) -> None:
        """Publish the kernel's `status: starting` unless the I/O thread already sent one before answering an
        early kernel_info (sent as late as possible: a client that subscribes late would miss it)."""
        with self._feed_lock:
            if not self.starting_sent:
                self.starting_sent = True
                self.send(Channel.IOPUB, msg)

    async def start(self, feed: Callable[[str, Message, Any], None]) -> None:
        with self._feed_lock:
            for channel, msg, idents in self._held:
                feed(channel, msg, idents)
            self._held.clear()
            self._feed = feed
        self._start_threads()

    def _start_threads(self) -> None:
        if self._threads_started:
            return
        self._threads_started = True
        self._io_thread = threading.Thread(target=self._io_loop, name="ZMQ I/O", daemon=True)
        self._io_thread.start()
        threading.Thread(target=self._heartbeat, name="Heartbeat", daemon=True).start()

    def send(self, channel: str, msg: Message, reply_to: Any = None) -> None:
        if channel == Channel.IOPUB:
            ident = [f"kernel.{msg['header']['msg_type']}".encode()]
        else:
            ident = reply_to or []
        frames = self.wire.serialize(msg, ident)
        buffers = msg.get("buffers")
        if buffers:  # binary buffers (widgets' arrays and images) go after the signed parts, as Session.send does
            frames.extend(buffers)
        self._outbox.append((channel, frames))
        if not self._wake_pending and not self._closing:
            self._wake_pending = True
            os.write(self._wake_write, b"\0")

    def close(self) -> None:
        """Send what is queued (the shutdown reply among it), then close the sockets."""
        self._closing = True
        os.write(self._wake_write, b"\0")
        if self._io_thread is not None:
            self._io_thread.join(timeout=2.0)
        try:
            self.context.destroy(linger=500)  # let ZMQ put the last messages on the wire
        except zmq.ZMQError:
            pass

    # ------------------------------------------------------------ I/O thread

    def _io_loop(self) -> None:
        poller = zmq.Poller()
        for name in (*_ROUTED, Channel.IOPUB):
            poller.register(self.sockets[name], zmq.POLLIN)
        poller.register(self._wake_read, zmq.POLLIN)
        by_socket = {self.sockets[name]: name for name in (*_ROUTED, Channel.IOPUB)}
        wake = self._wake_read
        due = time.monotonic() + 1.0
        while True:
            if self._closing:
                self._forward_outgoing()  # the last replies (shutdown_reply, idle) must still go out
                return
            try:
                events = poller.poll(1000 if self.every_second else None)
            except zmq.ZMQError:
                break
            if self.every_second and time.monotonic() >= due:
                due = time.monotonic() + 1.0
                for check in self.every_second:
                    check()
            for sock, _ in events:
                try:
                    if sock == wake:
                        self._forward_outgoing()
                    elif by_socket[sock] == Channel.IOPUB:
                        self._on_subscription()
                    else:
                        self._receive(by_socket[sock], sock)
                except zmq.ContextTerminated:
                    return
                except Exception:
                    if self._closing:  # sockets closed under us at shutdown
                        return
                    log.exception("error in the ZMQ I/O thread")

    def _forward_outgoing(self) -> None:
        try:
            os.read(self._wake_read, 4096)
        except BlockingIOError:
            pass
        self._wake_pending = False  # before draining: a message appended after this point wakes us again
        outbox, sockets = self._outbox, self.sockets
        while outbox:
            channel, frames = outbox.popleft()
            _send_frames(sockets[channel], frames)

    def _receive(self, channel: str, sock: zmq.Socket[Any]) -> None:
        while True:
            try:
                frames = [_recv(sock, _NOBLOCK)]
            except zmq.Again:
                return
            while _get(sock, _RCVMORE):
                frames.append(_recv(sock, 0))
            try:
                idents, msg = self.wire.deserialize(frames)
            except Exception as exc:  # WireError, or JSON that does not parse
                log.error("dropping a malformed or unsigned message on %s: %s", channel, exc)
                continue
            feed = self._feed
            if feed is None:
                with self._feed_lock:
                    feed = self._feed
                    if feed is None:
                        self._before_kernel(channel, msg, idents)
                        continue
            feed(channel, msg, idents)

    def _before_kernel(self, channel: str, msg: Message, idents: Any) -> None:
        if self._early is None or msg.get("msg_type") != MsgType.KERNEL_INFO_REQUEST:
            self._held.append((channel, msg, idents))
            return
        messages, kernel_info = self._early
        # starting comes before the first reply (we hold _feed_lock here)
        starting, self.starting_sent = not self.starting_sent, True
        status_topic = [f"kernel.{MsgType.STATUS}".encode()]
        for out_channel, out in early_kernel_info(messages, msg, kernel_info, starting):
            if out_channel == Channel.IOPUB:
                _send_frames(self.sockets[Channel.IOPUB], self.wire.serialize(out, status_topic))
            else:
                _send_frames(self.sockets[channel], self.wire.serialize(out, idents))

    def _on_subscription(self) -> None:
        iopub = self.sockets[Channel.IOPUB]
        while True:
            try:
                event = iopub.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if event[:1] == b"\x01":
                topic = event[1:]
                welcome = self._messages.make(MsgType.IOPUB_WELCOME, {"subscription": topic.decode(errors="replace")})
                _send_frames(iopub, self.wire.serialize(welcome, [topic]))

    def _heartbeat(self) -> None:
        hb = self.sockets["hb"]
        try:
            zmq.proxy(hb, hb)
        except zmq.ZMQError:
            pass


def _send_frames(sock: zmq.Socket[Any], frames: list[Any]) -> None:
    for frame in frames[:-1]:
        _send(sock, frame, _SNDMORE)
    _send(sock, frames[-1], 0)
