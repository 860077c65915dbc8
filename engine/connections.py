"""Connection limits for the decision service: header deadline, connection cap and a header-size bound.

uvicorn closes idle keep-alive connections (``timeout_keep_alive``), but a connection that trickles its request
line and headers is never closed, nothing caps how many connections are open, and its httptools protocol
(llhttp) accepts a header block of any size: slowloris clients hold sockets until the process runs out of file
descriptors and even ``/healthz`` stops answering, and one client can grow a header buffer without end. The
guarded protocols add, for both of uvicorn's HTTP/1.1 implementations:

* a header deadline: a request's line and headers must arrive within ``header_timeout`` seconds of its first
  byte (of the connection, for the first request), else the connection is closed;
* a connection cap: at the cap, a new connection evicts the oldest connection that has no request in
  progress (idle keep-alive or still sending headers); when every connection is busy, the new one gets a
  ``503`` and is closed. So idle and slow clients can never lock healthy ones (or ``/healthz``) out;
* a header-size bound of `MAX_HEADER_BYTES`: h11 enforces it itself (``h11_max_incomplete_event_size``: 400
  and close); on httptools `GuardedHttpToolsProtocol` counts the request line and headers and answers ``431``
  and closes.

`GuardedHttpToolsProtocol` on uvloop is the service's protocol (llhttp parses in C: several times less work per
request than h11's pure-Python parser); `GuardedH11Protocol` on asyncio is the fallback where httptools or
uvloop cannot be imported (e.g. Windows), chosen by `uvicorn_options`.
"""

from __future__ import annotations

import asyncio
import resource
from dataclasses import dataclass
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

try:
    import httptools
    import uvloop  # noqa: F401  (uvicorn imports it by name for loop="uvloop")
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - platforms without the C extensions
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

DEFAULT_MAX_CONNECTIONS = 1000
DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_KEEP_ALIVE = 5.0
MAX_HEADER_BYTES = 16 * 1024
FD_RESERVE = 64  # descriptors kept for the log, bundles, the state directory and the listening socket


def _close_with(status: bytes, code: str, message: str, extra: bytes = b"") -> bytes:
    body = b'{"error":{"code":"' + code.encode() + b'","message":"' + message.encode() + b'"}}\n'
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\nconnection: close\r\n" + extra
            + b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


_BUSY = _close_with(b"503 Service Unavailable", "too-many-connections", "every connection is busy; retry in a second",
                    b"retry-after: 1\r\n")
_HEADERS_TOO_LARGE = _close_with(b"431 Request Header Fields Too Large", "headers-too-large",
                                 f"the request line and headers exceed {MAX_HEADER_BYTES} bytes")


@dataclass(frozen=True)
class ConnectionLimits:
    """The connection bounds of one server (see the module docstring)."""

    max_connections: int = DEFAULT_MAX_CONNECTIONS
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    keep_alive: float = DEFAULT_KEEP_ALIVE

    def effective_max_connections(self) -> int:
        """The cap, lowered to fit the process's file-descriptor limit (after raising it to the hard limit)."""
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard != resource.RLIM_INFINITY and soft < hard:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
                soft = hard
            except (ValueError, OSError):
                pass
        if soft == resource.RLIM_INFINITY:
            return self.max_connections
        return max(1, min(self.max_connections, soft - FD_RESERVE))


class _Guard:
    """The header deadline and the connection cap, over either uvicorn protocol (a mixin placed first).

    The protocol says when it waits for a request's headers (`_waiting_for_headers`); the rest is shared.
    """

    max_connections = DEFAULT_MAX_CONNECTIONS
    header_timeout = DEFAULT_HEADER_TIMEOUT
    connections: set[Any]
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop

    def connection_made(self, transport: asyncio.Transport) -> None:
        self._header_timer: asyncio.TimerHandle | None = None
        self._opened = self.loop.time()
        if len(self.connections) >= self.max_connections and not self._evict_idle():
            super().connection_made(transport)  # type: ignore[misc]
            transport.write(_BUSY)
            transport.close()
            return
        super().connection_made(transport)  # type: ignore[misc]
        self._start_header_timer()

    def _waiting_for_headers(self) -> bool:
        raise NotImplementedError

    def _evict_idle(self) -> bool:
        idle = [c for c in self.connections if isinstance(c, _Guard) and c._waiting_for_headers()]
        if not idle:
            return False
        oldest = min(idle, key=lambda c: c._opened)
        oldest.transport.close()
        self.connections.discard(oldest)
        return True

    def _start_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._header_deadline)

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_deadline(self) -> None:
        self._header_timer = None
        if self._waiting_for_headers() and not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._waiting_for_headers():
            self._start_header_timer()  # the next request's headers are on the clock from their first byte
        super().data_received(data)  # type: ignore[misc]
        if not self._waiting_for_headers():
            self._stop_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)  # type: ignore[misc]


class GuardedH11Protocol(_Guard, H11Protocol):
    """uvicorn's h11 protocol with a header deadline and a connection cap (h11 bounds the header size)."""

    def _waiting_for_headers(self) -> bool:
        return self.conn.their_state is h11.IDLE and (self.cycle is None or self.cycle.response_complete)


