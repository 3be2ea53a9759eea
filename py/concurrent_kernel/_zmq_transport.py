"""The ZMQ transport (CPython only): Jupyter's five sockets, signed with jupyter_client's Session.

ZMQ sockets are not thread-safe, so one I/O thread owns them all. Any thread sends by pushing serialised frames
through its own inproc PUSH socket to that I/O thread, which forwards them. Received messages are verified and
handed to the kernel's `feed`, which is thread-safe.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

import zmq
from jupyter_client.session import Session

from ._messages import Message
from ._protocol import Channel, MsgType

log = logging.getLogger("concurrent_kernel")

_ROUTED = (Channel.SHELL, Channel.CONTROL, Channel.STDIN)


class ZMQTransport:
    blocking_input = None

    def __init__(self, connection_info: dict[str, Any], session: Session | None = None) -> None:
        self.connection_info = dict(connection_info)
        key = str(connection_info.get("key", "")).encode()
        self.session = session or Session(
            key=key, signature_scheme=connection_info.get("signature_scheme", "hmac-sha256"), username="kernel"
        )
        self.context = zmq.Context()
        self._outbox_addr = f"inproc://concurrent-kernel-out-{uuid.uuid4().hex}"
        self._local = threading.local()
        self._pushers: list[zmq.Socket[Any]] = []
        self._pushers_lock = threading.Lock()
        self._feed: Callable[[str, Message, Any], None] | None = None
        self._closing = False
        self.sockets: dict[str, zmq.Socket[Any]] = {}
        self._bind_all()

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
            if kind == zmq.ROUTER and name != "hb":
                sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
            if kind == zmq.XPUB:
                sock.setsockopt(zmq.XPUB_VERBOSE, 1)
            self.connection_info[f"{name}_port"] = self._bind(sock, self.connection_info.get(f"{name}_port", 0))
            self.sockets[name] = sock
        self._outbox = ctx.socket(zmq.PULL)
        self._outbox.linger = 0
        self._outbox.bind(self._outbox_addr)

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

    async def start(self, feed: Callable[[str, Message, Any], None]) -> None:
        self._feed = feed
        threading.Thread(target=self._io_loop, name="ZMQ I/O", daemon=True).start()
        threading.Thread(target=self._heartbeat, name="Heartbeat", daemon=True).start()

    def send(self, channel: str, msg: Message, reply_to: Any = None) -> None:
        if channel == Channel.IOPUB:
            ident = [f"kernel.{msg['header']['msg_type']}".encode()]
        else:
            ident = reply_to or []
        frames = self.session.serialize(msg, ident=ident)
        pusher = getattr(self._local, "pusher", None)
        if pusher is None:
            pusher = self._local.pusher = self.context.socket(zmq.PUSH)
            pusher.linger = 0
            pusher.connect(self._outbox_addr)
            with self._pushers_lock:
                self._pushers.append(pusher)
        try:
            pusher.send_multipart([channel.encode(), *frames])
        except zmq.ZMQError:
            if not self._closing:
                raise

    def close(self) -> None:
        self._closing = True
        try:
            self.context.destroy(linger=0)
        except zmq.ZMQError:
            pass

    # ------------------------------------------------------------ I/O thread

    def _io_loop(self) -> None:
        poller = zmq.Poller()
        for name in (*_ROUTED, Channel.IOPUB):
            poller.register(self.sockets[name], zmq.POLLIN)
        poller.register(self._outbox, zmq.POLLIN)
        by_socket = {self.sockets[name]: name for name in (*_ROUTED, Channel.IOPUB)}
        outbox = self._outbox
        while not self._closing:
            try:
                events = poller.poll()
            except zmq.ZMQError:
                break
            for sock, _ in events:
                try:
                    if sock is outbox:
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
        outbox, sockets = self._outbox, self.sockets
        while True:
            try:
                frames = outbox.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            sockets[frames[0].decode()].send_multipart(frames[1:])

    def _receive(self, channel: str, sock: zmq.Socket[Any]) -> None:
        while True:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            try:
                idents, msg_list = self.session.feed_identities(frames, copy=False)
                msg = self.session.deserialize(msg_list, content=True, copy=False)
            except Exception as exc:
                log.error("dropping a malformed or unsigned message on %s: %s", channel, exc)
                continue
            msg["buffers"] = [memoryview(b) for b in msg.get("buffers", [])]
            assert self._feed is not None
            self._feed(channel, msg, idents)

    def _on_subscription(self) -> None:
        iopub = self.sockets[Channel.IOPUB]
        while True:
            try:
                event = iopub.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if event[:1] == b"\x01":
                topic = event[1:]
                welcome = self.session.msg(MsgType.IOPUB_WELCOME, {"subscription": topic.decode(errors="replace")})
                iopub.send_multipart(self.session.serialize(welcome, ident=[topic]))

    def _heartbeat(self) -> None:
        hb = self.sockets["hb"]
        try:
            zmq.proxy(hb, hb)
        except zmq.ZMQError:
            pass
