"""Connection limits for the decision service: header deadline, connection cap and uvicorn's own bounds.

uvicorn closes idle keep-alive connections (``timeout_keep_alive``) and bounds an incomplete header block
(``h11_max_incomplete_event_size``), but a connection that trickles its request line and headers is never
closed, and nothing caps how many connections are open: slowloris clients hold sockets until the process runs
out of file descriptors and even ``/healthz`` stops answering. `GuardedH11Protocol` adds:

* a header deadline: a request's line and headers must arrive within ``header_timeout`` seconds of its first
  byte (of the connection, for the first request), else the connection is closed;
* a connection cap: at the cap, a new connection evicts the oldest connection that has no request in
  progress (idle keep-alive or still sending headers); when every connection is busy, the new one gets a
  ``503`` and is closed. So idle and slow clients can never lock healthy ones (or ``/healthz``) out.
"""

from __future__ import annotations

import asyncio
import resource
from dataclasses import dataclass
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

DEFAULT_MAX_CONNECTIONS = 1000
DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_KEEP_ALIVE = 5.0
MAX_HEADER_BYTES = 16 * 1024
FD_RESERVE = 64  # descriptors kept for the log, bundles, the state directory and the listening socket

_BUSY_BODY = b'{"error":{"code":"too-many-connections","message":"every connection is busy; retry in a second"}}\n'
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"retry-after: 1\r\ncontent-length: " + str(len(_BUSY_BODY)).encode() + b"\r\n\r\n" + _BUSY_BODY
)


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


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header deadline and a connection cap (set by `protocol_for`)."""

    max_connections = DEFAULT_MAX_CONNECTIONS
    header_timeout = DEFAULT_HEADER_TIMEOUT

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._header_timer: asyncio.TimerHandle | None = None
        self._opened = self.loop.time()
        if len(self.connections) >= self.max_connections and not self._evict_idle():
            super().connection_made(transport)
            transport.write(_BUSY)
            transport.close()
            return
        super().connection_made(transport)
        self._start_header_timer()

    def _waiting_for_headers(self) -> bool:
        return self.conn.their_state is h11.IDLE and (self.cycle is None or self.cycle.response_complete)

    def _evict_idle(self) -> bool:
        idle = [c for c in self.connections if isinstance(c, GuardedH11Protocol) and c._waiting_for_headers()]
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
        super().data_received(data)
        if not self._waiting_for_headers():
            self._stop_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)


def protocol_for(limits: ConnectionLimits) -> type[GuardedH11Protocol]:
    """A protocol class bound to `limits` (uvicorn instantiates the class it is given per connection)."""
    return type(
        "BoundGuardedH11Protocol",
        (GuardedH11Protocol,),
        {"max_connections": limits.effective_max_connections(), "header_timeout": limits.header_timeout},
    )


def uvicorn_options(limits: ConnectionLimits) -> dict[str, Any]:
    """uvicorn.Config keyword arguments that enforce `limits`."""
    return {
        "http": protocol_for(limits),
        "timeout_keep_alive": limits.keep_alive,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "backlog": 2048,
        "access_log": False,
        "server_header": False,
    }