class _OneSendPerResponse:
    """The transport as one response's cycle sees it: its status line and headers wait for its first body bytes.

    uvicorn writes them separately, and with TCP_NODELAY each write is its own send() and segment: for a small
    answer that doubled the system calls and the client's wake-ups (profiled: a fifth of a request's time).
    Only that first write is held; later ones (streamed bodies) pass straight through, and close() sends what
    is held first. A ``100 Continue`` interim response is never held (the client waits for it)."""

    __slots__ = ("transport", "held", "first")

    def __init__(self, transport: asyncio.Transport):
        self.transport = transport
        self.held: bytes | None = None
        self.first = True

    def write(self, data: bytes) -> None:
        if self.first and not data.startswith(b"HTTP/1.1 100 "):
            self.first = False
            self.held = data
            return
        if self.held is not None:
            data, self.held = self.held + data, None
        self.transport.write(data)

    def flush(self) -> None:
        if self.held is not None:
            self.transport.write(self.held)
            self.held = None

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def is_closing(self) -> bool:
        return self.transport.is_closing()


class _HeadersTooLarge(Exception):
    """The request line and headers passed MAX_HEADER_BYTES (raised from a parser callback)."""


if HttpToolsProtocol is not None:

    class GuardedHttpToolsProtocol(_Guard, HttpToolsProtocol):
        """uvicorn's httptools protocol with a header deadline, a connection cap and a header-size bound.

        llhttp has no header limit, so the bytes of the request line and headers are counted two ways: in the
        parser's callbacks (every URL span, every complete header), and, while a request's headers are still
        incomplete, every chunk read (httptools buffers a header value until it ends, so one endless header is
        only visible that way). Either count passing `MAX_HEADER_BYTES` answers 431 and closes.
        """

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            self._in_headers = True  # no request yet: the first bytes are a request line
            self._header_bytes = 0  # counted by the parser's callbacks
            self._chunk_bytes = 0  # counted by chunks read while the headers are incomplete
            self._too_large = False
            super().connection_made(transport)

        def _waiting_for_headers(self) -> bool:
            return self._in_headers and not self.pipeline and (self.cycle is None or self.cycle.response_complete)

        def data_received(self, data: bytes) -> None:
            counted = self._in_headers  # the headers were incomplete when this chunk began
            super().data_received(data)
            if counted and self._in_headers and not self.transport.is_closing():
                self._chunk_bytes += len(data)
                if self._chunk_bytes > MAX_HEADER_BYTES:
                    self._too_large = True
                    self.send_400_response("")

        def send_400_response(self, msg: str) -> None:
            """uvicorn's answer to a parser error; a header block over the bound is answered 431 instead."""
            if not self._too_large:
                super().send_400_response(msg)
                return
            self._unset_keepalive_if_required()
            self.transport.write(_HEADERS_TOO_LARGE)
            self.transport.close()

        def _count_header_bytes(self, n: int) -> None:
            self._header_bytes += n
            if self._header_bytes > MAX_HEADER_BYTES:
                self._too_large = True
                raise _HeadersTooLarge()  # httptools stops parsing; uvicorn calls send_400_response

        def on_message_begin(self) -> None:
            self._in_headers = True
            self._header_bytes = self._chunk_bytes = 0
            super().on_message_begin()

        def on_url(self, url: bytes) -> None:
            self._count_header_bytes(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._count_header_bytes(len(name) + len(value) + 4)
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._in_headers = False
            super().on_headers_complete()
            cycle = self.cycle
            if cycle is not None and not isinstance(cycle.transport, _OneSendPerResponse):
                writer = _OneSendPerResponse(self.transport)
                cycle.transport = writer  # type: ignore[assignment]
                completed = cycle.on_response

                def on_response() -> None:  # a response without body bytes (HEAD) still gets its headers out
                    writer.flush()
                    completed()

                cycle.on_response = on_response


else:  # pragma: no cover
    GuardedHttpToolsProtocol = None  # type: ignore[assignment,misc]


def protocol_for(limits: ConnectionLimits, *, fast: bool = True) -> type[_Guard]:
    """A protocol class bound to `limits` (uvicorn instantiates the class it is given per connection).

    `fast`: httptools where it imports, else h11."""
    base: type[_Guard] = GuardedHttpToolsProtocol if fast and GuardedHttpToolsProtocol is not None else GuardedH11Protocol
    return type(
        f"Bound{base.__name__}",
        (base,),
        {"max_connections": limits.effective_max_connections(), "header_timeout": limits.header_timeout},
    )


def uvicorn_options(limits: ConnectionLimits, *, fast: bool = True) -> dict[str, Any]:
    """uvicorn.Config keyword arguments that enforce `limits`: httptools on uvloop where both import (`fast`),
    else h11 on asyncio."""
    protocol = protocol_for(limits, fast=fast)
    return {
        "http": protocol,
        "loop": "asyncio" if issubclass(protocol, GuardedH11Protocol) else "uvloop",
        "timeout_keep_alive": limits.keep_alive,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "backlog": 2048,
        "access_log": False,
        "server_header": False,
    }
